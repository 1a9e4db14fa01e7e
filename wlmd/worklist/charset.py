"""Character sets: decoding worklist and request values for matching.

Responses carry the worklist file's bytes unchanged, as wlmscpfs does (the
-cs0/-cs1/-csk options only decide which Specific Character Set is declared).
Matching, however, compares *decoded* text, so a UTF-8 query finds a Latin-1
file; for requests and files in the same character set this is identical to
wlmscpfs's byte comparison.
"""

from __future__ import annotations

import functools
import logging
import warnings

from pydicom.charset import convert_encodings, decode_bytes

LOG = logging.getLogger(__name__)

#: Bytes that reset ISO 2022 code extensions (value, component and line delimiters).
_DELIMITERS = {0x5C, 0x5E, 0x3D, 0x0D, 0x0A, 0x09, 0x0C}


@functools.lru_cache(maxsize=64)
def python_encodings(specific_character_set: str) -> tuple[str, ...]:
    """Python codecs for a raw (0008,0005) value such as ``ISO_IR 100`` or ``\\ISO 2022 IR 87``."""
    terms = [t.strip() for t in specific_character_set.split("\\")]
    if not any(terms):
        terms = ["ISO_IR 6"]
    terms = [t or "ISO_IR 6" for t in terms]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(convert_encodings(terms))


def decode(raw: bytes, specific_character_set: str = "") -> str:
    """Text of a raw string value; undecodable bytes are replaced, never fatal."""
    if raw.isascii():
        return raw.decode("ascii")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return decode_bytes(raw, list(python_encodings(specific_character_set)), _DELIMITERS)


def encode(text: str, specific_character_set: str = "") -> bytes:
    """Bytes of text in a character set (first term); UTF-8 if it cannot be encoded."""
    if text.isascii():
        return text.encode("ascii")
    for codec in python_encodings(specific_character_set):
        try:
            return text.encode(codec)
        except (UnicodeEncodeError, LookupError):
            continue
    return text.encode("utf-8")
