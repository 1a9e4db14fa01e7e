"""The Debian package: built from this tree, inspected, linted, installed, run, purged.

The package is built once (module fixture ``deb``) with ``packaging/build-deb``
into a temporary directory; that needs the build dependencies of
``packaging/debian/control`` (scripts/bootstrap installs them) and PyPI, for the
pinned wheels of ``packaging/requirements.txt``.

The tests after the inspection ones install it on this machine with ``apt-get
install ./wlmd_*.deb``: they need root and treat the machine as throw-away, as a
CI runner or container is. They refuse to run when a wlmd package is already
installed. Whatever happens, the module ends with ``dpkg --purge wlmd``, and
removes what the package deliberately leaves behind (``/var/lib/wlmd`` and the
``wlmd`` user) only if they did not exist before the module started.

The server test starts the installed program the way ``wlmd.service`` does
(``/usr/sbin/wlmd --config /etc/wlmd/wlmd.conf``, as user and group ``wlmd``,
``NOTIFY_SOCKET`` set) plus ``--listen-address 127.0.0.1`` and a free port, waits
for the ``READY=1`` the supervisor sends once it listens, queries the installed
sample storage area (``--data-files-path`` on the command line, which wins over
the file) with DCMTK's findscu and stops it with SIGTERM. ``/usr/bin/wlmctl`` is
run the same isolated way, and as an unprivileged member of ``wlmd-writers`` it adds,
lists and removes an entry in the production area.

Missing tools or no root: skipped locally, a failure with ``CI=true``.
"""

from __future__ import annotations

import grp
import gzip
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.helpers.dcmtk import findscu, require_dcmtk
from tests.helpers.notify import notify_socket, wait_for_ready
from tests.helpers.procs import kill_session, stop_gracefully
from tests.helpers.required import need, run
from tests.helpers.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The REST API's web page (debian/rules installs them beside the modules).
STATIC_FILES = ("index.html", "app.css", "app.js")
BUILD_DEB = REPO_ROOT / "packaging" / "build-deb"
REQUIREMENTS = REPO_ROOT / "packaging" / "requirements.txt"
SAMPLE_AREA = REPO_ROOT / "examples" / "wlistdb" / "WLMD"

PROGRAM = "/usr/sbin/wlmd"
WLMCTL = "/usr/bin/wlmctl"
MAN_PAGES = (
    "/usr/share/man/man8/wlmd.8.gz",
    "/usr/share/man/man5/wlmd.conf.5.gz",
    "/usr/share/man/man1/wlmctl.1.gz",
)
CONFIG = "/etc/wlmd/wlmd.conf"
UNIT = "/lib/systemd/system/wlmd.service"
STATE = Path("/var/lib/wlmd")
WORKLIST = STATE / "worklist" / "WLMD"
#: Documentation only: never copied into the production area (README.Debian).
SHIPPED_SAMPLE = Path("/usr/share/doc/wlmd/examples/wlistdb/WLMD")
WRITERS = "wlmd-writers"
#: Marker of the stand-ins build-deb makes for files still being written.
PLACEHOLDER = b"WLMD-PACKAGING-PLACEHOLDER"

BUILD_TIMEOUT = 600.0  # includes downloading the pinned wheels
APT_TIMEOUT = 300.0
STOP_TIMEOUT = 40.0  # above the supervisor's grace period for running associations


