"""A real Debian bookworm booted under systemd, for the package's maintainer scripts and unit.

Why a container
    What the Debian package does under a running systemd (deb-systemd-invoke in
    the maintainer scripts, socket activation, ``Restart=``, ``ExecReload=``,
    ``systemctl`` states) cannot be checked on a CI runner whose PID 1 is not
    systemd. ``systemd-nspawn -b`` boots a Debian userspace with its own systemd
    as PID 1, in its own PID, mount and network namespaces.

The root file system (:func:`rootfs`)
    ``debootstrap --variant=minbase`` of bookworm plus :data:`PACKAGES`: systemd
    and dbus (to boot), what the .deb depends on (python3, libwrap0,
    python3-setproctitle, adduser, python3-hl7) so that ``apt-get install ./wlmd_*.deb``
    needs no network inside the container, and dcmtk so clients run inside.
    Deliberately *not* procps: the unit must work without ``/bin/kill`` (minimal
    images do not have it). Built once into a temporary directory beside the
    cache and renamed into place atomically, under
    ``$WLMD_TEST_CACHE`` (default ``/var/cache/wlmd-tests``), keyed by a hash of
    everything that goes into it; never inside the repository. The mirror is the
    host's apt source (``$WLMD_DEBOOTSTRAP_MIRROR`` overrides it).

One boot (:class:`Container`)
    ``systemd-nspawn -b --register=no --keep-unit`` (no machined, no scope on a
    host that may not run systemd) with ``--volatile=overlay``: the cached tree
    is the read-only lower layer and every change lands in a tmpfs that goes
    away with the container, so each boot starts from the same clean system.
    ``--private-network``: the container has only its own loopback, nothing it
    runs can bind or reach a host interface. A host directory is bind-mounted at
    :data:`SHARE` to pass files (the .deb) in.

Running commands inside
    ``nsenter`` into every namespace of the container's PID 1 (the child of the
    nspawn process whose innermost PID is 1), with a clean environment.
    :meth:`Container.boot` returns once ``systemctl is-system-running --wait``
    inside says the boot is finished (``running``, or ``degraded`` when some
    unrelated unit failed; the failed units are kept in :attr:`Container.boot_state`).

Policy: without root, ``systemd-nspawn``, ``debootstrap`` or ``nsenter``, and
when the boot fails, :func:`need` skips the tests with the reason, except with
``CI=true``, where it fails them (the CI machine must run them). Every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers.required import need

SUITE = "bookworm"
VARIANT = "minbase"
#: Installed on top of minbase; see the module docstring for why each.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "libwrap0",
    "python3-setproctitle",
    "adduser",
    "python3-hl7",
    "dcmtk",
)
CACHE = Path(os.environ.get("WLMD_TEST_CACHE", "/var/cache/wlmd-tests"))
#: Where the host directory given to :class:`Container` appears inside.
SHARE = "/mnt/host"
#: Inside the container: a clean environment for every command.
ENV = ("PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root", "TERM=dumb")

BUILD_TIMEOUT = 1200.0  # debootstrap downloads and unpacks ~200 packages
BOOT_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0


def require_tools() -> None:
    """Skip (fail with CI=true) unless this machine can build and boot the container."""
    need(os.geteuid() == 0, "booting a systemd container needs root")
    for tool, package in (
        ("systemd-nspawn", "systemd-container"),
        ("debootstrap", "debootstrap"),
        ("nsenter", "util-linux"),
    ):
        need(shutil.which(tool), f"{tool} not found (apt-get install {package}; scripts/bootstrap)")


def host_mirror() -> str | None:
    """The Debian mirror of the host's apt sources (deb822 or one-line format), if any."""
    if override := os.environ.get("WLMD_DEBOOTSTRAP_MIRROR"):
        return override
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text("utf-8", "replace").split("\n\n"):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, sep, v in (line.partition(":") for line in stanza.splitlines())
                if sep and not k.startswith("#")
            )
            if (
                SUITE in fields.get("suites", "").split()
                and "main" in fields.get("components", "").split()
            ):
                return fields.get("uris", "").split()[0] if fields.get("uris") else None
    lists = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text("utf-8", "replace").splitlines():
            match = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s+.*\bmain\b", line)
            if match:
                return match.group(1)
    return None  # debootstrap's own default


