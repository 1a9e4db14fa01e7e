"""Response identifiers encoded straight from an entry's raw values (PS3.5 7, PS3.4 K.6).

:class:`~wlmd.worklist.respond.ResponsePlan` builds a node tree per matching
entry and :func:`~wlmd.worklist.encode.encode_identifier` writes it; for a
match-all of 100,000 entries that is two million small objects made and
dropped, most of the time of the answer. A :class:`ResponseEncoder` compiles
the plan once per query and transfer syntax into element headers already
packed, then writes each entry's values between them: one ``bytes`` per
response, nothing else allocated per element.

The bytes are the same as the tree path's, by construction and by test
(``tests/unit/worklist/test_respbytes.py`` compares both on every kind of
entry): where a wlmscpfs cleanup would change the response (an empty
description, an empty code or reference item, PS3.4 K.6 / dcmwlm's
``HandleNonSequenceElementInResultDataset``), the entry is answered through the
tree path instead. Those are rare in practice; completeness-checked entries
(``--enable-file-reject``) have none of the code cases.
"""

from __future__ import annotations

import struct
import zlib

from wlmd.settings.config import ReturnCharset
from wlmd.worklist import keys
from wlmd.worklist.encode import (
    BINARY_16,
    ITEM,
    LONG_VRS,
    NUL_PADDED,
    Encoding,
    encode_identifier,
    encode_nodes,
    header_parts,
)
from wlmd.worklist.entry import Item, WorklistEntry
from wlmd.worklist.packed import Layout
from wlmd.worklist.respond import (
    ECHO,
    ELEMENT,
    PREGNANCY,
    SEQUENCE,
    ResponseElement,
    ResponseNode,
    ResponsePlan,
    ResponseSequence,
    Step,
    declared_charset,
    echo_nodes,
    pregnancy_value,
)
from wlmd.worklist.searchmask import MaskElement, MaskNode

#: A compiled element: (kind, tag, head bytes, length packer, pad byte, swap 16-bit, long VR)
#: A compiled sequence: (kind, tag, head bytes, length packer, sub-steps, echo item bytes, ...)
_Compiled = tuple[object, ...]
#: Entry shapes one query keeps bound programs for (a site has a few dozen)
_PROGRAMS = 256


