"""Fault injection with real wlmd processes and DCMTK's findscu as the modality.

A full disk under the request files (``-rfp``)
    wlmd runs in a private mount namespace (``unshare --mount``) with a 12 KiB
    tmpfs mounted over the request-file directory, so only wlmd sees the tiny
    file system and nothing on the host fills up. Each request is ~5 KiB (a long
    PatientComments return key), so the first fits and the next is cut short by
    ENOSPC part way through. Every query must still be answered with all its
    matches; each failure is logged at ERROR level with the path and "No space
    left on device"; no empty or truncated request file is left behind; the
    supervisor lives; once there is room again request files are written again.
    The test reads the namespace's tmpfs through ``/proc/<wlmd pid>/root``.

Unreadable worklist files
    A mode-000 ``.wl`` file next to good ones. Root ignores file permissions, so
    as root wlmd runs under ``setpriv`` with CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH dropped from its bounding set (it stays uid 0, owner of
    the test files). Over 10 queries the good entries are served each time and
    the unreadable file is logged once with the reason; after ``chmod 644`` alone
    (no new content, no mtime change) the next query serves it.

Both need what only root (CAP_SYS_ADMIN, CAP_SETPCAP) has here: without it they
are skipped, and with ``CI=true`` they fail instead (nothing is skipped in CI).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import ClientResult, findscu, require_dcmtk
from tests.helpers.worklists import complete_entry, make_area

pytestmark = [pytest.mark.dcmtk, pytest.mark.usefixtures("wlmd_available")]

AREA = "WLMD"
TMPFS_SIZE = 12 * 1024  # three pages: one ~5 KiB request file fits, the next is cut short
PADDING = "x" * 5000  # makes every request file take two pages
ENOSPC_TEXT = "No space left on device"
#: findscu runs until the tmpfs must have filled up (it does after the second).
MAX_FILL_QUERIES = 6
#: Drops what lets root read any file; the command is exec'ed (Server.proc stays wlmd).
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def _require(ok: bool, message: str) -> None:
    """Skip when ``ok`` is false; with CI=true fail instead (nothing is skipped in CI)."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true, so this is required", pytrace=False)
    pytest.skip(message)