def _run(argv: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
    words = [str(a) for a in argv]
    try:
        return subprocess.run(
            words,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {timeout}s: {shlex.join(words)}", pytrace=False)
        raise  # not reached


def rootfs() -> Path:
    """The cached bookworm tree, built (once, under a lock) when missing."""
    require_tools()
    mirror = host_mirror()
    recipe = "\n".join([SUITE, VARIANT, *PACKAGES, mirror or "", "v1"])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    target = CACHE / f"{SUITE}-{key}"
    if (target / "usr/lib/systemd/systemd").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it
        if (target / "usr/lib/systemd/systemd").exists():
            return target
        work = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=CACHE))
        try:
            tree = work / "root"
            argv = [
                "debootstrap",
                f"--variant={VARIANT}",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                tree,
                *([mirror] if mirror else []),
            ]
            proc = _run(argv, BUILD_TIMEOUT)
            if proc.returncode != 0:
                log = tree / "debootstrap" / "debootstrap.log"
                detail = log.read_text("utf-8", "replace")[-4000:] if log.exists() else ""
                need(
                    False,
                    f"debootstrap failed (exit {proc.returncode}): {shlex.join(map(str, argv))}\n"
                    f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}{detail}",
                )
            _configure(tree)
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(target)
            os.rename(tree, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _configure(tree: Path) -> None:
    """What a booted test system needs that debootstrap does not do."""
    (tree / "etc/hostname").write_text("wlmd-test\n")
    # No network inside: apt must not try to fetch lists or recommends.
    (tree / "etc/apt/apt.conf.d/90wlmd-tests").write_text(
        'APT::Install-Recommends "false";\nAcquire::Languages "none";\n'
    )
    # Units that have nothing to do in a network-less throwaway container and
    # would only slow the boot down or fail it.
    for unit in ("systemd-timesyncd.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        link = tree / "etc/systemd/system" / unit
        if not link.exists():
            link.symlink_to("/dev/null")


class Container:
    """One booted container; use :func:`booted` (a context manager) to get one."""

    def __init__(self, root: Path, share: Path, log: Path) -> None:
        self.root = root
        self.share = share
        self.log = log
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self.boot_state = ""

    # --- lifecycle ---------------------------------------------------------------

    def boot(self) -> None:
        argv = [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            "--register=no",
            "--keep-unit",
            f"--directory={self.root}",
            "--volatile=overlay",
            "--private-network",
            f"--bind={self.share}:{SHARE}",
            "--console=read-only",
            # unique: nspawn keeps per-machine state in /run/systemd/nspawn
            f"--machine=wlmd-test-{os.getpid()}",
        ]
        with open(self.log, "wb") as out:
            self.nspawn = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + BOOT_TIMEOUT
        self.leader = self._find_leader(deadline)
        state = ""
        while time.monotonic() < deadline:
            proc = self.run(
                ["systemctl", "is-system-running", "--wait"],
                check=False,
                timeout=max(1.0, deadline - time.monotonic()),
            )
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                break
            if self.nspawn.poll() is not None:
                break
            time.sleep(0.2)  # D-Bus/systemd not answering yet: bounded by the deadline
        if state not in ("running", "degraded"):
            self.stop()
            need(False, f"the container did not boot (state {state!r}):\n{self.boot_log()}")
        if state == "degraded":
            failed = self.run(["systemctl", "--failed", "--no-legend", "--plain"], check=False)
            state += ": " + " ".join(line.split()[0] for line in failed.stdout.splitlines())
        self.boot_state = state

    def _find_leader(self, deadline: float) -> int:
        """The container's PID 1, seen from here: nspawn's child whose innermost PID is 1."""
        assert self.nspawn is not None
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                need(
                    False,
                    f"systemd-nspawn exited with {self.nspawn.returncode}:\n{self.boot_log()}",
                )
            children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
            with contextlib.suppress(OSError):
                for pid in children.read_text().split():
                    status = Path(f"/proc/{pid}/status").read_text()
                    nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M)
                    # PID 1 inside, and systemd once /proc/PID/exe points at it
                    if (
                        nspid
                        and nspid.group(1).split()[-1] == "1"
                        and os.readlink(f"/proc/{pid}/exe").endswith("/systemd")
                    ):
                        return int(pid)
            time.sleep(0.05)  # no readiness signal for "nspawn has forked"
        need(False, f"no container PID 1 within {BOOT_TIMEOUT}s:\n{self.boot_log()}")
        raise AssertionError  # not reached

    def stop(self) -> None:
        """Power the container off (SIGTERM to nspawn is an orderly shutdown); kill if stuck."""
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        self.nspawn.send_signal(signal.SIGTERM)
        try:
            self.nspawn.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            if self.leader:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.leader, signal.SIGKILL)  # the whole PID namespace goes
            self.nspawn.kill()
            self.nspawn.wait(timeout=STOP_TIMEOUT)

    def boot_log(self) -> str:
        try:
            return self.log.read_text("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    # --- commands ------------------------------------------------------------------

    def command(self, argv: Sequence[str], user: str | None = None) -> list[str]:
        """The host argv that runs ``argv`` inside (as ``user`` via runuser, else root)."""
        inner = list(argv)
        if user is not None:
            inner = ["runuser", "-u", user, "--", *inner]
        return [
            "nsenter",
            f"--target={self.leader}",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--cgroup",
            "--root",
            "--wd",
            "--",
            "/usr/bin/env",
            "-i",
            *ENV,
            *inner,
        ]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT,
        user: str | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside to completion; with ``check`` a non-zero exit fails the test."""
        words = self.command(argv, user)
        try:
            proc = subprocess.run(
                words,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"timed out after {timeout}s in the container: {shlex.join(argv)}", pytrace=False
            )
            raise  # not reached
        if check and proc.returncode != 0:
            pytest.fail(
                f"exit {proc.returncode} in the container: {shlex.join(argv)}\n--- stdout ---\n"
                f"{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}",
                pytrace=False,
            )
        return proc

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside (``sh -ec``)."""
        return self.run(["sh", "-ec", script], **kwargs)  # type: ignore[arg-type]

    def popen(self, argv: Sequence[str], user: str | None = None) -> subprocess.Popen[str]:
        """Start ``argv`` inside without waiting (stdout/stderr piped); the caller ends it."""
        return subprocess.Popen(
            self.command(argv, user),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@contextlib.contextmanager
def booted(share: Path) -> Iterator[Container]:
    """A freshly booted throwaway container with ``share`` at :data:`SHARE`; stopped afterwards."""
    root = rootfs()
    container = Container(root, share, share / "nspawn.log")
    try:
        container.boot()
        yield container
    finally:
        container.stop()
