"""Run DCMTK's command-line tools (``findscu``, ``echoscu``, ``dump2dcm``) from tests.

Locating the tools
    ``findscu``/``echoscu`` are also the names of pynetdicom's example apps, which
    pyenv and some virtualenvs put first on ``PATH``. ``dcmtk_tool`` therefore looks in
    ``$DCMTK_BIN_DIR`` first, then ``/usr/bin``, ``/usr/local/bin`` and ``PATH``, and only
    accepts a binary whose ``--version`` output names DCMTK.

Policy when DCMTK is missing (``require_dcmtk``)
    With ``CI=true`` in the environment the test fails (the CI image must have DCMTK),
    anywhere else it is skipped.

How the DIMSE statuses are obtained
    ``findscu -d`` (debug logging) prints every incoming DIMSE message between
    ``INCOMING DIMSE MESSAGE`` and ``END DIMSE MESSAGE`` banners, one ``Name : value``
    line per command field, including ``DIMSE Status : 0xff00: Pending: …``. A response
    with status detail is followed by ``Status Detail:`` and a dcmdump-style listing of
    the status elements (``(0000,0901) AT …`` OffendingElement, ``(0000,0902) LO […]``
    ErrorComment). ``findscu -X -od DIR`` writes each response identifier to
    ``DIR/rspNNNN.dcm`` and logs ``Writing response dataset to file: PATH`` right after
    the response it belongs to, so every data set is tied to its own status by
    position in the log, not by counting files. The parser is a small state machine
    over those lines; it is strict (an unparseable status raises) so a change in
    findscu's log format fails loudly instead of silently yielding no statuses.

Every subprocess runs with a timeout.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.helpers.worklists import write_wl

DCMTK_TOOLS = ("findscu", "echoscu", "dump2dcm", "wlmscpfs")
SEARCH_DIRS = ("/usr/bin", "/usr/local/bin")
#: Upper bound for any one DCMTK client run, in seconds.
CLIENT_TIMEOUT = 30.0


@functools.cache
def dcmtk_tool(name: str) -> str | None:
    """Absolute path of DCMTK's ``name`` or None when it is not installed."""
    candidates: list[str] = []
    if env_dir := os.environ.get("DCMTK_BIN_DIR"):
        candidates.append(os.path.join(env_dir, name))
    candidates += [os.path.join(d, name) for d in SEARCH_DIRS]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates.append(os.path.join(directory, name))
    seen: set[str] = set()
    for path in candidates:
        real = os.path.realpath(path)
        if real in seen or not (os.path.isfile(real) and os.access(real, os.X_OK)):
            continue
        seen.add(real)
        try:
            out = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "dcmtk" in (out.stdout + out.stderr).lower():
            return path
    return None


def require_dcmtk(*names: str) -> dict[str, str]:
    """Paths of the DCMTK tools ``names`` (default: all); skip, or fail when ``CI=true``."""
    wanted = names or DCMTK_TOOLS
    found = {name: dcmtk_tool(name) for name in wanted}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        message = f"DCMTK tools not found: {', '.join(missing)} (install the dcmtk package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true, so DCMTK is required", pytrace=False)
        pytest.skip(message)
    return {name: path for name, path in found.items() if path is not None}


def _tool(name: str) -> str:
    return require_dcmtk(name)[name]


# --------------------------------------------------------------------------- results


@dataclass
class DimseResponse:
    """One C-FIND/C-ECHO response as logged by findscu/echoscu (plus its data set)."""

    status: int
    has_dataset: bool = False
    dataset: Dataset | None = None
    offending_elements: tuple[int, ...] = ()
    error_comment: str | None = None

    @property
    def is_pending(self) -> bool:
        return self.status in (0xFF00, 0xFF01)


