"""docs/conformance-statement.md stays true where a machine can tell.

The DICOM Conformance Statement (PS3.2) is what modality and RIS vendors
read first, so the facts it copies from the code are checked against the
code, and each check is a function returning its problems, so that
``test_each_check_fails_on_a_broken_copy`` can prove on a damaged copy of the
document that every check can fail:

- the network services table (section 1) lists exactly the SOP classes the
  services offer (echo ``VERIFICATION``, mwl ``MODALITY_WORKLIST_FIND``, ups
  ``UPS_CLASSES``);
- the Implementation Class UID and Version Name are the worker's;
- every status constant of ``wlmd/ups/states.py`` has a row of its own
  (``| 0xC301 |`` or ``| C301H |``);
- every option the document names exists in the options table, every option
  that changes what a peer sees is named, and the defaults of the parameters
  table are ``Config``'s;
- the MWL key tables (Annex 8.1.1) hold exactly the tags of
  ``wlmd.worklist.keys``, the UPS table (Annex 8.1.2) exactly those of
  ``wlmd.ups.table.RULES``;
- the Debian package installs it, README and wlmd(8) point to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from wlmd.mpps import rules as mpps_rules
from wlmd.process.worker import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from wlmd.services.echo import VERIFICATION
from wlmd.services.mwl import MODALITY_WORKLIST_FIND
from wlmd.services.ups import UPS_CLASSES
from wlmd.settings.options import BY_SPELLING, OPTIONS, config_defaults
from wlmd.ups import states
from wlmd.ups.table import RULES, Rule
from wlmd.worklist import keys

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = REPO_ROOT / "docs" / "conformance-statement.md"
#: dh_compress gzips documentation over 4 KiB, as README.md.gz
INSTALLED = "/usr/share/doc/wlmd/conformance-statement.md.gz"

OFFERED = frozenset(
    {str(VERIFICATION), str(MODALITY_WORKLIST_FIND), *UPS_CLASSES, mpps_rules.SOP_CLASS}
)

#: An option spelling: -ta, +xd, +x=, -cs0, --max-pdu (a letter first: not "-20300515").
OPTION = re.compile(r"(?<![\w/.+-])([-+]{1,2}[A-Za-z][A-Za-z0-9=-]*)")
#: Backtick spans that start with another program's name show its options, not ours.
OTHER_PROGRAMS = frozenset({"dcmups", "upsscu", "wlmscpfs", "findscu", "echoscu"})
TAG = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)")

#: Options that change nothing a DICOM peer can see (every other option must be named):
#: the program's own output, logging, how it runs, request files, --no-index (the same
#: answers: the differential tests check it against wlmscpfs both ways) and
#: --snapshot-cache (start-up time only: the files are checked against it).
NOT_SEEN_BY_PEERS = frozenset(
    {
        *("--help", "--version", "--arguments", "--config", "--daemon", "--pid-file"),
        *("--quiet", "--verbose", "--debug", "--log-level", "--log-config"),
        *("--request-file-path", "--request-file-format", "--no-index", "--snapshot-cache"),
    }
)

#: Parameters table rows (section 4.4.2) whose default is a Config number: option -> field.
NUMERIC_DEFAULTS = {
    "--acse-timeout": "acse_timeout",
    "--max-pdu": "max_pdu",
    "--max-associations": "max_associations",
    "--spare-workers": "spare_workers",
    "--limit-answers": "limit_answers",
    "+cl": "compression_level",
    "--ups-keep-final": "ups_keep_final",
    "--ups-event-expiry": "ups_event_expiry",
}


def section(text: str, start: str, end: str) -> str:
    """The text from the heading line starting with ``start`` to the one starting with ``end``."""
    match = re.search(rf"^{re.escape(start)}.*?(?=^{re.escape(end)})", text, re.M | re.S)
    assert match, f"no section {start!r} .. {end!r} in the conformance statement"
    return match.group(0)


# --- the checks: each returns what is wrong -----------------------------------------


def sop_class_problems(text: str) -> list[str]:
    table = section(text, "## 1 Overview", "## 2 ")
    listed = set(re.findall(r"^\|[^|\n]*\| ([0-9.]+) \|", table, re.M))
    problems = [f"SOP class {uid} offered but not in section 1" for uid in OFFERED - listed]
    problems += [f"SOP class {uid} in section 1 but not offered" for uid in listed - OFFERED]
    return sorted(problems)


def identity_problems(text: str) -> list[str]:
    table = section(text, "##### 4.2.2.4 Implementation identifying", "#### 4.2.3")
    problems = []
    for what, value in (
        ("Implementation Class UID", IMPLEMENTATION_CLASS_UID),
        ("Implementation Version Name", IMPLEMENTATION_VERSION_NAME),
    ):
        if not re.search(rf"^\| {what} \| {re.escape(value)}\b", table, re.M):
            problems.append(f"{what} is not {value}")
    return problems


def ups_status_constants() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(states).items()
        if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
    }


def status_problems(text: str) -> list[str]:
    problems = []
    for name, value in ups_status_constants().items():
        row = rf"^\|\s*(0x{value:04X}|{value:04X}H)\s*\|"
        if not re.search(row, text, re.M | re.I):
            problems.append(f"states.{name} (0x{value:04X}) has no row")
    return problems


def named_options(text: str) -> set[str]:
    """Every option the document names: in backtick spans, and any --long-option."""
    found = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        words = span.split()
        if words and words[0] in OTHER_PROGRAMS:
            continue
        found.update(OPTION.findall(span))
    found.update(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    return found


def option_problems(text: str) -> list[str]:
    named = named_options(text)
    problems = [f"{o} is not a wlmd option" for o in named - set(BY_SPELLING)]
    for option in OPTIONS:
        spellings = set(option.spellings)
        if not spellings & (named | NOT_SEEN_BY_PEERS):
            problems.append(f"{'/'.join(option.spellings)} is not in the statement")
    return sorted(problems)


def default_problems(text: str) -> list[str]:
    table = section(text, "#### 4.4.2 Parameters", "#### 4.4.3")
    defaults = config_defaults()
    problems = []
    for option, field in NUMERIC_DEFAULTS.items():
        rows = [
            cells
            for line in table.splitlines()
            if len(cells := line.strip().strip("|").split("|")) == 3 and f"`{option}`" in cells[1]
        ]
        if len(rows) != 1:
            problems.append(f"{option}: {len(rows)} rows in the parameters table")
            continue
        last = rows[0][-1]
        if not re.search(rf"(?<![\d.]){defaults[field]}(?![\d.])", last):
            problems.append(f"{option}: default is {defaults[field]}, table says {last.strip()}")
    return problems


def _rule_tags(rules: Iterable[Rule]) -> set[int]:
    tags: set[int] = set()
    for rule in rules:
        tags.add(rule.tag)
        tags |= _rule_tags(rule.children)
    return tags


def mwl_key_tags() -> set[int]:
    nested = {t for tags in keys.NESTED_RETURN_TAGS.values() for t in tags}
    return set(keys.ROOT_RETURN_TAGS) | nested | keys.SPS_MATCHING_TAGS


def _tags_in(text: str) -> set[int]:
    return {int(g + e, 16) for g, e in TAG.findall(text)}


def _differences(what: str, documented: set[int], expected: set[int]) -> list[str]:
    def name(t: int) -> str:
        return f"({t >> 16:04X},{t & 0xFFFF:04X})"

    return sorted(
        [f"{what}: {name(t)} missing" for t in expected - documented]
        + [f"{what}: {name(t)} not in the code" for t in documented - expected]
    )


def key_table_problems(text: str) -> list[str]:
    mwl = _tags_in(section(text, "#### 8.1.1 ", "#### 8.1.2 "))
    ups = _tags_in(section(text, "#### 8.1.2 ", "### 8.2 ")) - {int("00081195", 16)}
    return _differences("MWL keys (8.1.1)", mwl, mwl_key_tags()) + _differences(
        "UPS attributes (8.1.2)", ups, _rule_tags(RULES)
    )


CHECKS: dict[str, Callable[[str], list[str]]] = {
    "sop classes": sop_class_problems,
    "implementation identity": identity_problems,
    "ups statuses": status_problems,
    "options": option_problems,
    "defaults": default_problems,
    "key tables": key_table_problems,
}


# --- the tests ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def text() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_the_document_agrees_with_the_code(text: str, check: Callable[[str], list[str]]) -> None:
    assert check(text) == []


def _damage(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} not in the document: the damage would prove nothing"
    return text.replace(old, new, 1)


#: For each check, a copy of the document it must find fault with.
BROKEN: dict[str, Callable[[str], str]] = {
    "sop classes": lambda t: _damage(t, "| 1.2.840.10008.5.1.4.34.4.2 |", "| 1.2.3.4 |"),
    "implementation identity": lambda t: _damage(
        t, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_CLASS_UID + "9"
    ),
    "ups statuses": lambda t: _damage(t, "| 0xC312 |", "| C312 |"),
    "options": lambda t: _damage(t, "`--ups-keep-final`", "`--ups-keep-finals`"),
    "defaults": lambda t: _damage(t, "| 16384 bytes (4096–131072) |", "| 32768 bytes |"),
    "key tables": lambda t: _damage(t, "| Allergies | (0010,2110) |", "| Allergies | |"),
}


@pytest.mark.parametrize("name", CHECKS.keys())
def test_each_check_fails_on_a_broken_copy(text: str, name: str) -> None:
    assert CHECKS[name](BROKEN[name](text)), f"the {name} check accepts a broken document"


def test_an_option_the_statement_does_not_name_is_found(text: str) -> None:
    assert "--request-filter" in text
    problems = option_problems(text.replace("--request-filter", "a filter"))
    assert problems == ["--request-filter is not in the statement"]


def test_named_options_ignore_other_programs_and_dates() -> None:
    sample = "`dcmups -L` and `wlmscpfs -s`, range `-20300515`, `-ta` and --max-pdu"
    assert named_options(sample) == {"-ta", "--max-pdu"}


def test_the_package_installs_it_and_the_manuals_point_to_it() -> None:
    docs = (REPO_ROOT / "packaging" / "debian" / "wlmd.docs").read_text("utf-8").split()
    assert "docs/conformance-statement.md" in docs
    readme = (REPO_ROOT / "README.md").read_text("utf-8")
    conformance = section(readme, "## Conformance", "## ")
    assert "(docs/conformance-statement.md)" in conformance
    man = (REPO_ROOT / "man" / "wlmd.8").read_text("utf-8")
    see_also = man[man.index(".SH SEE ALSO") :]
    assert INSTALLED in see_also.replace("\\-", "-").replace("\\%", "")
