"""The texts of operator log lines that need more than a format string.

Association tags, refused presentation contexts, offending keys: what an
operator reads in the journal to tell one association from another and a
modality's misconfiguration from a wlmd fault. Keys are named by tag and
pydicom keyword, never with their values (no patient data above debug).
"""

from __future__ import annotations

from pydicom.datadict import keyword_for_tag
from pydicom.uid import UID


def association_prefix(started: float) -> str:
    """The first part of this server's association tags: ``a`` + 6 base-36 digits.

    The digits are the server's start time in tenths of a second, modulo 36**6
    (they repeat after about 6.9 years). A restart takes far longer than a tenth
    of a second, so a restarted wlmd never reuses the tags of the one before:
    ``journalctl -u wlmd | grep -F '[a1kq2x9.17]'`` finds one association, not one
    per restart. wlmd(8) documents the format.
    """
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    value = int(started * 10) % 36**6
    out = ""
    for _ in range(6):
        value, digit = divmod(value, 36)
        out = digits[digit] + out
    return f"a{out}"


#: PS3.8 9.3.3.2: the Result/Reason of a presentation context in the A-ASSOCIATE-AC
_CONTEXT_RESULTS = {
    0x01: "user rejection",
    0x02: "no reason",
    0x03: "abstract syntax not supported",
    0x04: "transfer syntaxes not supported",
}


def describe_context(abstract_syntax: str, transfer_syntaxes: list[str], result: int | None) -> str:
    """ "1.2.840.10008.5.1.4.1.2.1.1 (Patient Root Query/Retrieve ... - FIND) with
    1.2.840.10008.1.2 (Implicit VR Little Endian): abstract syntax not supported"."""
    why = _CONTEXT_RESULTS.get(result or 0, f"result {result}")
    syntaxes = ", ".join(_uid_with_name(ts) for ts in transfer_syntaxes) or "no transfer syntax"
    return f"{_uid_with_name(abstract_syntax)} with {syntaxes}: {why}"


def _uid_with_name(uid: str) -> str:
    name = UID(uid).name if uid else ""
    return f"{uid} ({name})" if name and name != uid else uid or "(none)"


def describe_tags(tags: list[int]) -> str:
    """ "(0040,0002) ScheduledProcedureStepStartDate" for each tag: the key, never its value."""
    return ", ".join(
        f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword_for_tag(tag) or 'unknown key'}"
        for tag in tags
    )