def package_state() -> str:
    """dpkg's status of the wlmd package ("" when dpkg does not know it)."""
    proc = run(["dpkg-query", "-W", "-f=${Status}", "wlmd"], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def upstream_version() -> str:
    text = (REPO_ROOT / "wlmd" / "__init__.py").read_text("utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert match, "no __version__ in wlmd/__init__.py"
    return match.group(1)


# --------------------------------------------------------------------------- the build


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("dpkg-buildpackage", "dh", "dh_python3"):
        need(shutil.which(tool), f"{tool} not found (scripts/bootstrap installs the build tools)")
    out = tmp_path_factory.mktemp("deb")
    proc = run([BUILD_DEB, out], timeout=BUILD_TIMEOUT)
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out, f"build-deb's last line: {path}"
    return path


@pytest.fixture(scope="module")
def contents(deb: Path) -> dict[str, str]:
    """Path in the package -> its ``dpkg-deb -c`` mode string."""
    listing: dict[str, str] = {}
    for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
        fields = line.split(None, 5)
        name = fields[5].split(" -> ")[0]
        listing[name.removeprefix(".").rstrip("/") or "/"] = fields[0]
    return listing


@pytest.fixture(scope="module")
def unpacked(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("unpacked")
    run(["dpkg-deb", "-x", deb, root])
    return root


def test_file_name_and_control(deb: Path) -> None:
    version = run(
        ["dpkg-parsechangelog", "-l", REPO_ROOT / "packaging/debian/changelog", "-S", "Version"]
    ).stdout.strip()
    assert version.startswith(f"{upstream_version()}-"), version
    assert deb.name == f"wlmd_{version}_all.deb"
    fields = dict(
        line.split(": ", 1)
        for line in run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends"])
        .stdout.strip()
        .splitlines()
    )
    assert fields["Package"] == "wlmd"
    assert fields["Version"] == version
    assert fields["Architecture"] == "all"
    depends = {d.strip().split(" ")[0] for d in fields["Depends"].split(",")}
    for dependency in ("libwrap0", "python3", "python3-setproctitle", "adduser"):
        assert dependency in depends, f"Depends: {fields['Depends']}"
    assert "python3 (>= 3.11)" in fields["Depends"]
    # nothing from the vendored metadata may turn into a Debian dependency
    assert not depends & {"python3-pydicom", "python3-pynetdicom", "python3-daemon"}


def test_files(contents: dict[str, str]) -> None:
    required = [
        PROGRAM,
        WLMCTL,
        CONFIG,
        "/etc/wlmd/logging.conf",
        UNIT,
        "/lib/systemd/system/wlmd.socket",
        *MAN_PAGES,
        "/usr/share/doc/wlmd/copyright",
        "/usr/share/doc/wlmd/README.md.gz",
        "/usr/lib/wlmd/wlmd/cli.py",
        "/usr/lib/wlmd/wlmd/ctl/main.py",
        *(f"/usr/lib/wlmd/wlmd/api/static/{name}" for name in STATIC_FILES),
        "/usr/lib/wlmd/pydicom/__init__.py",
        "/usr/lib/wlmd/pynetdicom/__init__.py",
        f"{SHIPPED_SAMPLE}/lockfile",
        *(f"{SHIPPED_SAMPLE}/{wl.name}" for wl in SAMPLE_AREA.glob("*.wl")),
    ]
    missing = [path for path in required if path not in contents]
    assert not missing, f"not in the package: {missing}"
    assert contents[PROGRAM] == "-rwxr-xr-x"
    assert contents[WLMCTL] == "-rwxr-xr-x"
    compiled = [p for p in contents if p.endswith(".pyc") or "__pycache__" in p]
    assert not compiled, f"bytecode is made at installation, not shipped: {compiled[:5]}"
    # the worklist is data created by postinst, never a package-owned file
    assert not [p for p in contents if p.startswith(str(STATE))]


def test_conffiles(deb: Path) -> None:
    conffiles = run(["dpkg-deb", "-I", deb, "conffiles"]).stdout.split()
    assert CONFIG in conffiles
    assert "/etc/wlmd/logging.conf" in conffiles


def test_vendored_versions_are_the_pins(contents: dict[str, str]) -> None:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text("utf-8"), re.M)
    assert pins, "no pins in packaging/requirements.txt"
    for name, version in pins:
        dist_info = f"/usr/lib/wlmd/{name.replace('-', '_')}-{version}.dist-info"
        assert dist_info in contents, f"{name}=={version} is not what the package carries"


def test_no_placeholders(unpacked: Path) -> None:
    """build-deb stands in for etc/wlmd.conf and the man pages while they are missing."""
    stand_ins = []
    for path in (CONFIG, *MAN_PAGES):
        data = (unpacked / path.lstrip("/")).read_bytes()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        if PLACEHOLDER in data:
            stand_ins.append(path)
    assert not stand_ins, (
        f"placeholders instead of the real files (still being written?): {stand_ins}"
    )


def test_lintian_no_errors(deb: Path) -> None:
    lintian = shutil.which("lintian")
    need(lintian, "lintian not found (apt-get install lintian)")
    proc = run([str(lintian), "--no-tag-display-limit", deb], check=False)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("E:")]
    assert not errors, "lintian errors:\n" + "\n".join(errors)
    assert proc.returncode in (0, 2), f"lintian failed ({proc.returncode}):\n{proc.stderr}"


# --------------------------------------------------------------------------- installed


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def purge() -> None:
    run(
        ["dpkg", "--purge", "wlmd"],
        timeout=APT_TIMEOUT,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[Path]:
    """The package installed with apt-get; purged (and its leftovers cleaned) afterwards."""
    need(os.geteuid() == 0, "installing the package needs root")
    for tool in ("apt-get", "dpkg"):
        need(shutil.which(tool), f"{tool} not found")
    state = package_state()
    if state and not state.endswith("not-installed"):
        pytest.fail(f"a wlmd package is already on this machine ({state}); not touching it")
    had_state = STATE.exists()
    had_user = user_exists("wlmd")
    had_writers = group_exists(WRITERS)
    try:
        run(
            ["apt-get", "install", "-y", "--no-install-recommends", deb],
            timeout=APT_TIMEOUT,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        yield deb
    finally:
        purge()
        if not had_state:
            shutil.rmtree(STATE, ignore_errors=True)
        if not had_user and user_exists("wlmd"):
            run(["userdel", "wlmd"], check=False)
            run(["groupdel", "wlmd"], check=False)
        if not had_writers and group_exists(WRITERS):
            run(["groupdel", WRITERS], check=False)


def test_version_isolated_from_the_environment(installed: Path, tmp_path: Path) -> None:
    """``--version`` works and a PYTHONPATH (or the current directory) cannot shadow wlmd."""
    decoy = tmp_path / "decoy"
    (decoy / "wlmd").mkdir(parents=True)
    (decoy / "wlmd" / "__init__.py").write_text("raise SystemExit('decoy wlmd imported')\n")
    (decoy / "pydicom").mkdir()
    (decoy / "pydicom" / "__init__.py").write_text("raise SystemExit('decoy pydicom')\n")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(decoy)}
    proc = run([PROGRAM, "--version"], env=env, cwd=decoy)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"wlmd {upstream_version()}", proc.stdout
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text("utf-8"), re.M))
    assert f"pydicom {pins['pydicom']}" in lines, proc.stdout
    assert f"pynetdicom {pins['pynetdicom']}" in lines, proc.stdout


