"""The wheel: built from this tree, installed into a fresh venv, run from outside the tree.

Issue 11 item 1: the editable install of ``scripts/bootstrap`` hid that a wheel
(``pip install .``) had no ``wlmd/worklist/``, so the installed ``wlmd`` died with
``ModuleNotFoundError``. These tests install the way a user does and run the
installed program, never the checkout:

* the wheel is built with ``pip wheel --no-deps`` (build isolation: the
  ``build-system.requires`` of pyproject.toml, as ``pip install .`` does) from a
  copy of the tree without ``.git``, ``.venv`` or build output, so nothing of the
  checkout leaks in and the checkout gets no ``build/`` or ``*.egg-info``;
* it must hold every ``*.py`` under ``wlmd/`` (a new subpackage that a package
  finder skips fails here, before anyone runs it);
* it is installed (not editable) with its dependencies into a new venv outside the
  checkout (``--system-site-packages`` off, so only what the wheel declares is
  there); pip's cache and configured indexes are used as they are, so a warm cache
  makes this a few seconds; offline, point pip at a wheelhouse with the usual
  ``PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR``;
* the installed ``wlmd`` (the console script) runs with the working directory
  outside the checkout and without ``PYTHONPATH``: every module imports,
  ``--help``/``--version`` work, and a server on a generated storage area answers
  DCMTK's echoscu and findscu with what the files hold. Readiness is the
  ``READY=1`` it sends to ``$NOTIFY_SOCKET``, as under systemd.

A failing build or install fails (no skip); a missing DCMTK skips locally and fails
with ``CI=true`` (tests/helpers/dcmtk.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.helpers.dcmtk import echoscu, findscu, require_dcmtk
from tests.helpers.notify import notify_socket, wait_for_ready
from tests.helpers.procs import kill_session, stop_gracefully
from tests.helpers.required import run
from tests.helpers.servers import free_port
from tests.helpers.tree import export_tree
from tests.helpers.worklists import complete_entry, make_area, query

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "wlmd"
#: The REST API's web page: data files the wheel must carry beside the modules.
STATIC_FILES = ("index.html", "app.css", "app.js")
PIP_TIMEOUT = 300.0  # may download build requirements and dependencies
STOP_TIMEOUT = 40.0  # above the supervisor's grace period for running associations


def source_modules(package: Path = PACKAGE) -> set[str]:
    """``wlmd/…/x.py`` for every module of the source tree (what a wheel must hold)."""
    return {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def module_name(path: str) -> str:
    """``wlmd/worklist/store.py`` -> ``wlmd.worklist.store`` (``__init__`` -> the package)."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """A user's shell with the venv's bin first: no PYTHONPATH, no other venv."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/root"),
        **extra,
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a clean copy of the tree; the one wheel it made."""
    work = tmp_path_factory.mktemp("wheel")
    tree = export_tree(work / "src")
    out = work / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, tree],
        timeout=PIP_TIMEOUT,
        cwd=work,
    )
    wheels = sorted(out.glob("wlmd-*.whl"))
    assert len(wheels) == 1, f"expected one wlmd wheel in {out}, found {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv outside the checkout with the wheel and its dependencies installed."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    assert REPO_ROOT not in target.parents, f"{target} is inside the checkout"
    run([sys.executable, "-m", "venv", target], cwd=target.parent)
    run(
        # [api]: Starlette and Uvicorn, so that every module imports (wlmd.api.app)
        [target / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[api]"],
        timeout=PIP_TIMEOUT,
        cwd=target.parent,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return target


def test_wheel_holds_every_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    in_wheel = {name for name in names if name.startswith("wlmd/") and name.endswith(".py")}
    missing = sorted(source_modules() - in_wheel)
    extra = sorted(in_wheel - source_modules())
    assert not missing, f"{wheel.name} lacks modules of the source tree: {missing}"
    assert not extra, f"{wheel.name} has modules the source tree does not: {extra}"
    assert "wlmd = wlmd.cli:main" in scripts, scripts
    pages = sorted(f"wlmd/api/static/{name}" for name in STATIC_FILES)
    assert [name for name in pages if name not in names] == [], "the web page's files"


def test_installed_modules_import_from_the_venv(venv: Path, tmp_path: Path) -> None:
    """Every module of the tree imports in the venv, and from the venv, not the checkout.

    ``wlmd.__main__`` runs the program when imported; ``python -m wlmd`` is run by
    :func:`test_installed_help_and_version` instead.
    """
    modules = sorted(
        module_name(path) for path in source_modules() if not path.endswith("/__main__.py")
    )
    script = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    print(importlib.import_module(name).__file__)\n"
    )
    proc = run([venv / "bin" / "python", "-c", script, *modules], env=clean_env(venv), cwd=tmp_path)
    files = proc.stdout.split()
    assert len(files) == len(modules), proc.stdout
    outside = [f for f in files if not Path(f).resolve().is_relative_to(venv.resolve())]
    assert not outside, f"imported from outside the venv: {outside}"


def test_installed_help_and_version(venv: Path, tmp_path: Path) -> None:
    from wlmd import __version__

    program = venv / "bin" / "wlmd"
    help_text = run([program, "--help"], env=clean_env(venv), cwd=tmp_path).stdout
    assert "usage: wlmd [options] port" in help_text, help_text
    assert "--data-files-path" in help_text, help_text
    version = run([program, "--version"], env=clean_env(venv), cwd=tmp_path).stdout
    assert version.splitlines()[0] == f"wlmd {__version__}", version
    assert "pynetdicom" in version, version
    as_module = run(
        [venv / "bin" / "python", "-m", "wlmd", "--version"], env=clean_env(venv), cwd=tmp_path
    )
    assert as_module.stdout == version


def _entries() -> dict[str, Dataset]:
    return {
        "ct1.wl": complete_entry(PatientID="WHL001", PatientName="WHEEL^ONE", Modality="CT"),
        "mr1.wl": complete_entry(
            PatientID="WHL002",
            PatientName="WHEEL^TWO",
            Modality="MR",
            AccessionNumber="ACC0002",
            ScheduledProcedureStepID="SPS0002",
        ),
        "mr2.wl": complete_entry(
            PatientID="WHL003",
            PatientName="WHEEL^THREE",
            Modality="MR",
            AccessionNumber="ACC0003",
            ScheduledProcedureStepID="SPS0003",
        ),
    }


def _answer(ds: Dataset) -> tuple[str, str, str, str]:
    """The values the query asks for, as the file or the response holds them."""
    sps = ds.ScheduledProcedureStepSequence[0]
    return (str(ds.PatientID), str(ds.PatientName), str(ds.AccessionNumber), str(sps.Modality))


def test_installed_server_answers(venv: Path, tmp_path: Path) -> None:
    """The installed console script serves a generated area: echo, then two queries."""
    require_dcmtk("findscu", "echoscu")
    root = tmp_path / "wlistdb"
    area = make_area(root, "WHEEL", _entries())
    files = {_answer(dcmread(path)) for path in area.glob("*.wl")}
    port = free_port()
    log = tmp_path / "wlmd.log"
    argv = [venv / "bin" / "wlmd", "--listen-address", "127.0.0.1", "-dfp", root, str(port)]
    with notify_socket() as (sock, path), open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            env=clean_env(venv, NOTIFY_SOCKET=path),
            cwd=tmp_path,  # outside the checkout, no PYTHONPATH: only the venv has wlmd
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_ready(sock, proc, log)
            echo = echoscu(port, aec="WHEEL")
            assert echo.returncode == 0 and [r.status for r in echo.responses] == [0], (
                echo.describe()
            )

            everything = query(
                PatientID=None, PatientName=None, AccessionNumber=None, sps={"Modality": None}
            )
            result = findscu(port, everything, aec="WHEEL")
            assert result.final_status == 0x0000, result.describe()
            assert {_answer(ds) for ds in result.datasets} == files, result.describe()
            assert len(result.datasets) == len(files), result.describe()

            mr_only = query(
                PatientID=None, PatientName=None, AccessionNumber=None, sps={"Modality": "MR"}
            )
            result = findscu(port, mr_only, aec="WHEEL")
            assert result.final_status == 0x0000, result.describe()
            want = {answer for answer in files if answer[3] == "MR"}
            assert len(want) == 2
            assert sorted(_answer(ds) for ds in result.datasets) == sorted(want), result.describe()

            stop_gracefully(proc, log, STOP_TIMEOUT)
        finally:
            kill_session(proc, STOP_TIMEOUT)  # the supervisor and any worker it left
