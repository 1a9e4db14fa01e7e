"""Putting one file into a storage area atomically, and taking one out (call under the lock).

The steps are the lockfile protocol's (README "Storage layout and lockfile
protocol"): the bytes go to a temporary name in the area that does not end
in ``.wl`` (so neither wlmd nor wlmscpfs ever reads it), are flushed to disk
(``fsync``), are checked as the server will check them (the callback), and
only then is the file renamed to its ``.wl`` name — atomic on one file
system — and the directory flushed so the rename survives a power cut.

Permissions: the server reads the area as another user. In the Debian
layout the areas are ``root:wlmd-writers`` 2770 (setgid: new files get the
group) and entries must be group-readable, so files are 0640, plus read for
others when the area directory itself is readable by others (a development
tree at 0755); the group is set to the directory's where the kernel did not
already (no setgid bit) and we may.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import stat
from collections.abc import Callable

from wlmd.authoring.errors import AreaProblem

#: Temporary names: hidden, and never ending in .wl (wlmsetup.txt).
TEMP_PREFIX = ".wlmctl-"
TEMP_SUFFIX = ".tmp"

#: The mode of entries (group-readable for the server, see above).
ENTRY_MODE = 0o640


def _find_syncfs() -> Callable[[int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNCFS = _find_syncfs()


def entry_mode(area_path: str) -> int:
    """0640, or 0644 when the area directory is readable by others anyway."""
    try:
        directory_mode = os.stat(area_path).st_mode
    except OSError:
        return ENTRY_MODE
    return ENTRY_MODE | (0o004 if directory_mode & stat.S_IROTH else 0)


#: What to do about a worklist the packaged unit keeps read-only (wlmd(8) "SYSTEMD").
SANDBOX_HINT = (
    "under the packaged wlmd.service add ReadWritePaths=/var/lib/wlmd/worklist"
    " with `systemctl edit wlmd`"
)


def unwritable_reason(path: str) -> str | None:
    """Why this process cannot write entries into area ``path``, or None when it can.

    Checked at start-up by the parts that write entries (HL7 intake, the REST
    API, the MPPS entry policy, housekeeping), so that a worklist left read-only
    stops the server with one line instead of refusing every order later. The
    packaged unit mounts it read-only (``ProtectSystem=strict``) until a drop-in
    says otherwise; ``access(2)`` sees both that (EROFS) and missing permissions.
    The write lock opens the lockfile read-write, so it must be writable too.
    """
    lockfile = os.path.join(path, "lockfile")
    if os.access(path, os.W_OK | os.X_OK) and (
        not os.path.exists(lockfile) or os.access(lockfile, os.W_OK)
    ):
        return None
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError as exc:
        return exc.strerror or str(exc)
    if read_only:
        return f"read-only file system ({SANDBOX_HINT})"
    return f"no write permission for uid {os.geteuid()} (on the directory or its lockfile)"


def temp_path(area_path: str) -> str:
    unique = f"{os.getpid()}-{secrets.token_hex(6)}"
    return os.path.join(area_path, f"{TEMP_PREFIX}{unique}{TEMP_SUFFIX}")


def put(
    area_path: str,
    name: str,
    data: bytes,
    check: Callable[[str], None] = lambda _path: None,
) -> None:
    """Write ``data`` as ``area_path/name`` by the protocol; ``check(temp)`` may refuse it.

    ``check`` receives the flushed temporary file and raises to refuse it;
    the temporary file is removed on any failure.
    """
    tmp = stage(area_path, data, flush=True)
    commit(area_path, tmp, name, check)
    sync_directory_of(area_path)


def stage(area_path: str, data: bytes, flush: bool) -> str:
    """Write ``data`` to a new temporary file in the area; its path.

    ``flush=False`` leaves the flush to the caller: :func:`flush_staged` once
    for a whole batch (one ``syncfs`` instead of an ``fsync`` per file),
    which must happen before any of them is committed.
    """
    tmp = temp_path(area_path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, ENTRY_MODE)
    except OSError as exc:
        raise AreaProblem(f"cannot create a file in {area_path}: {exc.strerror}") from exc
    try:
        _set_owner_and_mode(fd, area_path)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if flush:
            os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        discard(tmp)
        raise AreaProblem(f"cannot write {tmp}: {exc.strerror}") from exc
    os.close(fd)
    return tmp


def flush_staged(area_path: str, staged: list[str]) -> None:
    """Make staged files durable: one ``syncfs(2)`` of the area's file system.

    Without syncfs (not glibc, not Linux) each file is fsynced instead.
    """
    fd = os.open(area_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _SYNCFS is not None and _SYNCFS(fd) == 0:
            return
    finally:
        os.close(fd)
    for tmp in staged:
        handle = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def commit(
    area_path: str, tmp: str, name: str, check: Callable[[str], None] = lambda _path: None
) -> None:
    """``check(tmp)``, then rename the flushed temporary file to ``name``; removed on failure."""
    try:
        check(tmp)
        os.rename(tmp, os.path.join(area_path, name))
    except OSError as exc:
        discard(tmp)
        raise AreaProblem(f"cannot write {os.path.join(area_path, name)}: {exc.strerror}") from exc
    except BaseException:
        discard(tmp)
        raise


def remove(area_path: str, name: str, sync: bool = True) -> bool:
    """Remove ``area_path/name``; False if it was not there."""
    try:
        os.unlink(os.path.join(area_path, name))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AreaProblem(f"cannot remove {os.path.join(area_path, name)}: {exc.strerror}") from exc
    if sync:
        sync_directory_of(area_path)
    return True


def sync_directory_of(area_path: str) -> None:
    """fsync the directory: its renames and removals are on disk afterwards."""
    fd = os.open(area_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_owner_and_mode(fd: int, area_path: str) -> None:
    directory = os.stat(area_path)
    if os.fstat(fd).st_gid != directory.st_gid:
        # Not setgid: give the file the area's group if we are a member.
        with contextlib.suppress(OSError):
            os.fchown(fd, -1, directory.st_gid)
    os.fchmod(fd, entry_mode(area_path))  # independent of the umask


def discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