def test_wlmctl_isolated_from_the_environment(installed: Path, tmp_path: Path) -> None:
    """``wlmctl --help`` and ``--version`` work, and a decoy on PYTHONPATH is not imported."""
    decoy = tmp_path / "decoy"
    (decoy / "wlmd").mkdir(parents=True)
    (decoy / "wlmd" / "__init__.py").write_text("raise SystemExit('decoy wlmd imported')\n")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(decoy)}
    proc = run([WLMCTL, "--help"], env=env, cwd=decoy)
    assert proc.stdout.startswith("usage: wlmctl "), proc.stdout
    for command in ("add", "validate", "list", "show", "rm", "purge", "import"):
        assert f"    {command} " in proc.stdout, proc.stdout
    proc = run([WLMCTL, "--version"], env=env, cwd=decoy)
    assert proc.stdout.strip() == f"wlmctl {upstream_version()}", proc.stdout


def test_user_and_directories(installed: Path) -> None:
    user = pwd.getpwnam("wlmd")
    assert user.pw_uid < 1000, "wlmd is not a system user"
    assert user.pw_dir == str(STATE)
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false"), user.pw_shell
    assert run(["id", "wlmd"]).returncode == 0
    # an empty production area: its lockfile, never the sample patients
    assert sorted(p.name for p in WORKLIST.iterdir()) == ["lockfile"]
    assert sorted(SHIPPED_SAMPLE.glob("*.wl")), f"no sample entries in {SHIPPED_SAMPLE}"
    # group wlmd-writers (the RIS's accounts) writes, wlmd (a member) reads,
    # others nothing: worklists hold patient data
    writers = grp.getgrnam(WRITERS)
    assert "wlmd" in writers.gr_mem, writers
    for path in (WORKLIST.parent, WORKLIST):
        mode = path.stat()
        assert mode.st_gid == writers.gr_gid, path
        assert stat.S_IMODE(mode.st_mode) == 0o2770, (path, oct(mode.st_mode))
    lockfile = (WORKLIST / "lockfile").stat()
    assert lockfile.st_gid == writers.gr_gid and stat.S_IMODE(lockfile.st_mode) == 0o660
    # the writers' group gives nothing in /etc/wlmd
    assert Path("/etc/wlmd").stat().st_gid != writers.gr_gid
    requests = (STATE / "requests").stat()
    assert requests.st_uid == user.pw_uid, "wlmd cannot write its request files"


def test_units_installed(installed: Path) -> None:
    wants = Path("/etc/systemd/system")
    assert (wants / "multi-user.target.wants" / "wlmd.service").is_symlink(), "not enabled"
    # socket activation is the default
    assert (wants / "sockets.target.wants" / "wlmd.socket").is_symlink(), "socket not enabled"
    assert Path("/usr/lib/tmpfiles.d/wlmd.conf").is_file()


