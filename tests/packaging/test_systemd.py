"""The repository's systemd units (``systemd/wlmd.service``, ``systemd/wlmd.socket``).

Checked with systemd's own tools, offline (no running systemd needed):

- ``systemd-analyze verify --man=no`` on a copy of both units in a temporary
  directory, where ``/usr/sbin/wlmd`` (which only the Debian package installs) is
  replaced by the virtualenv's ``wlmd`` so that the "is the command executable"
  check can pass; anything it prints on stderr is a failure;
- ``systemd-analyze security --offline=yes``: no warnings on stderr, overall
  exposure at most ``MAX_EXPOSURE``;
- the directives the packaging and the supervisor rely on, read from the file.

A missing ``systemd-analyze`` skips, except with ``CI=true``, where it fails
(``scripts/bootstrap`` installs the ``systemd`` package).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.required import need

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = REPO_ROOT / "systemd"
SERVICE = UNIT_DIR / "wlmd.service"
SOCKET = UNIT_DIR / "wlmd.socket"
#: What the Debian package installs and ExecStart= must name.
INSTALLED_PROGRAM = "/usr/sbin/wlmd"
INSTALLED_CONFIG = "/etc/wlmd/wlmd.conf"
#: systemd-analyze security's 0 (best) .. 10 (worst) scale; 2.0 is well inside "OK".
MAX_EXPOSURE = 2.0
TIMEOUT = 60.0


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in order]}}`` of a unit file (comments dropped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: directive outside a section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not a key=value line: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    need(path, "systemd-analyze not found (apt-get install systemd)")
    return str(path)


@pytest.fixture(scope="module")
def unit_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both units in a temporary directory, ExecStart= pointing at an existing wlmd."""
    wlmd = Path(sys.executable).parent / "wlmd"
    if not os.access(wlmd, os.X_OK):
        found = shutil.which("wlmd")
        wlmd = Path(found) if found else wlmd
    need(
        os.access(wlmd, os.X_OK),
        f"no wlmd program next to {sys.executable} or on PATH (run scripts/bootstrap)",
    )
    directory = tmp_path_factory.mktemp("units")
    for unit in (SERVICE, SOCKET):
        text = unit.read_text("utf-8")
        (directory / unit.name).write_text(text.replace(INSTALLED_PROGRAM, str(wlmd)), "utf-8")
    return directory


def test_verify_prints_nothing(analyze: str, unit_copy: Path) -> None:
    units = [str(unit_copy / SERVICE.name), str(unit_copy / SOCKET.name)]
    proc = run([analyze, "verify", "--man=no", *units], cwd=unit_copy)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"systemd-analyze verify (exit {proc.returncode}):\n{proc.stderr}{proc.stdout}"
    )


def exposure(analyze: str, unit: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    proc = run([analyze, "security", "--offline=yes", "--no-pager", str(unit)], cwd=unit.parent)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout)
    assert match, f"no overall exposure level in the output:\n{proc.stdout}\n{proc.stderr}"
    return float(match.group(1)), proc


def test_security_exposure(analyze: str, unit_copy: Path) -> None:
    level, proc = exposure(analyze, unit_copy / SERVICE.name)
    assert not proc.stderr.strip(), f"systemd-analyze security warned:\n{proc.stderr}"
    worst = [line for line in proc.stdout.splitlines() if line.startswith("✗")]
    assert level <= MAX_EXPOSURE, (
        f"overall exposure {level} > {MAX_EXPOSURE}; unmet settings:\n" + "\n".join(worst)
    )


def test_service_directives() -> None:
    service = directives(SERVICE)["Service"]
    expected = {
        "Type": ["notify"],
        "User": ["wlmd"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
    }
    for key, values in expected.items():
        assert service.get(key) == values, f"{key}= is {service.get(key)}, want {values}"
    assert service.get("KillMode", [""])[-1] in ("mixed", "control-group"), service.get("KillMode")
    (reload,) = service["ExecReload"]
    assert re.search(r"\bkill\b.*-(s ?)?HUP\b.*\$\{?MAINPID\b", reload), reload
    # /bin/kill is procps's, absent from minimal images: the shell's builtin instead
    assert reload.startswith("/bin/sh -c "), reload
    # a configuration error (exit status 2) must leave the unit failed, not loop
    assert "2" in " ".join(service.get("RestartPreventExitStatus", [])).split(), service
    # bounded start-up; the supervisor extends it (EXTEND_TIMEOUT_USEC) while loading
    assert service.get("TimeoutStartSec") == ["90s"], service.get("TimeoutStartSec")
    # the port comes from wlmd.socket: no capability by default
    assert service.get("CapabilityBoundingSet") == [""], service.get("CapabilityBoundingSet")
    assert not service.get("AmbientCapabilities"), service.get("AmbientCapabilities")
    (start,) = service["ExecStart"]
    argv = start.split()
    assert argv[0] == INSTALLED_PROGRAM, f"ExecStart= runs {argv[0]}, not {INSTALLED_PROGRAM}"
    assert argv[1:3] == ["--config", INSTALLED_CONFIG], start


def test_socket_directives() -> None:
    sections = directives(SOCKET)
    socket = sections["Socket"]
    assert socket.get("ListenStream"), "wlmd.socket listens on nothing"
    # wlmd takes over one listening socket; Accept=yes would start a service per connection
    assert socket.get("Accept", ["no"])[-1] == "no", socket.get("Accept")
    # enabled by the package (the default way to run wlmd): it hooks into sockets.target
    assert sections["Install"].get("WantedBy") == ["sockets.target"], sections["Install"]
