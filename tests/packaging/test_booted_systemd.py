"""The Debian package under a real, booted systemd: maintainer scripts, units, RIS writers.

One throwaway Debian bookworm container (tests/helpers/container.py:
``systemd-nspawn -b --volatile=overlay --private-network``) is booted for the
module; the tests run in file order on it, as an administrator would: install,
use, restart, reload, break the configuration, upgrade (same version and a
newer one), run without the socket, remove, purge. Everything that talks DICOM
runs inside the container against its own loopback (DCMTK's echoscu/findscu,
pynetdicom from the package's private directory), so nothing binds or reaches
a host interface.

Two packages are built (module fixture ``debs``): this tree's, and the same
tree with a changelog entry one Debian revision newer, for upgrades.

Without root, systemd-nspawn or debootstrap the module is skipped, except with
CI=true, where it fails; the rootfs cache is /var/cache/wlmd-tests (see the
helper).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import container as ct
from tests.helpers.worklists import complete_entry, write_wl

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 600.0
APT_TIMEOUT = 300.0
STATE_TIMEOUT = 30.0
PORT = 104
AREA = "/var/lib/wlmd/worklist/WLMD"
SAMPLE = "/usr/share/doc/wlmd/examples/wlistdb/WLMD"
ECHO = ["echoscu", "-aec", "WLMD", "-to", "20", "-ta", "30", "-td", "30", "127.0.0.1", str(PORT)]
#: Inside the container: pynetdicom from the package's private directory holds
#: an association open (idle) for up to argv[1] seconds, or until the server ends it.
HOLDER = """
import sys, time
sys.path.insert(0, "/usr/lib/wlmd")
from pynetdicom import AE
ae = AE(ae_title="HOLDER")
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
ae.add_requested_context("1.2.840.10008.1.1")
assoc = ae.associate("127.0.0.1", 104, ae_title="WLMD")
print("established" if assoc.is_established else "not established", flush=True)
deadline = time.monotonic() + float(sys.argv[1])
while assoc.is_established and time.monotonic() < deadline:
    time.sleep(0.1)
print("ended by the server" if not assoc.is_established else "released", flush=True)
if assoc.is_established:
    assoc.release()
"""
#: Run as the RIS user: the lockfile protocol of wlmd(8) "STORAGE LAYOUT".
WRITER = """
import base64, fcntl, os, sys
area, name, data = sys.argv[1], sys.argv[2], base64.b64decode(sys.argv[3])
with open(os.path.join(area, "lockfile"), "r+b") as lock:
    fcntl.lockf(lock, fcntl.LOCK_EX)
    temp = os.path.join(area, "." + name + ".tmp")
    with open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temp, 0o640)
    os.rename(temp, os.path.join(area, name))
    fcntl.lockf(lock, fcntl.LOCK_UN)
print("written", flush=True)
"""

#: Inside the container: one UPS operation with pynetdicom from the package's
#: private directory: "create" prints status and the assigned UID, "get UID" the state.
UPS_CLIENT = """
import sys
sys.path.insert(0, "/usr/lib/wlmd")
from pydicom.dataset import Dataset
from pynetdicom import AE
PUSH = "1.2.840.10008.5.1.4.34.6.1"
ae = AE(ae_title="PERFORMER")
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
ae.add_requested_context(PUSH)
assoc = ae.associate("127.0.0.1", 104, ae_title="UPS")
assert assoc.is_established, "no association"
if sys.argv[1] == "create":
    ds = Dataset()
    ds.PatientName, ds.PatientID = "Booted^Test", "UPS-0001"
    ds.ProcedureStepState, ds.ScheduledProcedureStepPriority = "SCHEDULED", "MEDIUM"
    ds.ProcedureStepLabel, ds.WorklistLabel = "CT head", "CT"
    ds.ScheduledProcedureStepStartDateTime, ds.InputReadinessState = "20300101080000", "READY"
    status, created = assoc.send_n_create(ds, PUSH, None)
    print(f"0x{status.Status:04X}", created.SOPInstanceUID)
