"""scripts/bootstrap on a fresh machine: which packages each profile installs, and what it says.

The script runs for real, from a copy of it next to this tree's setup.cfg and
pyproject.toml, with stand-ins for the programs that would change the machine
first on ``PATH``: ``dpkg-query`` answers from a list of "installed" packages,
``apt-get`` records its arguments and adds what it installs to that list, ``sudo``
runs its arguments, and ``PYTHON`` is a stand-in interpreter that creates a fake
``.venv`` and records the pip install. Everything else (bash, sha256sum, mktemp,
...) is the real thing. That checks the part that matters to someone on a fresh
Debian machine: the profiles, one progress line per slow step on stderr, and
silence when there is nothing to do. Two static checks keep the README's table
of packages and the exact pins of the test tools (setup.cfg) honest.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0

#: The packages of each profile; the README's "What scripts/bootstrap installs".
RUN = {"python3", "python3-venv", "python3-pip", "libwrap0", "make", "dcmtk"}
PACKAGE = RUN | {
    "build-essential",
    "dpkg-dev",
    "debhelper",
    "dh-python",
    "lintian",
    "man-db",
    "groff-base",
    "python3-setproctitle",
}
TEST = PACKAGE | {
    "openssl",
    "systemd",
    "systemd-container",
    "debootstrap",
    "postgresql",
    "libpq5",
    "chromium",
    "chromium-driver",
}

STUBS = {
    "dpkg-query": """#!/bin/bash
# dpkg-query -W -f='${Status}' PKG
pkg=${!#}
grep -qxF "$pkg" "$STUB_STATE/installed" || exit 1
printf 'install ok installed'
""",
    "apt-get": """#!/bin/bash
echo "$*" >>"$STUB_STATE/apt.log"
install=0
for arg; do
    case $arg in
    install) install=1 ;;
    -*) ;;
    *) ((install)) && echo "$arg" >>"$STUB_STATE/installed" ;;
    esac
done
exit 0
""",
    "sudo": """#!/bin/bash
exec "$@"
""",
    # PYTHON: -c CHECK, -VV, -m venv --clear DIR, -m pip --version|install ...
    "python3-stub": """#!/bin/bash
case "$1 $2" in
"-m venv") mkdir -p "$4/bin" && cp "$0" "$4/bin/python" && touch "$4/pip-ok"; exit ;;
"-m pip")
    [[ -e $(dirname "$0")/../pip-ok ]] || exit 1
    if [[ $3 == --version ]]; then exit 0; fi
    echo "$*" >>"$STUB_STATE/pip.log"
    printf '#!/bin/sh\\n' >"$(dirname "$0")/wlmd" && chmod +x "$(dirname "$0")/wlmd"
    exit 0 ;;