class ResponseEncoder:
    """One query's responses in one transfer syntax, encoded per entry."""

    def __init__(
        self,
        plan: ResponsePlan,
        enc: Encoding,
        return_charset: ReturnCharset,
        compression_level: int = 6,
    ) -> None:
        self._plan = plan
        self._enc = enc
        self._return_charset = return_charset
        self._level = compression_level
        #: the syntax's rules before deflation: the parts are joined, then deflated once
        self._raw = Encoding(enc.implicit_vr, enc.little_endian)
        order = "<" if enc.little_endian else ">"
        self._item_head = struct.pack(order + "HH", ITEM >> 16, ITEM & 0xFFFF)
        self._item_len = struct.Struct(order + "I").pack
        steps = tuple(sorted(plan.steps, key=lambda s: s[1]))
        self._steps = self._compile(steps)
        #: where a Specific Character Set goes among the sorted top-level elements
        self._charset_at = sum(1 for s in steps if s[1] < keys.SPECIFIC_CHARACTER_SET)
        self._charset_cache: dict[str, bytes] = {}
        #: id(root layout) -> (layout, its bound program): see _bind
        self._programs: dict[int, tuple[Layout, tuple[_Compiled, ...]]] = {}
        tags = [s[1] for s in steps]
        #: cases the fast path does not write (duplicate tags; echoed SPS with codes cleanup)
        self._always_tree = len(set(tags)) != len(tags) or keys.SPECIFIC_CHARACTER_SET in tags
        sps = _step(steps, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        if plan.sps_codes and (sps is None or sps[0] != SEQUENCE):
            self._always_tree = True
        self._sps_sub = sps[3] if sps is not None and sps[0] == SEQUENCE else ()
        self._plan_cleanups(steps)

    # --- compiling ----------------------------------------------------------------

    def _compile(self, steps: tuple[Step, ...]) -> tuple[_Compiled, ...]:
        enc = self._enc
        out: list[_Compiled] = []
        for kind, tag, vr, sub, mask_items in sorted(steps, key=lambda s: s[1]):
            head, length = header_parts(tag, vr, enc.implicit_vr, enc.little_endian)
            if kind in (ELEMENT, PREGNANCY):
                pad = b"\x00" if vr in NUL_PADDED else b" "
                swap = vr in BINARY_16 and not enc.little_endian
                out.append((kind, tag, head, length.pack, pad, swap, vr in LONG_VRS, vr))
            elif kind == SEQUENCE:
                echo = self._encode_items([echo_nodes(mask_items[0])])
                out.append((kind, tag, head, length.pack, self._compile(sub), echo))
            else:
                out.append(
                    (kind, tag, encode_identifier(_echo_sequence(tag, mask_items), self._raw))
                )
        return tuple(out)

    def _encode_items(self, items: list[list[ResponseNode]]) -> bytes:
        body = b""
        for item in items:
            data = b"".join(encode_nodes(item, self._raw))
            body += self._item_head + self._item_len(len(data)) + data
        return body

    # --- encoding -----------------------------------------------------------------

    def encode(self, entry: WorklistEntry) -> bytes:
        """The encoded response identifier for ``entry`` (deflated if the syntax says so)."""
        data = None if self._always_tree or self._cleanup_applies(entry) else self._fast(entry)
        if data is None:
            nodes = self._plan.build(entry, self._return_charset)
            return encode_identifier(nodes, self._enc, self._level)
        if self._enc.deflated:
            compressor = zlib.compressobj(self._level, zlib.DEFLATED, -zlib.MAX_WBITS)
            data = compressor.compress(data) + compressor.flush()
        return data

    def _fast(self, entry: WorklistEntry) -> bytes | None:
        layout, blob = entry.packed
        program = self._programs.get(id(layout))
        if program is None or program[0] is not layout:
            program = (layout, self._bind(self._steps, layout))
            if len(self._programs) < _PROGRAMS:
                self._programs[id(layout)] = program
        parts: list[bytes] = []
        if not self._run(program[1], blob, layout.table(blob), entry, parts):
            return None
        charset = declared_charset(entry, self._return_charset)
        if charset and self._plan.charset_may_matter:
            element = self._charset_cache.get(charset)
            if element is None:
                element = encode_identifier(
                    [ResponseElement(keys.SPECIFIC_CHARACTER_SET, "CS", charset.encode())],
                    self._raw,
                )
                self._charset_cache[charset] = element
            return (
                b"".join(parts[: self._charset_at]) + element + b"".join(parts[self._charset_at :])
            )
        return b"".join(parts)

    def _bind(self, steps: tuple[_Compiled, ...], layout: Layout) -> tuple[_Compiled, ...]:
        """The compiled steps with each value's place in an entry of ``layout`` filled in.

        Done once per query and entry shape (a RIS writes thousands of files of
        one shape), so that per entry only the blob's offset table is read.
        """
        where = layout.where
        width = layout.width
        out: list[_Compiled] = []
        for step in steps:
            kind = step[0]
            if kind in (ELEMENT, PREGNANCY):
                _, tag, head, pack, pad, swap, long_ok, vr = step
                place = where.get(tag)  # type: ignore[call-overload]
                # ELEMENT: the value's index in the offsets (-1: none); PREGNANCY: its VR
                source = (
                    vr if kind == PREGNANCY else place // width if place.__class__ is int else -1
                )
                out.append((kind, head, pack, pad, swap, long_ok, source))
            elif kind == SEQUENCE:
                _, tag, head, pack, sub, echo = step
                place = where.get(tag)  # type: ignore[call-overload]
                children = (
                    tuple(self._bind(sub, child) for child in place)  # type: ignore[arg-type, union-attr]
                    if place.__class__ is tuple and place
                    else None
                )
                out.append((SEQUENCE, head, pack, children, echo))
            else:
                out.append((kind, step[2]))
        return tuple(out)

    def _run(
        self,
        program: tuple[_Compiled, ...],
        blob: bytes,
        offsets: tuple[int, ...],
        entry: WorklistEntry,
        parts: list[bytes],
    ) -> bool:
        """Append one encoded part per step of ``program``; False where the tree must answer."""
        item_head, item_len = self._item_head, self._item_len
        for step in program:
            kind = step[0]
            if kind in (ELEMENT, PREGNANCY):
                _, head, pack, pad, swap, long_ok, source = step
                if kind == PREGNANCY:
                    value = pregnancy_value(source, entry)  # type: ignore[arg-type]
                else:
                    at: int = source  # type: ignore[assignment]  # into offsets, -1: no value
                    value = b"" if at < 0 else blob[offsets[at] : offsets[at + 1]]
                if len(value) & 1:
                    value += pad  # type: ignore[operator]
                elif swap and len(value) == 2:
                    value = value[::-1]
                if len(value) > 0xFFFF and not long_ok:
                    return False
                parts.append(head + pack(len(value)) + value)  # type: ignore[operator]
            elif kind == SEQUENCE:
                _, head, pack, children, echo = step
                if children is not None:
                    body: list[bytes] = []
                    for child in children:  # type: ignore[attr-defined]
                        inner: list[bytes] = []
                        if not self._run(child, blob, offsets, entry, inner):
                            return False
                        data = b"".join(inner)
                        body.append(item_head + item_len(len(data)) + data)
                    items = b"".join(body)
                else:
                    items = echo  # type: ignore[assignment]
                parts.append(head + pack(len(items)) + items)  # type: ignore[operator]
            else:
                parts.append(step[1])  # type: ignore[arg-type]
        return True

    # --- the wlmscpfs cleanups (respond.py) that would change this entry's response -----

    def _cleanup_applies(self, entry: WorklistEntry) -> bool:
        root = entry.elements
        if self._root_codes is not None and _codes_change(*self._root_codes, root):
            return True
        for step in self._references:
            if _single_item_both_empty(
                step,
                root.get(step[1]),
                keys.REFERENCED_SOP_CLASS_UID,
                keys.REFERENCED_SOP_INSTANCE_UID,
            ):
                return True
        if self._sps_codes is not None:
            sps = root.get(keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            if not isinstance(sps, list) or not sps:
                return True  # the mask's item echoed, then cleaned: left to the tree path
            return _codes_change(*self._sps_codes, sps[0])
        return False

    def _plan_cleanups(self, steps: tuple[Step, ...]) -> None:
        """The plan steps each cleanup of :meth:`ResponsePlan.build` looks at, found once."""
        plan = self._plan
        self._root_codes = self._sps_codes = None
        if plan.root_codes:
            self._root_codes = (
                _step(steps, keys.REQUESTED_PROCEDURE_CODE_SEQUENCE),
                _step(steps, keys.REQUESTED_PROCEDURE_DESCRIPTION),
            )
        if plan.sps_codes:
            self._sps_codes = (
                _step(self._sps_sub, keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE),
                _step(self._sps_sub, keys.SPS_DESCRIPTION),
            )
        self._references: list[Step] = []
        if plan.references:
            for t in (keys.REFERENCED_STUDY_SEQUENCE, keys.REFERENCED_PATIENT_SEQUENCE):
                step = _step(steps, t)
                if step is not None and step[0] == SEQUENCE:
                    self._references.append(step)


def _step(steps: tuple[Step, ...], tag: int) -> Step | None:
    for step in steps:
        if step[1] == tag:
            return step
    return None


def _empty(value: object) -> bool:
    return not (isinstance(value, bytes) and value)


def _codes_change(code_step: Step | None, text_step: Step | None, source: Item) -> bool:
    """Whether ``_clean_description_and_codes`` would drop the code sequence or the description."""
    if code_step is not None:
        if code_step[0] == ECHO:
            if not code_step[4]:
                return True
        elif code_step[0] == SEQUENCE and _single_item_both_empty(
            code_step, source.get(code_step[1]), keys.CODE_VALUE, keys.CODING_SCHEME_DESIGNATOR
        ):
            return True
    return text_step is not None and text_step[0] == ELEMENT and _empty(source.get(text_step[1]))


def _single_item_both_empty(step: Step, value: object, first: int, second: int) -> bool:
    """Whether the response sequence of ``step`` has one item with both attributes empty."""
    _, _, _, sub, mask_items = step
    entry_items = value if isinstance(value, list) else []
    if len(entry_items) >= 2:
        return False
    if not entry_items:
        mask_item = mask_items[0]
        return all(_mask_empty(mask_item, t) for t in (first, second))
    both = all(any(s[1] == t and s[0] == ELEMENT for s in sub) for t in (first, second))
    return both and _empty(entry_items[0].get(first)) and _empty(entry_items[0].get(second))


def _mask_empty(item: list[MaskNode], tag: int) -> bool:
    for node in item:
        if node.tag == tag:
            return isinstance(node, MaskElement) and not node.raw.rstrip(b" \x00")
    return False


def _echo_sequence(tag: int, mask_items: list[list[MaskNode]]) -> list[ResponseNode]:
    return [ResponseSequence(tag, [echo_nodes(item) for item in mask_items])]