else:
    status, got = assoc.send_n_get([0x00741000], PUSH, sys.argv[2])
    print(f"0x{status.Status:04X}", got.ProcedureStepState)
assoc.release()
"""

MPPS_CLIENT = """
import sys
sys.path.insert(0, "/usr/lib/wlmd")
from pydicom.dataset import Dataset
from pynetdicom import AE
MPPS = "1.2.840.10008.3.1.2.3.3"
ae = AE(ae_title="CT01")
ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
ae.add_requested_context(MPPS)
assoc = ae.associate("127.0.0.1", 104, ae_title="WLMD")
assert assoc.is_established, "no association"
step = Dataset()
step.StudyInstanceUID, step.ScheduledProcedureStepID = sys.argv[1], sys.argv[2]
ds = Dataset()
ds.ScheduledStepAttributesSequence = [step]
ds.PerformedProcedureStepID, ds.PerformedStationAETitle, ds.Modality = "PPS1", "CT01", "CT"
ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime = "20261202", "0930"
ds.PerformedProcedureStepStatus = "IN PROGRESS"
status, _ = assoc.send_n_create(ds, MPPS, "2.25.9090")
print(f"0x{status.Status:04X}")
assoc.release()
"""


# --------------------------------------------------------------------------- fixtures


def build(source: Path, out: Path) -> Path:
    proc = subprocess.run(
        [str(source / "packaging" / "build-deb"), str(out)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, f"build-deb failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This tree's package and one Debian revision newer (for upgrades)."""
    ct.require_tools()
    ct.need(shutil.which("dpkg-buildpackage"), "dpkg-buildpackage not found (scripts/bootstrap)")
    share = tmp_path_factory.mktemp("share")
    current = build(REPO_ROOT, share)
    copy = tmp_path_factory.mktemp("newer") / "src"
    shutil.copytree(
        REPO_ROOT,
        copy,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "__pycache__", "*.egg-info", ".*_cache"
        ),
    )
    changelog = copy / "packaging" / "debian" / "changelog"
    text = changelog.read_text("utf-8")
    first = text.splitlines()[0]
    match = re.match(r"^wlmd \(([^)]+)-(\d+)\)", first)
    assert match, first
    newer = f"{match.group(1)}-{int(match.group(2)) + 1}"
    trailer = re.search(r"^ -- .*$", text, re.M)
    assert trailer
    entry = (
        f"wlmd ({newer}) unstable; urgency=medium\n\n  * Test upgrade.\n\n{trailer.group(0)}\n\n"
    )
    changelog.write_text(entry + text, "utf-8")
    later = build(copy, share)
    assert later.name == f"wlmd_{newer}_all.deb", later
    return current, later


@pytest.fixture(scope="module")
def box(debs: tuple[Path, Path]) -> Iterator[ct.Container]:
    """The booted container, the packages in /root."""
    share = debs[0].parent
    share.chmod(0o755)
    started = time.monotonic()
    with ct.booted(share) as container:
        container.sh(f"cp {ct.SHARE}/*.deb /root/")
        print(f"container booted in {time.monotonic() - started:.1f}s ({container.boot_state})")
        yield container


# --------------------------------------------------------------------------- helpers


