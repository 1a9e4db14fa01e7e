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


def entry_mode(area_path: str) -> int:
    """0640, or 0644 when the area directory is readable by others anyway."""
    try:
        directory_mode = os.stat(area_path).st_mode
    except OSError:
        return ENTRY_MODE
    return ENTRY_MODE | (0o004 if directory_mode & stat.S_IROTH else 0)


def temp_path(area_path: str) -> str:
    unique = f"{os.getpid()}-{secrets.token_hex(6)}"
    return os.path.join(area_path, f"{TEMP_PREFIX}{unique}{TEMP_SUFFIX}")


def put(
    area_path: str,
    name: str,
    data: bytes,
    check: Callable[[str], None] = lambda _path: None,
    sync_directory: bool = True,
) -> None:
    """Write ``data`` as ``area_path/name`` by the protocol; ``check(temp)`` may refuse it.

    ``check`` receives the flushed temporary file and raises to refuse it;
    the temporary file is removed on any failure. ``sync_directory=False``
    leaves the directory fsync to the caller (:func:`sync_directory` once
    after a batch of renames).
    """
    tmp = temp_path(area_path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, ENTRY_MODE)
    except OSError as exc:
        raise AreaProblem(f"cannot create a file in {area_path}: {exc.strerror}") from exc
    try:
        try:
            _set_owner_and_mode(fd, area_path)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        check(tmp)
        os.rename(tmp, os.path.join(area_path, name))
    except OSError as exc:
        _discard(tmp)
        raise AreaProblem(f"cannot write {os.path.join(area_path, name)}: {exc.strerror}") from exc
    except BaseException:
        _discard(tmp)
        raise
    if sync_directory:
        sync_directory_of(area_path)


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


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