@dataclass
class ClientResult:
    """What one DCMTK client run produced."""

    argv: list[str]
    returncode: int
    output: str
    responses: list[DimseResponse] = field(default_factory=list)

    @property
    def pending(self) -> list[DimseResponse]:
        return [r for r in self.responses if r.is_pending]

    @property
    def final(self) -> DimseResponse | None:
        finals = [r for r in self.responses if not r.is_pending]
        return finals[-1] if finals else None

    @property
    def final_status(self) -> int | None:
        return None if self.final is None else self.final.status

    @property
    def datasets(self) -> list[Dataset]:
        return [r.dataset for r in self.responses if r.dataset is not None]

    @property
    def rejection(self) -> tuple[str, ...]:
        """The ``Result:``/``Source:``/``Reason:`` lines of an association rejection."""
        lines = self.output.splitlines()
        for n, line in enumerate(lines):
            if "Association Rejected" in line:
                tail = lines[n + 1 : n + 4]
                return tuple(
                    _strip_level(t)
                    for t in tail
                    if _strip_level(t).startswith(("Result", "Source", "Reason"))
                )
        return ()

    @property
    def association_failed(self) -> bool:
        return "Association Request Failed" in self.output or bool(self.rejection)

    def describe(self) -> str:
        """Compact human-readable summary for assertion messages."""
        statuses = ", ".join(f"0x{r.status:04X}" for r in self.responses) or "none"
        return (
            f"$ {' '.join(self.argv)}\nexit status {self.returncode}; statuses: {statuses}\n"
            + "\n".join(self.output.splitlines()[-25:])
        )


_LEVEL = re.compile(r"^[TDIWEF]: ")
_STATUS = re.compile(r"^(0x[0-9a-fA-F]{4})\b")
_TAG = re.compile(r"\(([0-9a-fA-F]{4}),([0-9a-fA-F]{4})\)")


def _strip_level(line: str) -> str:
    return _LEVEL.sub("", line, count=1)


def parse_dimse_log(output: str) -> list[DimseResponse]:
    """Every incoming DIMSE response of a DCMTK ``-d`` log, in order.

    Raises ValueError on a message block without a parseable ``DIMSE Status``.
    """
    responses: list[DimseResponse] = []
    lines = [_strip_level(line) for line in output.splitlines()]
    n = 0
    while n < len(lines):
        line = lines[n]
        if "INCOMING DIMSE MESSAGE" in line:
            fields: dict[str, str] = {}
            n += 1
            while n < len(lines) and "END DIMSE MESSAGE" not in lines[n]:
                name, sep, value = lines[n].partition(":")
                if sep:
                    fields[name.strip()] = value.strip()
                n += 1
            if "RSP" not in fields.get("Message Type", ""):
                n += 1
                continue
            match = _STATUS.match(fields.get("DIMSE Status", ""))
            if not match:
                raise ValueError(f"no DIMSE Status in response block: {fields!r}")
            responses.append(
                DimseResponse(
                    status=int(match.group(1), 16),
                    has_dataset=fields.get("Data Set", "").startswith("present"),
                )
            )
        elif line.startswith("Status Detail:") and responses:
            # dcmdump listing of the status detail elements, until the next log item
            n += 1
            while n < len(lines) and (lines[n].startswith(("(", "#")) or not lines[n].strip()):
                detail = lines[n]
                if detail.startswith("(0000,0901)"):
                    tags = _TAG.findall(detail.split("AT", 1)[1].split("#", 1)[0])
                    responses[-1].offending_elements = tuple(int(g + e, 16) for g, e in tags)
                elif detail.startswith("(0000,0902)"):
                    text = detail.split("[", 1)[1].rsplit("]", 1)[0] if "[" in detail else ""
                    responses[-1].error_comment = text.strip()
                n += 1
            continue
        elif line.startswith("Writing response dataset to file:") and responses:
            path = line.split(":", 1)[1].strip()
            if os.path.getsize(path) == 0:
                # an empty identifier (no keys asked for): findscu cannot write an empty
                # data set ("Illegal call") and leaves the file empty
                responses[-1].dataset = Dataset()
            else:
                # read fully into memory now (the directory is removed afterwards);
                # elements stay raw so compare.canonical sees the bytes as received
                responses[-1].dataset = Dataset(dcmread(path))
        n += 1
    return responses