def unit_state(box: ct.Container, unit: str) -> dict[str, str]:
    props = "ActiveState,SubState,LoadState,UnitFileState,Result,NRestarts,ExecMainStatus,MainPID"
    out = box.run(["systemctl", "show", f"--property={props}", unit]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_state(
    box: ct.Container, unit: str, want: str, timeout: float = STATE_TIMEOUT
) -> dict[str, str]:
    """Poll ``unit`` until ActiveState is ``want`` (systemd has no wait-for-state command)."""
    deadline = time.monotonic() + timeout
    while True:
        state = unit_state(box, unit)
        if state.get("ActiveState") == want or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def listening(box: ct.Container, port: int = PORT) -> bool:
    """Whether anything in the container listens on TCP ``port`` (from /proc/net)."""
    text = box.run(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).stdout
    hexport = f":{port:04X}"
    return any(
        fields[1].endswith(hexport) and fields[3] == "0A"
        for fields in (line.split() for line in text.splitlines()[1:])
        if len(fields) > 3
    )


def echo(box: ct.Container) -> subprocess.CompletedProcess[str]:
    return box.run(ECHO, check=False, timeout=60)


def dpkg_install(box: ct.Container, deb: str) -> subprocess.CompletedProcess[str]:
    return box.run(
        ["env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", f"/root/{deb}"],
        timeout=APT_TIMEOUT,
    )


def installed_version(box: ct.Container) -> str:
    return box.run(["dpkg-query", "-W", "-f=${Version}", "wlmd"]).stdout.strip()


def journal_lines(box: ct.Container, pattern: str, *extra: str) -> str:
    """wlmd's journal lines matching ``pattern`` (``-o cat`` unless ``extra`` says otherwise)."""
    return box.run(
        ["journalctl", "--no-pager", "-q", "-o", "cat", "-u", "wlmd", *extra, "-g", pattern],
        check=False,
    ).stdout


def journal_count(box: ct.Container, pattern: str, *extra: str) -> int:
    return len([line for line in journal_lines(box, pattern, *extra).splitlines() if line.strip()])


def wait_journal(box: ct.Container, pattern: str, count: int) -> int:
    """Poll until the journal has ``count`` lines of wlmd matching ``pattern`` (no push signal)."""
    deadline = time.monotonic() + STATE_TIMEOUT
    while (found := journal_count(box, pattern)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def assert_both_up(box: ct.Container) -> None:
    socket, service = unit_state(box, "wlmd.socket"), wait_state(box, "wlmd.service", "active")
    # "running" while its service has the socket, "listening" while it waits for one
    assert socket["ActiveState"] == "active", socket
    assert socket["SubState"] in ("running", "listening"), socket
    assert service["ActiveState"] == "active", service
    assert listening(box), "nothing listens on port 104"
    proc = echo(box)
    assert proc.returncode == 0, f"echoscu failed:\n{proc.stdout}{proc.stderr}"


# --------------------------------------------------------------------------- tests


def test_rootfs_is_minimal(box: ct.Container) -> None:
    """No procps: ExecReload must not rely on /bin/kill."""
    proc = box.sh("ls /bin/kill /usr/bin/kill 2>/dev/null || true")
    assert not proc.stdout.strip(), f"procps is in the test system: {proc.stdout}"


def test_fresh_install(box: ct.Container, debs: tuple[Path, Path]) -> None:
    proc = box.run(
        [
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            f"/root/{debs[0].name}",
        ],
        timeout=APT_TIMEOUT,
    )
    # the postinst says what the installation does
    output = proc.stdout + proc.stderr
    for words in ("port 104", "no access control", "wlmd-writers", "README.Debian"):
        assert words in output, f"{words!r} not in the installation's output:\n{output}"
    for unit in ("wlmd.socket", "wlmd.service"):
        assert unit_state(box, unit)["UnitFileState"] == "enabled", unit
    assert_both_up(box)
    # the service got the socket from systemd and holds no capability
    assert wait_journal(box, "socket from systemd", 1) == 1, "wlmd did not get wlmd.socket's socket"
    assert journal_count(box, "not used: systemd passed") == 0, (
        "wlmd.conf's port is not the socket's"
    )
    pid = unit_state(box, "wlmd.service")["MainPID"]
    status = box.run(["cat", f"/proc/{pid}/status"]).stdout
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    # never sample patients: the production area is empty but for its lockfile
    assert box.run(["ls", "-A", AREA]).stdout.split() == ["lockfile"]
    assert box.run(["sh", "-c", f"ls {SAMPLE}/*.wl | wc -l"]).stdout.strip() != "0"
    find = box.run(["findscu", "-W", "-v", "-aec", "WLMD", "-k", "PatientID", "127.0.0.1", "104"])
    log = find.stdout + find.stderr
    assert "Pending" not in log and "Success" in log, log
    # the README.Debian it points at is there
    readme = re.search(r"/usr/share/doc/wlmd/README\.Debian\S*", output)
    assert readme, output
    box.run(["test", "-f", readme.group(0)])
    # the shipped configuration bounds the wait for a writer's lock
    conf = box.run(["cat", "/etc/wlmd/wlmd.conf"]).stdout
    assert re.search(r"^lock-timeout = 30$", conf, re.M), "no lock-timeout in wlmd.conf"


def test_restart_refuses_nothing(box: ct.Container) -> None:
    """An association held open; echo every 0.5 s throughout `systemctl restart wlmd`."""
    before = unit_state(box, "wlmd.service")["MainPID"]
    holder = box.popen(["python3", "-c", HOLDER, "60"])
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "established", holder.stderr
    echoes: list[tuple[float, subprocess.Popen[str]]] = []
    started = time.monotonic()
    restart = box.popen(["systemctl", "restart", "wlmd.service"])
    try:
        finished: float | None = None
        while time.monotonic() - started < 60:
            echoes.append((time.monotonic() - started, box.popen(ECHO)))
            if finished is None and restart.poll() is not None:
                finished = time.monotonic()
            if finished is not None and time.monotonic() - finished > 1.5:
                break
            time.sleep(0.5)  # the cadence asked for, not a synchronisation
        restart.wait(timeout=60)
        results = [(at, proc, proc.communicate(timeout=90)) for at, proc in echoes]
    finally:
        for _, proc in echoes:
            if proc.poll() is None:
                proc.kill()
        holder.kill()
    took = (finished or time.monotonic()) - started
    assert restart.returncode == 0, "systemctl restart failed"
    failed = [
        f"echo started at {at:.1f}s: exit {proc.returncode}\n{out}{err}"
        for at, proc, (out, err) in results
        if proc.returncode != 0
    ]
    assert not failed, f"{len(failed)} of {len(results)} echoes failed:\n" + "\n".join(failed)
    assert len(results) >= 6, f"only {len(results)} echoes during a {took:.1f}s restart"
    after = wait_state(box, "wlmd.service", "active")["MainPID"]
    assert after != before, "the service was not restarted"
    print(f"restart took {took:.1f}s with an association held; {len(results)} echoes, all answered")


def test_reload_delivers_sighup(box: ct.Container) -> None:
    pattern = "SIGHUP: logging configuration reloaded"
    before = journal_count(box, pattern)
    box.run(["systemctl", "reload", "wlmd.service"])
    assert wait_journal(box, pattern, before + 1) == before + 1, "no SIGHUP line in the journal"
    assert unit_state(box, "wlmd.service")["ActiveState"] == "active"


def test_broken_logging_reload_keeps_the_audit_trail(box: ct.Container) -> None:
    """A reload with a broken logging.conf: an error line, and query lines keep coming."""
    conf = "/etc/wlmd/logging.conf"
    box.sh(f"cp {conf} /root/logging.conf.good && sed -i 's/^level = INFO/level = LOUD/' {conf}")
    try:
        refused = "not reloaded"
        box.run(["systemctl", "reload", "wlmd.service"])
        assert wait_journal(box, refused, 1) == 1, "no error line for the broken reload"
        assert journal_count(box, refused, "-p", "err..err") == 1, journal_lines(
            box, refused, "-o", "verbose"
        )
        before = journal_count(box, "C-FIND")
        find = box.run(["findscu", "-W", "-aec", "WLMD", "-k", "PatientID", "127.0.0.1", "104"])
        assert find.returncode == 0, find.stderr
        assert wait_journal(box, "C-FIND", before + 1) == before + 1, "query lines stopped"
    finally:
        box.sh(f"cp /root/logging.conf.good {conf}")
    reloaded = journal_count(box, "logging configuration reloaded")
    box.run(["systemctl", "reload", "wlmd.service"])
    assert wait_journal(box, "logging configuration reloaded", reloaded + 1) == reloaded + 1


def test_operator_lines_in_the_journal(box: ct.Container) -> None:
    """An unknown called AE title is a warning naming it; peers are 127.0.0.1, not ::ffff:."""
    echo = box.run([*ECHO[:2], "NOSUCH_AE", *ECHO[3:]], check=False, timeout=60)
    assert echo.returncode != 0, echo.stdout
    assert wait_journal(box, "NOSUCH_AE", 1) == 1
    assert journal_count(box, "NOSUCH_AE", "-p", "warning..warning") == 1, journal_lines(
        box, "NOSUCH_AE", "-o", "verbose"
    )
    line = journal_lines(box, "NOSUCH_AE")
    assert "127.0.0.1" in line and "::ffff:" not in line, line
    assert journal_count(box, "::ffff:") == 0, journal_lines(box, "::ffff:")


def test_ups_state_lives_in_the_state_directory(box: ct.Container) -> None:
    """UPS on: the sandboxed unit keeps its SQLite store in StateDirectory, across restarts."""
    box.sh("cp /etc/wlmd/wlmd.conf /root/wlmd.conf.before-ups")
    try:
        box.sh("echo 'ups-ae-title = UPS' >> /etc/wlmd/wlmd.conf && systemctl restart wlmd.service")
        wait_state(box, "wlmd.service", "active")
        created = box.run(["python3", "-c", UPS_CLIENT, "create"], check=False)
        journal = box.sh("journalctl -u wlmd -n 40 --no-pager").stdout
        assert created.returncode == 0, created.stderr + journal
        status, uid = created.stdout.split()
        assert status in ("0x0000", "0xB300"), status
        stat = box.run(["stat", "-c", "%U:%G %a", "/var/lib/wlmd/state/wlmd.db"]).stdout.strip()
        assert stat.startswith("wlmd:wlmd "), stat
        box.run(["systemctl", "restart", "wlmd.service"])
        wait_state(box, "wlmd.service", "active")
        fetched = box.run(["python3", "-c", UPS_CLIENT, "get", uid], check=False)
        journal = box.sh("journalctl -u wlmd -n 40 --no-pager").stdout
        assert fetched.stdout.split() == ["0x0000", "SCHEDULED"], fetched.stderr + journal
        assert journal_count(box, "UPS N-CREATE PERFORMER -> UPS") == 1
        assert journal_count(box, "Booted") == 0, "no patient data in the journal at info"
    finally:
        box.sh("cp /root/wlmd.conf.before-ups /etc/wlmd/wlmd.conf")
        box.run(["systemctl", "restart", "wlmd.service"])
    assert_both_up(box)


def test_mpps_entry_policy_needs_the_writable_drop_in(box: ct.Container, tmp_path: Path) -> None:
    """The sandboxed unit: without ReadWritePaths the policy stops start-up with one line
    naming the area; with the drop-in an N-CREATE hides the entry (renamed in the area)."""
    entry = complete_entry(PatientID="MPPS-0001", ScheduledProcedureStepID="SPSB1")
    data = base64.b64encode(write_wl(tmp_path / "e.wl", entry).read_bytes()).decode()
    box.sh(f"echo {data} | base64 -d > {AREA}/mpps1.wl && chgrp wlmd-writers {AREA}/mpps1.wl")
    box.sh("cp /etc/wlmd/wlmd.conf /root/wlmd.conf.before-mpps")
    dropin = "/etc/systemd/system/wlmd.service.d/worklist-writable.conf"
    try:
        box.sh(
            "printf 'mpps-ae-title = WLMD\\nmpps-entry-policy = hide\\nmpps-area = WLMD\\n'"
            " >> /etc/wlmd/wlmd.conf"
        )
        refused = box.run(["systemctl", "restart", "wlmd.service"], check=False, timeout=60)
        assert refused.returncode != 0, "started with a read-only storage area"
        assert wait_journal(box, "mpps-area WLMD: storage area .* is not writable", 1) >= 1
        box.sh(
            f"mkdir -p {Path(dropin).parent} && "
            f"printf '[Service]\\nReadWritePaths=/var/lib/wlmd/worklist\\n' > {dropin} && "
            "systemctl daemon-reload && systemctl reset-failed wlmd.service; "
            "systemctl restart wlmd.service"
        )
        wait_state(box, "wlmd.service", "active")
        study = str(entry.StudyInstanceUID)
        created = box.run(["python3", "-c", MPPS_CLIENT, study, "SPSB1"], check=False)
        assert created.stdout.strip() == "0x0000", created.stderr
        assert wait_journal(box, "entry mpps1.wl hidden", 1) == 1
        box.run(["test", "-f", f"{AREA}/mpps1.wl.inprogress"])
    finally:
        box.sh(
            f"cp /root/wlmd.conf.before-mpps /etc/wlmd/wlmd.conf && rm -f {dropin} "
            f"{AREA}/mpps1.wl {AREA}/mpps1.wl.inprogress && systemctl daemon-reload && "
            "systemctl reset-failed wlmd.service; systemctl restart wlmd.service"
        )
    assert_both_up(box)


def test_ris_user_writes_through_the_lock(box: ct.Container, tmp_path: Path) -> None:
    """A real non-root user in wlmd-writers writes an entry; wlmd serves it."""
    box.run(["useradd", "--create-home", "ris"])
    box.run(["adduser", "--quiet", "ris", "wlmd-writers"])
    box.run(["useradd", "outsider"])
    box.sh("install -o root -g wlmd -m 0640 /dev/null /etc/wlmd/tls-key.pem")
    entry = complete_entry(PatientID="RIS-0001", PatientName="Writer^Test")
    data = base64.b64encode(write_wl(tmp_path / "e.wl", entry).read_bytes()).decode()
    # not a member: no way in
    proc = box.run(["python3", "-c", WRITER, AREA, "x.wl", data], user="outsider", check=False)
    assert proc.returncode != 0 and "PermissionError" in proc.stderr, proc.stderr
    # a member: lock, temporary name, fsync, rename
    proc = box.run(["python3", "-c", WRITER, AREA, "ris0001.wl", data], user="ris")
    assert proc.stdout.strip() == "written"
    # ...but the group gives no access to /etc/wlmd's secrets
    proc = box.run(["cat", "/etc/wlmd/tls-key.pem"], user="ris", check=False)
    assert proc.returncode != 0 and "Permission denied" in proc.stderr, proc
    find = box.run(
        ["findscu", "-W", "-v", "-aec", "WLMD", "-k", "PatientID", "-k", "PatientName",
         "127.0.0.1", "104"]
    )  # fmt: skip
    log = find.stdout + find.stderr
    assert "[RIS-0001]" in log and "[Writer^Test" in log, log
    assert log.count("(Pending)") == 1, log


def test_tmpfiles_rule(box: ct.Container) -> None:
    """systemd-tmpfiles reads the shipped rule (30-day age) and makes the request directory.

    The removal by age itself is systemd-tmpfiles' own, and not exercised: a
    file's ctime, which it also compares, cannot be set back without the clock.
    """
    rules = box.run(["systemd-tmpfiles", "--cat-config"]).stdout
    assert re.search(r"^d /var/lib/wlmd/requests 0750 wlmd wlmd 30d$", rules, re.M), rules
    proc = box.sh("rmdir /var/lib/wlmd/requests && systemd-tmpfiles --create wlmd.conf")
    assert not proc.stderr.strip(), f"systemd-tmpfiles complained: {proc.stderr}"
    stat = box.run(["stat", "-c", "%U:%G %a", "/var/lib/wlmd/requests"]).stdout.strip()
    assert stat == "wlmd:wlmd 750", stat


def test_config_error_leaves_the_unit_failed(box: ct.Container) -> None:
    box.sh(
        "cp /etc/wlmd/wlmd.conf /root/wlmd.conf.good"
        " && echo 'no-such-setting = 1' >> /etc/wlmd/wlmd.conf"
    )
    try:
        started = time.monotonic()
        box.run(["systemctl", "restart", "wlmd.service"], check=False, timeout=60)
        state = wait_state(box, "wlmd.service", "failed", timeout=15)
        took = time.monotonic() - started
        assert state["ActiveState"] == "failed", state
        assert state["ExecMainStatus"] == "2", state
        assert int(state["NRestarts"]) == 0, state
        assert took < 15, f"{took:.1f}s to fail"
        # stays failed (no restart loop)
        time.sleep(3)  # longer than RestartSec=2s: a restart would have happened
        assert unit_state(box, "wlmd.service")["ActiveState"] == "failed"
        # the reason reaches the journal once, at error priority (not info, not twice)
        assert journal_count(box, "no-such-setting") == 1, journal_lines(box, "no-such-setting")
        assert journal_count(box, "no-such-setting", "-p", "err..err") == 1, journal_lines(
            box, "no-such-setting", "-o", "verbose"
        )
    finally:
        box.sh("cp /root/wlmd.conf.good /etc/wlmd/wlmd.conf && systemctl reset-failed wlmd.service")
        box.run(["systemctl", "restart", "wlmd.service"])
    assert_both_up(box)


def test_sample_entries_of_an_old_install_go_on_upgrade(
    box: ct.Container, debs: tuple[Path, Path]
) -> None:
    """0.1.0-1 copied the sample into the area: unchanged copies go, site data stays."""
    box.sh(
        f"cp {SAMPLE}/*.wl {AREA}/ && echo changed >> {AREA}/wklist02.wl"
        f" && cp {SAMPLE}/wklist01.wl {AREA}/site-entry.wl"
    )
    proc = dpkg_install(box, debs[0].name)  # reinstall: postinst configure with $2 set
    names = sorted(box.run(["ls", "-A", AREA]).stdout.split())
    assert names == ["lockfile", "ris0001.wl", "site-entry.wl", "wklist02.wl"], names
    assert "removed the 9 unchanged sample entries" in proc.stdout, proc.stdout
    box.run(["rm", f"{AREA}/wklist02.wl", f"{AREA}/site-entry.wl"])


def test_reinstall_and_upgrade_keep_socket_activation(
    box: ct.Container, debs: tuple[Path, Path]
) -> None:
    assert_both_up(box)
    dpkg_install(box, debs[0].name)
    assert_both_up(box)
    dpkg_install(box, debs[1].name)
    assert installed_version(box) == debs[1].name.split("_")[1]
    assert_both_up(box)
    for unit in ("wlmd.socket", "wlmd.service"):
        assert unit_state(box, unit)["UnitFileState"] == "enabled", unit


def test_upgrade_keeps_service_only_mode(box: ct.Container, debs: tuple[Path, Path]) -> None:
    """The admin runs the service alone (README.Debian's recipe); an upgrade keeps that."""
    dropin = "/etc/systemd/system/wlmd.service.d/port.conf"
    box.sh(
        "systemctl disable --now wlmd.socket && mkdir -p /etc/systemd/system/wlmd.service.d && "
        f"printf '[Service]\\nAmbientCapabilities=CAP_NET_BIND_SERVICE\\n"
        f"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\\n' > {dropin} && "
        "systemctl daemon-reload && systemctl restart wlmd.service"
    )
    try:
        for deb in debs:  # a downgrade to the current one, then the upgrade again
            assert wait_state(box, "wlmd.service", "active")["ActiveState"] == "active"
            assert echo(box).returncode == 0
            box.run(["env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", f"/root/{deb.name}"],
                    timeout=APT_TIMEOUT)  # fmt: skip
            socket = unit_state(box, "wlmd.socket")
            assert socket["ActiveState"] == "inactive", socket
            assert socket["UnitFileState"] == "disabled", socket
            assert wait_state(box, "wlmd.service", "active")["ActiveState"] == "active"
            proc = echo(box)
            assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        # back to socket activation: the service must let go of the port first
        box.sh(
            "systemctl revert wlmd.service && systemctl stop wlmd.service"
            " && systemctl enable --now wlmd.socket && systemctl start wlmd.service"
        )
    assert_both_up(box)


def test_upgrade_from_0_1_0_1_moves_to_socket_activation(
    box: ct.Container, debs: tuple[Path, Path]
) -> None:
    """0.1.0-1's default: the service alone on port 104 (with the capability its unit had).

    Stood in for by a runtime drop-in giving the capability back, wlmd.socket
    disabled and never enabled by the package (deb-systemd-helper's record of
    it removed), and dpkg's record of the installed version set to 0.1.0-1
    (this container is thrown away; a real 0.1.0-1 upgrade was checked by
    hand). The upgrade must stop the service (it holds the port), enable and
    start the socket, and start the service on it.
    """
    runtime = "/run/systemd/system/wlmd.service.d"
    box.sh(
        # 0.1.0-1 never enabled the socket: no deb-systemd-helper record of it
        "systemctl stop wlmd.service wlmd.socket && systemctl disable wlmd.socket && "
        "rm -f /var/lib/systemd/deb-systemd-helper-enabled/sockets.target.wants/wlmd.socket && "
        f"mkdir -p {runtime} && printf '[Service]\\nAmbientCapabilities=CAP_NET_BIND_SERVICE\\n"
        f"CapabilityBoundingSet=CAP_NET_BIND_SERVICE\\n' > {runtime}/old-unit.conf && "
        "systemctl daemon-reload && systemctl start wlmd.service && "
        "sed -i '/^Package: wlmd$/,/^$/ s/^Version: .*/Version: 0.1.0-1/' /var/lib/dpkg/status"
    )
    try:
        assert installed_version(box) == "0.1.0-1"
        assert unit_state(box, "wlmd.socket")["ActiveState"] == "inactive"
        assert echo(box).returncode == 0, "the stand-in for 0.1.0-1 does not serve"
        handed_over = journal_count(box, "socket from systemd")
        proc = dpkg_install(box, debs[1].name)
        assert "now socket-activated" in proc.stdout, proc.stdout
        assert unit_state(box, "wlmd.socket")["UnitFileState"] == "enabled"
        assert_both_up(box)
        assert wait_journal(box, "socket from systemd", handed_over + 1) == handed_over + 1
    finally:
        # as the package leaves it, whatever the upgrade did
        box.sh(
            f"rm -rf {runtime} && systemctl daemon-reload && systemctl stop wlmd.service"
            " && systemctl enable --now wlmd.socket && systemctl start wlmd.service"
        )
    assert_both_up(box)


def test_remove_stops_both_units(box: ct.Container) -> None:
    assert_both_up(box)
    box.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "remove", "-y", "wlmd"],
            timeout=APT_TIMEOUT)  # fmt: skip
    for unit in ("wlmd.socket", "wlmd.service"):
        state = unit_state(box, unit)
        assert state["ActiveState"] in ("inactive", "failed"), (unit, state)
        assert state["LoadState"] == "not-found", (unit, state)
    assert not listening(box), "something still listens on port 104 after removal"
    assert echo(box).returncode != 0


