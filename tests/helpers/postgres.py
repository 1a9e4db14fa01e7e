"""A throwaway PostgreSQL cluster for the state store's tests (Debian's ``postgresql``).

``initdb`` into a fresh directory under /tmp, ``pg_ctl start -w`` listening
on a Unix socket in that directory only (``listen_addresses=''``: no TCP at
all), trust authentication for the cluster's own superuser ``wlmd``. As
root, the server runs as ``nobody`` (PostgreSQL refuses to run as root);
the directory is that user's for the run and removed afterwards. ``fsync``
is off: the tests kill clients, never the server, and the cluster is thrown
away. Without the binaries the tests skip, and fail under ``CI=true``.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import tempfile
from pathlib import Path

from tests.helpers.required import need, run

SUPERUSER = "wlmd"


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb and pg_ctl."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


class Cluster:
    """One running server; :meth:`database` makes a fresh database per test."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="wlmd-pg-", dir="/tmp"))
        self.data = self.base / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.base, "nobody")
            self.base.chmod(0o755)
            self._as = ["runuser", "-u", "nobody", "--"]
        self._names = itertools.count(1)

    def _pg(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        run([*self._as, str(self.bindir / tool), *args], timeout=timeout)

    def start(self) -> None:
        (self.base / "owner").write_text(str(os.getpid()))
        self._pg(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-k {self.base} -c listen_addresses='' -c fsync=off -c max_connections=50"
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.base / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.base} user={SUPERUSER} dbname={dbname}"

    def database(self) -> str:
        """A new empty database; its conninfo."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.conninfo(name)


def _reap_stale(bindir: Path) -> None:
    """Stop and remove clusters left by a test run that was killed (its pid is gone)."""
    for owner in glob.glob("/tmp/wlmd-pg-*/owner"):
        base = Path(owner).parent
        try:
            os.kill(int(Path(owner).read_text()), 0)
            continue  # its run is still going
        except (ProcessLookupError, ValueError):
            pass
        except PermissionError:
            continue
        stale = Cluster.__new__(Cluster)
        stale.bindir, stale.base, stale.data = bindir, base, base / "data"
        stale._as = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        stale.stop()


def start_cluster() -> Cluster:
    """A started cluster, or skip (fail with CI=true) when PostgreSQL or psycopg is missing."""
    bindir = find_bindir()
    need(bindir is not None, "PostgreSQL server binaries not found (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        need(False, "psycopg 3 is not installed (pip install -e '.[test]')")
    assert bindir is not None
    need(
        shutil.which("runuser") or os.geteuid() != 0, "runuser is needed to run PostgreSQL as root"
    )
    _reap_stale(bindir)
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except BaseException:
        log = cluster.base / "log"
        if log.exists():
            print(log.read_text()[-3000:])
        cluster.stop()
        raise
    return cluster