esac
[[ $1 == -VV ]] && echo "Python 3.11.99 (stub)"
exit 0
""",
}


class Machine:
    """A fresh machine: no package installed, no .venv; run the script there."""

    def __init__(self, root: Path) -> None:
        self.repo = root / "repo"
        (self.repo / "scripts").mkdir(parents=True)
        shutil.copy2(REPO_ROOT / "scripts" / "bootstrap", self.repo / "scripts" / "bootstrap")
        for name in ("setup.cfg", "pyproject.toml"):
            shutil.copy2(REPO_ROOT / name, self.repo / name)
        self.state = root / "state"
        self.state.mkdir()
        (self.state / "installed").touch()
        self.bin = root / "bin"
        self.bin.mkdir()
        for name, text in STUBS.items():
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)

    def bootstrap(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "STUB_STATE": str(self.state),
            "PYTHON": str(self.bin / "python3-stub"),
            "HOME": str(self.state),
            "LANG": "C.UTF-8",
        }
        try:
            return subprocess.run(
                [str(self.repo / "scripts" / "bootstrap"), *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/bootstrap {' '.join(args)} took over {TIMEOUT}s", pytrace=False)

    def apt_installs(self) -> list[set[str]]:
        """The package sets of every ``apt-get install`` so far."""
        log = self.state / "apt.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [
            {w for w in line.split()[line.split().index("install") + 1 :] if not w.startswith("-")}
            for line in lines
            if "install" in line.split()
        ]


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    if shutil.which("bash") is None or shutil.which("sha256sum") is None:
        pytest.fail("bash and sha256sum are needed (they are on every Debian)", pytrace=False)
    return Machine(tmp_path)


@pytest.mark.parametrize(
    ("args", "wanted"),
    [((), RUN), (("--run",), RUN), (("--package",), PACKAGE), (("--test",), TEST)],
    ids=["default", "run", "package", "test"],
)
def test_profile_installs_its_packages(
    machine: Machine, args: tuple[str, ...], wanted: set[str]
) -> None:
    proc = machine.bootstrap(*args)
    assert proc.returncode == 0, proc.stderr
    assert machine.apt_installs() == [wanted], machine.apt_installs()


def test_fresh_machine_says_what_it_does_then_is_quiet(machine: Machine) -> None:
    first = machine.bootstrap("--test")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    lines = first.stderr.splitlines()
    assert len(lines) == 3, first.stderr
    apt, venv, pip = lines
    assert apt.startswith("scripts/bootstrap: installing Debian packages: "), apt
    assert "apt-get" in apt and "about a minute" in apt, apt
    assert set(apt.split(": ", 2)[2].split(" (")[0].split()) == TEST, apt
    assert venv.startswith("scripts/bootstrap: creating ") and ".venv" in venv, venv
    assert pip.startswith("scripts/bootstrap: installing wlmd"), pip
    assert "pip install -e '.[test]'" in pip, pip
    pip_log = (machine.state / "pip.log").read_text()
    assert "install" in pip_log and "-e .[test]" in pip_log, pip_log

    again = machine.bootstrap("--test")
    assert again.returncode == 0, again.stderr
    assert (again.stdout, again.stderr) == ("", ""), again.stderr
    assert len(machine.apt_installs()) == 1, "apt-get ran again with nothing missing"


def test_only_the_missing_packages_are_installed(machine: Machine) -> None:
    (machine.state / "installed").write_text("\n".join(sorted(RUN - {"make"})) + "\n")
    proc = machine.bootstrap()
    assert proc.returncode == 0, proc.stderr
    assert machine.apt_installs() == [{"make"}]
    assert "installing Debian packages: make (" in proc.stderr, proc.stderr


def test_unknown_option_is_refused(machine: Machine) -> None:
    proc = machine.bootstrap("--tests")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "usage: scripts/bootstrap [--run | --package | --test]"
    assert not (machine.state / "apt.log").exists()


def test_failed_step_shows_its_output(machine: Machine) -> None:
    (machine.bin / "apt-get").write_text(
        "#!/bin/bash\necho 'E: Unable to locate package'\nexit 100\n"
    )
    proc = machine.bootstrap()
    assert proc.returncode == 100, proc.stderr
    assert "FAILED (exit 100): apt-get update" in proc.stderr, proc.stderr
    assert "E: Unable to locate package" in proc.stderr, proc.stderr


def test_readme_lists_every_package() -> None:
    """The README's table of what bootstrap installs names exactly the --test profile."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### What scripts/bootstrap installs", 1)[1].split("\n\n", 2)[2]
    rows = [line.split("|") for line in section.split("\n\n", 1)[0].splitlines()[2:]]
    listed = {word for row in rows for word in row[2].strip().strip("`").split()}
    assert listed == TEST, f"README lists {sorted(listed ^ TEST)} differently"


def test_lint_and_test_tools_are_pinned() -> None:
    """ruff, mypy and pytest exactly pinned: a new release cannot turn main red."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    requirements = config["options.extras_require"]["test"].split()
    names = {req.split("==")[0] for req in requirements}
    assert {"ruff", "mypy", "pytest"} <= names, requirements
    loose = [req for req in requirements if not re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][\w.]*", req)]
    assert not loose, f"not pinned to one version: {loose}"