def test_purge_keeps_what_the_admin_added(box: ct.Container, debs: tuple[Path, Path]) -> None:
    # removed above: the conffiles are still there (dpkg keeps them until purge)
    box.sh(
        "echo 'WLMD: MODALITY1' > /etc/wlmd/allowed-callers && mkdir /etc/wlmd/tls && "
        "echo key > /etc/wlmd/tls/wlmd.key && cp /etc/wlmd/wlmd.conf /etc/wlmd/wlmd.conf.dpkg-old"
        " && cp /etc/wlmd/logging.conf /etc/wlmd/logging.conf.dpkg-dist"
    )
    box.run(["dpkg", "--purge", "wlmd"], timeout=APT_TIMEOUT)
    left = sorted(box.run(["find", "/etc/wlmd", "-mindepth", "1"]).stdout.split())
    assert left == ["/etc/wlmd/allowed-callers", "/etc/wlmd/tls", "/etc/wlmd/tls-key.pem",
                    "/etc/wlmd/tls/wlmd.key"], left  # fmt: skip
    assert "ris0001.wl" in box.run(["ls", AREA]).stdout, "purge touched the worklist"
    # nothing the admin added: /etc/wlmd goes entirely
    box.sh("rm -r /etc/wlmd/allowed-callers /etc/wlmd/tls /etc/wlmd/tls-key.pem")
    box.run(["env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-i", f"/root/{debs[1].name}"],
            timeout=APT_TIMEOUT)  # fmt: skip
    box.run(["dpkg", "--purge", "wlmd"], timeout=APT_TIMEOUT)
    assert box.run(["test", "-e", "/etc/wlmd"], check=False).returncode != 0