def _mount_wrapper(directory: Path, mounts: str) -> list[str]:
    """Prefix: a new mount namespace, the shell's ``mounts`` on ``$0`` (``directory``), exec."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'{mounts} && exec "$@"',
        str(directory),
    ]


def _tmpfs_wrapper(directory: Path, size: int) -> list[str]:
    """Prefix: new mount namespace, a ``size``-byte tmpfs over ``directory``, then exec."""
    return _mount_wrapper(directory, f'mount -t tmpfs -o size={size},mode=0755 tmpfs "$0"')


@functools.cache
def mount_namespace_available() -> bool:
    """Whether a private mount namespace with a tmpfs can be made here (root, no seccomp)."""
    with tempfile.TemporaryDirectory(prefix="wlmd-mntns-") as probe:
        try:
            proc = subprocess.run(
                [*_tmpfs_wrapper(Path(probe), 4096), "true"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    return proc.returncode == 0


# --------------------------------------------------------------------------- disk full


def _fill_query(patient_id: str = "") -> list[str]:
    """The keys of one query: several matching keys, return keys, a long padding value."""
    return [
        f"PatientID={patient_id}",
        "PatientName",
        "AccessionNumber",
        "ScheduledProcedureStepSequence[0].Modality=CT",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
        f"PatientComments={PADDING}",
    ]


def _describe(result: ClientResult) -> str:
    """``result.describe()`` without the 5000-character padding (twice) in it."""
    return result.describe().replace(PADDING, "<padding>")


def _is_complete_request(text: str) -> bool:
    """A request file as written in full: header, the whole padding, the last element.

    Elements are dumped in tag order, so the Scheduled Procedure Step sequence
    (0040,0100) comes last and its delimiter line ends the file.
    """
    lines = text.splitlines()
    return (
        text.startswith("\n# Dicom-Data-Set\n")
        and text.endswith("\n")
        and "(0010,0020)" in text
        and f"[{PADDING}]" in text
        and lines[-1].startswith("(fffe,e0dd)")
    )


def test_full_disk_under_request_files_still_answers_and_logs(tmp_path: Path) -> None:
    require_dcmtk("findscu")
    _require(
        mount_namespace_available(),
        "cannot mount a tmpfs in a private mount namespace (needs root / CAP_SYS_ADMIN)",
    )
    root = tmp_path / "root"
    make_area(root, AREA, {f"f{n}.wl": complete_entry(PatientID=f"F{n}") for n in range(3)})
    requests = tmp_path / "requests"
    requests.mkdir()
    options = ["-rfp", str(requests), "-rff", "#t_#i.dump"]
    wrapper = _tmpfs_wrapper(requests, TMPFS_SIZE)
    with servers.wlmd(root, options, wrapper=wrapper, log_dir=tmp_path / "logs") as server:
        # the request directory as wlmd sees it: the tmpfs in its mount namespace
        inside = Path(f"/proc/{server.proc.pid}/root{requests}")
        fs = os.statvfs(inside)
        assert fs.f_blocks * fs.f_frsize == TMPFS_SIZE, "the tmpfs is not where wlmd writes"

        def errors() -> list[str]:
            return [line for line in server.log().splitlines() if "request file" in line]

        queries = 0
        while queries < MAX_FILL_QUERIES and len(errors()) < 2:
            result = findscu(server.port, aec=AREA, keys=_fill_query())
            queries += 1
            assert result.final_status == 0x0000, _describe(result)
            assert sorted(ds.PatientID for ds in result.datasets) == ["F0", "F1", "F2"]
        failed = errors()
        assert len(failed) == 2, f"tmpfs never filled up in {queries} queries\n{server.log()}"

        files = sorted(inside.iterdir())
        written = queries - len(failed)
        assert written >= 1, "not even the first request file fitted"
        assert len(files) == written, (
            f"{len(files)} request files for {written} successful writes (failed ones left "
            f"behind?): {[(p.name, p.stat().st_size) for p in files]}"
        )
        for path in files:
            text = path.read_text("utf-8")
            assert _is_complete_request(text), f"{path.name}: incomplete ({len(text)} bytes)"

        pattern = re.compile(
            r" wlmd\[\d+\] ERROR .*could not write request file "
            + re.escape(str(requests))
            + r"/(\d{20}_\d+\.dump): .*"
            + re.escape(ENOSPC_TEXT)
        )
        for line in failed:
            match = pattern.search(line)
            assert match, f"unexpected request-file error line: {line!r}"
            assert not (inside / match.group(1)).exists(), f"left behind: {match.group(1)}"

        # still full: the query is answered all the same, one more error
        assert server.alive(), server.describe()
        result = findscu(server.port, aec=AREA, keys=_fill_query("F1"))
        assert result.final_status == 0x0000, _describe(result)
        assert [ds.PatientID for ds in result.datasets] == ["F1"]
        assert len(errors()) == 3

        # room again: the next request is written in full
        for path in files:
            path.unlink()
        result = findscu(server.port, aec=AREA, keys=_fill_query("F2"))
        assert result.final_status == 0x0000, _describe(result)
        assert [ds.PatientID for ds in result.datasets] == ["F2"]
        assert len(errors()) == 3, server.log()
        (after,) = inside.iterdir()
        text = after.read_text("utf-8")
        assert _is_complete_request(text) and "[F2]" in text, text[:200]
        assert server.alive(), server.describe()


# --------------------------------------------------------------------------- unreadable


def _no_read_access_prefix(probe: Path) -> list[str]:
    """Command prefix under which ``probe`` (mode 000) cannot be read; skip/fail if none."""
    if os.geteuid() != 0:
        _require(not os.access(probe, os.R_OK), f"{probe} is readable despite mode 000")
        return []
    try:
        proc = subprocess.run(
            [*NO_DAC, "head", "-c", "1", str(probe)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _require(False, f"setpriv cannot drop CAP_DAC_OVERRIDE here: {exc}")
    _require(
        proc.returncode != 0 and "Permission denied" in proc.stderr,
        f"root still reads a mode-000 file under {' '.join(NO_DAC)}: {proc.stderr.strip()}",
    )
    return NO_DAC


def test_unreadable_worklist_file_is_logged_once_and_served_after_chmod(tmp_path: Path) -> None:
    require_dcmtk("findscu")
    root = tmp_path / "root"
    good = {f"good{n}.wl": complete_entry(PatientID=f"G{n}") for n in range(3)}
    area = make_area(root, AREA, {**good, "secret.wl": complete_entry(PatientID="S1")})
    secret = area / "secret.wl"
    secret.chmod(0o000)
    prefix = _no_read_access_prefix(secret)

    with servers.wlmd(root, wrapper=prefix, log_dir=tmp_path / "logs") as server:
        for _ in range(10):
            result = findscu(server.port, aec=AREA, keys=["PatientID", "PatientName"])
            assert result.final_status == 0x0000, result.describe()
            assert sorted(ds.PatientID for ds in result.datasets) == ["G0", "G1", "G2"]
        assert server.alive(), server.describe()

        def mentions() -> list[str]:
            return [line for line in server.log().splitlines() if str(secret) in line]

        (line,) = mentions()  # once, not once per query
        assert re.search(r" wlmd\[\d+\] WARNING ", line), line
        assert f"worklist file {secret} skipped: Permission denied" in line, line

        # chmod alone changes only the ctime (IN_ATTRIB): wlmd must notice it
        mtime = secret.stat().st_mtime_ns
        secret.chmod(0o644)
        assert secret.stat().st_mtime_ns == mtime
        result = findscu(server.port, aec=AREA, keys=["PatientID", "PatientName"])
        assert result.final_status == 0x0000, result.describe()
        assert sorted(ds.PatientID for ds in result.datasets) == ["G0", "G1", "G2", "S1"]
        assert len(mentions()) == 1, "\n".join(mentions())
        assert server.alive(), server.describe()


def test_unlistable_storage_area_fails_the_query_instead_of_looking_empty(
    tmp_path: Path,
) -> None:
    """An area wlmd may enter but not list (mode 0300): 0xA700, not "nothing scheduled"."""
    require_dcmtk("findscu")
    root = tmp_path / "root"
    area = make_area(root, AREA, {f"good{n}.wl": complete_entry(PatientID=f"G{n}") for n in (0, 1)})
    secret = area / "good0.wl"
    secret.chmod(0o000)
    prefix = _no_read_access_prefix(secret)
    secret.chmod(0o644)
    area.chmod(0o300)
    try:
        with servers.wlmd(root, wrapper=prefix, log_dir=tmp_path / "logs") as server:
            for _ in range(3):
                result = findscu(server.port, aec=AREA, keys=["PatientID"])
                assert result.final_status == 0xA700, result.describe()
                assert result.datasets == []
            log = server.log()
            assert f"cannot read storage area {area}: Permission denied" in log, log
            assert "Worklist storage area cannot be read" in result.describe()
            assert "max_user_watches" not in log  # not a limit problem: no such advice

            area.chmod(0o755)
            result = findscu(server.port, aec=AREA, keys=["PatientID"])
            assert result.final_status == 0x0000, result.describe()
            assert sorted(ds.PatientID for ds in result.datasets) == ["G0", "G1"]
            assert server.alive(), server.describe()
    finally:
        area.chmod(0o755)


# --------------------------------------------------------------------------- read-only


def _read_only_wrapper(directory: Path) -> list[str]:
    """Prefix: new mount namespace with ``directory`` bind-mounted read-only, then exec
    (what the packaged unit's ProtectSystem=strict does to the worklist)."""
    return _mount_wrapper(directory, 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0"')


MPPS_POLICY = ["--mpps-ae-title", AREA, "--state-store", "STATE", "--mpps-entry-policy", "hide"]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--hl7-port", "--hl7-port: orders cannot be written to "),
        ("--api-port", "--api-port: no storage area under "),
        ("--mpps-area", f"--mpps-area {AREA}: storage area "),
    ],
    ids=["hl7", "api", "mpps"],
)
def test_writers_on_a_read_only_worklist_stop_start_up_with_one_line(
    tmp_path: Path, option: str, expected: str
) -> None:
    # HL7 intake and the REST API write entries: on a worklist mounted
    # read-only they would refuse every order or request later; they stop
    # start-up instead, naming the drop-in that fixes it.
    _require(mount_namespace_available(), "no private mount namespace (needs root)")
    root = tmp_path / "wl"
    make_area(root, AREA, {"a.wl": complete_entry(PatientID="RO1")})
    if option == "--mpps-area":  # the MPPS entry policy renames and removes entries
        state = str(tmp_path / "state.db")
        options = [*(state if o == "STATE" else o for o in MPPS_POLICY), option, AREA]
    else:
        options = [option, str(servers.free_port())]
    env = {**os.environ, "PYTHONPATH": str(servers.REPO_ROOT)}
    command = servers.wlmd_command(options, root, servers.free_port())
    proc = subprocess.run(
        [*_read_only_wrapper(root), *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert expected in lines[0] and "read-only file system" in lines[0], lines[0]
    assert "ReadWritePaths=/var/lib/wlmd/worklist" in lines[0], lines[0]
    # the same tree, writable: both start (the check looks at the mount, not the path)
    with servers.wlmd(root, options) as server:
        assert server.alive()