def test_installed_unit_verifies(installed: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    need(analyze, "systemd-analyze not found (apt-get install systemd)")
    # with the man page check: Documentation= names wlmd(8) and wlmd.conf(5)
    proc = run([str(analyze), "verify", UNIT], check=False, cwd="/")
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"systemd-analyze verify {UNIT} (exit {proc.returncode}):\n{proc.stderr}"
    )


def test_installed_server_answers(installed: Path, tmp_path: Path) -> None:
    require_dcmtk("findscu")
    entries = sorted(SHIPPED_SAMPLE.glob("*.wl"))
    assert entries, f"no sample entries in {SHIPPED_SAMPLE}"
    patient_ids = sorted(str(dcmread(path).PatientID) for path in entries)
    port = free_port()
    log = tmp_path / "wlmd.log"
    argv = [PROGRAM, "--config", CONFIG, "--data-files-path", str(SHIPPED_SAMPLE.parent)]
    argv += ["--listen-address", "127.0.0.1", str(port)]
    with notify_socket() as (sock, path), open(log, "wb") as log_file:
        # As systemd runs it: user and group wlmd, its other groups from
        # /etc/group (systemd calls initgroups()), cwd /, a minimal environment
        # with NOTIFY_SOCKET.
        proc = subprocess.Popen(
            argv,
            user="wlmd",
            group="wlmd",
            extra_groups=[WRITERS],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "NOTIFY_SOCKET": path},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_ready(sock, proc, log)
            result = findscu(port, aec="WLMD", keys=["PatientID", "PatientName"])
            assert result.final_status == 0x0000, result.describe()
            found = sorted(str(ds.PatientID) for ds in result.datasets)
            assert found == patient_ids, result.describe()
            stop_gracefully(proc, log, STOP_TIMEOUT)
        finally:
            kill_session(proc, STOP_TIMEOUT)  # the supervisor and any worker it left


def wlmctl_as_writer(*args: str) -> subprocess.CompletedProcess[str]:
    """``/usr/bin/wlmctl`` as a RIS account would run it: nobody, in group wlmd-writers."""
    return subprocess.run(
        [WLMCTL, "--data-files-path", str(WORKLIST.parent), "--area", WORKLIST.name, *args],
        user="nobody",
        group="nogroup",
        extra_groups=[WRITERS],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT,
        check=False,
    )


def test_wlmctl_writes_the_production_area(installed: Path) -> None:
    """A writer adds an entry the server would serve (group-readable, so wlmd reads it),
    sees it in ``list`` and removes it; the area is left as it was."""
    before = sorted(p.name for p in WORKLIST.iterdir())
    added = wlmctl_as_writer(
        *("add", "--patient-id", "DEB1", "--patient-name", "DEB^TEST", "--modality", "CT"),
        *("--station-aet", "CT01", "--start", "2026-12-02 09:30", "--procedure", "CT HEAD"),
    )
    try:
        assert added.returncode == 0, added.stderr
        name = added.stdout.split()[1]
        assert added.stdout.startswith(f"added {name}"), added.stdout
        entry = (WORKLIST / name).stat()
        assert entry.st_gid == grp.getgrnam(WRITERS).gr_gid
        assert stat.S_IMODE(entry.st_mode) & 0o040, oct(entry.st_mode)
        listed = wlmctl_as_writer("list", "--patient-id", "DEB1")
        assert listed.returncode == 0, listed.stderr
        assert name in listed.stdout and "CT01" in listed.stdout, listed.stdout
        removed = wlmctl_as_writer("rm", name)
        assert (removed.returncode, removed.stdout) == (0, f"removed {name}\n"), removed.stderr
    finally:
        for path in WORKLIST.glob("*.wl"):
            if path.name not in before:
                path.unlink()
    assert sorted(p.name for p in WORKLIST.iterdir()) == before


def test_purge_keeps_the_worklist(installed: Path) -> None:
    """Last: purge removes the configuration, never the worklist data."""
    before = sorted(p.name for p in WORKLIST.iterdir())
    assert before
    purge()
    assert package_state() in ("", "unknown ok not-installed")
    assert not Path("/etc/wlmd").exists(), os.listdir("/etc/wlmd")
    assert not Path(PROGRAM).exists()
    assert not Path(WLMCTL).exists()
    assert not Path("/usr/lib/wlmd").exists()
    assert sorted(p.name for p in WORKLIST.iterdir()) == before