# --------------------------------------------------------------------------- clients


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.output or b"").decode("utf-8", "replace")
        raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}\n{out}") from exc
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def findscu(
    port: int,
    query: Dataset | None = None,
    *,
    host: str = "127.0.0.1",
    aec: str = "ANY-SCP",
    aet: str = "FINDSCU",
    keys: Sequence[str] = (),
    extra: Sequence[str] = (),
    wrapper: Sequence[str] = (),
    timeout: float = CLIENT_TIMEOUT,
) -> ClientResult:
    """Run ``findscu -W`` with ``query`` (and ``-k`` ``keys``); collect statuses and data sets.

    ``wrapper`` is prepended to the command (e.g. ``nsenter --net=…`` to reach a server
    in another network namespace).
    """
    with tempfile.TemporaryDirectory(prefix="findscu-") as tmp:
        out_dir = Path(tmp) / "rsp"
        out_dir.mkdir()
        argv = [
            *wrapper,
            _tool("findscu"),
            "-W",
            *_client_options(aet, aec),
            "-X",
            "-od",
            str(out_dir),
            *extra,
        ]
        for key in keys:
            argv += ["-k", key]
        argv += [host, str(port)]
        if query is not None:
            query_file = Path(tmp) / "query.dcm"
            write_wl(query_file, query)
            argv.append(str(query_file))
        returncode, output = _run(argv, timeout)
        responses = parse_dimse_log(output)
    return ClientResult(argv, returncode, output, responses)


def _client_options(aet: str, aec: str) -> list[str]:
    """Debug output (parsed for statuses), AE titles and bounded network timeouts."""
    return ["-d", "-aet", aet, "-aec", aec, "-to", "10", "-ta", "10", "-td", "20"]


def echoscu(
    port: int,
    *,
    host: str = "127.0.0.1",
    aec: str = "ANY-SCP",
    aet: str = "ECHOSCU",
    extra: Sequence[str] = (),
    wrapper: Sequence[str] = (),
    timeout: float = CLIENT_TIMEOUT,
) -> ClientResult:
    """Run ``echoscu -d`` once; the C-ECHO-RSP status is in ``responses``."""
    argv = [
        *wrapper,
        _tool("echoscu"),
        *_client_options(aet, aec),
        *extra,
        host,
        str(port),
    ]
    returncode, output = _run(argv, timeout)
    return ClientResult(argv, returncode, output, parse_echo_log(output))


_ECHO = re.compile(r"Received Echo Response \((.*)\)")


def parse_echo_log(output: str) -> list[DimseResponse]:
    """echoscu logs no DIMSE dump, only ``Received Echo Response (Success)`` or the status."""
    responses = []
    for line in output.splitlines():
        match = _ECHO.search(line)
        if match:
            text = match.group(1)
            hexcode = re.search(r"0x([0-9a-fA-F]{4})", text)
            if text == "Success":
                responses.append(DimseResponse(0x0000))
            elif hexcode:
                responses.append(DimseResponse(int(hexcode.group(1), 16)))
            else:
                raise ValueError(f"unparseable echo status: {line!r}")
    return responses


def dump2dcm(dump: Path | str, out: Path | str, *, timeout: float = CLIENT_TIMEOUT) -> Path:
    """Convert a dcmdump text file to a DICOM file (explicit VR little endian)."""
    argv = [_tool("dump2dcm"), "+te", str(dump), str(out)]
    returncode, output = _run(argv, timeout)
    if returncode != 0:
        raise AssertionError(f"dump2dcm failed ({returncode}): {' '.join(argv)}\n{output}")
    return Path(out)


def dcmtk_examples_dir() -> Path | None:
    """DCMTK's installed example directory (``wlistdb``/``wlistqry``), if any."""
    for candidate in (
        os.environ.get("DCMTK_EXAMPLES_DIR", ""),
        "/usr/share/doc/dcmtk/examples",
        "/usr/share/doc/dcmtk-doc/examples",
        "/usr/local/share/doc/dcmtk/examples",
    ):
        if candidate and (Path(candidate) / "wlistdb").is_dir():
            return Path(candidate)
    return None


def which(name: str) -> str | None:
    """``shutil.which`` re-exported for helpers that need plain system tools."""
    return shutil.which(name)
