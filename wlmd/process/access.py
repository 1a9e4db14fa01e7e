"""TCP-wrappers host access control (``+ac`` / ``--access-control``), as wlmscpfs.

wlmscpfs built with TCP-wrapper support asks libwrap whether a peer may connect,
before it reads a single PDU. wlmd does the same through a thin ctypes binding to
the system's ``libwrap.so.0`` (Debian package ``libwrap0``), so the very same
``/etc/hosts.allow`` and ``/etc/hosts.deny`` files, with the same matching rules
(hosts_access(5)), decide. It is called only from the single-threaded supervisor
right after ``accept()``; libwrap keeps static state and is not thread-safe.

libwrap is an old C library meant for ``tcpd`` (one process per connection), and a
long-running daemon has to step around its traps:

* ``twist`` replaces the calling process with a shell command (and ``clean_exit``
  ends it on failure) unless the exported ``int resident`` is positive. libwrap only
  counts a process as resident from its *second* ``hosts_access()`` call, so the
  first connection matching a ``twist`` rule would turn the supervisor into
  ``/bin/sh``. We set ``resident = 1``: libwrap then refuses ``twist`` with a syslog
  error and the client is denied — never an ``exec``. ``spawn`` forks a shell and
  waits for that child only (Debian's libwrap waits by pid and re-raises foreign
  SIGCHLDs), so it does not steal worker exit statuses; it does block the
  supervisor while the command runs, as it blocks wlmscpfs.
* libwrap reports through ``syslog(3)`` without calling ``openlog``; unless we do,
  its messages carry the interpreter's name (``python3``). We call
  ``openlog("wlmd", LOG_PID, LOG_DAEMON)`` via libc, keeping the ident buffer alive
  (glibc stores the pointer, not a copy).
* The table paths are the exported ``char *hosts_allow_table`` /
  ``hosts_deny_table``. We point them at ctypes buffers owned by the
  module and never freed (freeing one would leave libwrap with a dangling
  pointer), and re-point them before every check, so two instances with
  different tables never see each other's.
* libwrap reports malformed tables only to syslog. Debian's libwrap (measured,
  see tests/unit/process/test_access.py) ignores a line without ``:``, but treats a line
  without newline (easy to miss: the *last* line, even a comment or blanks) or a
  line that is too long as an error in the whole table: hosts.allow grants nothing
  from there on, and hosts.deny denies *every* client. A rule whose options are
  wrong (unknown option, ``twist`` here) denies the client when it matches. wlmd
  keeps libwrap's verdict (the same files must mean the same thing to wlmscpfs and
  wlmd) but lints the tables itself and logs each problem through Python logging,
  where an operator will see it, and logs every decision with the peer address.
* Options that act on the calling process (``umask``, ``nice``, ``user``,
  ``group``, ``setenv``, ``rfc931``) act on the supervisor here. ``umask`` is
  restored after each check so the supervisor's state does not depend on which
  peer connected last; the others are reported by the lint.

Hostnames: libwrap's ``hosts_ctl`` takes the client's name from the caller. With
host lookup on (the default, as wlmscpfs) the name is the reverse DNS name,
confirmed by a forward lookup as libwrap itself does for ``tcpd``; a name that
does not map back to the address is presented as ``paranoid`` (so a peer cannot
satisfy a name rule by forging its PTR record). These lookups block the supervisor
for as long as the resolver takes (DNS timeouts included), as they block
wlmscpfs; ``-dhl`` / ``--disable-host-lookup`` avoids them and presents
``unknown``, so only address rules can match.

Test and diagnostic hooks: when no table paths are passed, the environment
variables ``WLMD_HOSTS_ALLOW`` / ``WLMD_HOSTS_DENY`` override libwrap's compiled-in
``/etc/hosts.allow`` / ``/etc/hosts.deny``. They exist so integration tests can run
the real server against temporary tables; production configurations should not
set them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
from dataclasses import dataclass

from wlmd.association.peers import presentable_address
from wlmd.process.logsetup import LogThrottle

LOG = logging.getLogger("wlmd.access")

#: The shared object of the ``libwrap0`` package.
LIBWRAP = "libwrap.so.0"
#: What libwrap calls an unknown client name/user (``STRING_UNKNOWN`` in tcpd.h).
UNKNOWN = "unknown"
#: libwrap's name for a host whose reverse and forward DNS disagree (``STRING_PARANOID``).
PARANOID = "paranoid"
ENV_ALLOW_TABLE = "WLMD_HOSTS_ALLOW"
ENV_DENY_TABLE = "WLMD_HOSTS_DENY"

# <syslog.h>
_LOG_PID = 0x01
_LOG_DAEMON = 3 << 3

#: libwrap's logical line buffer (``BUFLEN`` in hosts_access.c); longer lines are ignored.
_BUFLEN = 2048
_BROKEN = (
    "libwrap stops reading the table here and treats it as an error: "
    "hosts.allow grants nothing more, hosts.deny denies every client"
)
#: Options libwrap knows (options.c ``option_table``); any other name denies on match.
_KNOWN_OPTIONS = frozenset(
    [
        "user",
        "group",
        "umask",
        "linger",
        "keepalive",
        "spawn",
        "twist",
        "rfc931",
        "setenv",
        "nice",
        "severity",
        "allow",
        "deny",
        "banners",
    ]
)
#: Options that change the calling process — here the long-running supervisor.
_PROCESS_OPTIONS = frozenset(["user", "group", "nice", "setenv", "rfc931"])

#: libwrap's compiled-in table paths per library, read before we first re-point them.
_DEFAULT_TABLES: dict[str, tuple[str, str]] = {}
#: Table path buffers libwrap may still point at; never freed (a few per process).
_KEEP_ALIVE: dict[str, ctypes.Array[ctypes.c_char]] = {}

#: glibc's openlog() keeps this pointer; it must live as long as the process.
_SYSLOG_IDENT: ctypes.Array[ctypes.c_char] | None = None


class AccessControlUnavailable(RuntimeError):
    """libwrap cannot be used; ``+ac`` must then stop start-up, never allow everyone."""


@dataclass(frozen=True)
class TableProblem:
    """One line of hosts.allow/hosts.deny that libwrap will not read as its author meant."""

    path: str
    line: int
    message: str
    #: libwrap treats the whole table as an error (hosts.deny then denies everyone).
    breaks_table: bool = False

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.message}"


class AccessControl:
    """Ask libwrap whether a peer may connect (hosts_access(5) semantics)."""

    def __init__(
        self,
        daemon_name: str = "wlmd",
        host_lookup: bool = True,
        allow_table: str | None = None,
        deny_table: str | None = None,
        library: str = LIBWRAP,
    ) -> None:
        """Load libwrap; raise :class:`AccessControlUnavailable` if that is impossible.

        ``daemon_name`` is the name rules are written for (``wlmd: 10.0.0.0/8``);
        wlmscpfs uses ``wlmscpfs``, so rules written for it need the new name.
        ``library`` is a parameter so tests can prove the failure path.
        """
        try:
            self._lib = ctypes.CDLL(library)
            self._hosts_ctl = self._lib.hosts_ctl
            self._resident = ctypes.c_int.in_dll(self._lib, "resident")
            self._allow_ptr = ctypes.c_void_p.in_dll(self._lib, "hosts_allow_table")
            self._deny_ptr = ctypes.c_void_p.in_dll(self._lib, "hosts_deny_table")
        except (OSError, ValueError, AttributeError) as exc:
            raise AccessControlUnavailable(
                f"access control (+ac) needs TCP wrappers, but {library} cannot be used "
                f"({exc}); install the libwrap0 package or drop +ac"
            ) from None
        self._hosts_ctl.argtypes = [ctypes.c_char_p] * 4
        self._hosts_ctl.restype = ctypes.c_int
        self.daemon_name = daemon_name
        self.host_lookup = host_lookup
        if library not in _DEFAULT_TABLES:
            _DEFAULT_TABLES[library] = (_c_string(self._allow_ptr), _c_string(self._deny_ptr))
        default_allow, default_deny = _DEFAULT_TABLES[library]
        if allow_table is None:
            allow_table = os.environ.get(ENV_ALLOW_TABLE) or default_allow
        if deny_table is None:
            deny_table = os.environ.get(ENV_DENY_TABLE) or default_deny
        self.allow_table: str = allow_table
        self.deny_table: str = deny_table
        # libwrap only keeps the pointers: the buffers must outlive every check,
        # and this instance (a later check may run after it is gone).
        self._allow_buf = _keep_alive(self.allow_table)
        self._deny_buf = _keep_alive(self.deny_table)
        self._linted: dict[str, tuple[int, int, int] | None] = {}
        self._denial_log = LogThrottle()  # a denied host hammering the port: a few lines
        _openlog_once("wlmd")
        self._check_tables()
        LOG.info(
            "access control: libwrap rules for %r from %s and %s (host lookup %s)",
            daemon_name,
            self.allow_table,
            self.deny_table,
            "on" if host_lookup else "off",
        )

    def allows(self, peer_address: str) -> bool:
        """Whether ``peer_address`` (as ``accept()`` returned it) may connect.

        Logs denials at warning level (at most 20 lines per 10 s, then how many
        were left out), every grant at debug level.
        """
        addr = presentable_address(peer_address)
        name = client_name(addr) if self.host_lookup else UNKNOWN
        self._check_tables()
        # Re-assert our settings: another instance (or libwrap itself, which bumps
        # ``resident`` on its own schedule) may have changed them.
        self._resident.value = 1
        self._allow_ptr.value = ctypes.addressof(self._allow_buf)
        self._deny_ptr.value = ctypes.addressof(self._deny_buf)
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            verdict = self._hosts_ctl(
                self.daemon_name.encode(),
                name.encode("ascii", "replace"),
                addr.encode("ascii"),
                UNKNOWN.encode(),
            )
        finally:
            os.umask(umask)  # a matched "umask" option must not stick to the supervisor
        client = addr if name == UNKNOWN else f"{addr} ({name})"
        if verdict:
            LOG.debug("access granted by hosts.allow/hosts.deny: %s", client)
            return True
        more = self._denial_log.take()
        if more is not None:
            LOG.warning("access denied by hosts.allow/hosts.deny: %s%s", client, more)
        return False

    def _check_tables(self) -> None:
        """Lint each table once per change (libwrap re-reads them on every check)."""
        for path in (self.allow_table, self.deny_table):
            try:
                st = os.stat(path)
                key: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                key = None
            if path in self._linted and self._linted[path] == key:
                continue
            self._linted[path] = key
            for problem in lint_table(path):
                level = logging.ERROR if problem.breaks_table else logging.WARNING
                LOG.log(level, "access control: %s", problem)


def client_name(addr: str) -> str:
    """Reverse-DNS name of ``addr``, forward-confirmed as libwrap does for ``tcpd``.

    ``unknown`` when there is no name; ``paranoid`` when the name does not resolve
    back to ``addr``. Blocks for as long as the resolver does.
    """
    try:
        name = socket.gethostbyaddr(addr)[0]
    except (OSError, UnicodeError):
        return UNKNOWN
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        infos = []
    if any(presentable_address(str(info[4][0])) == addr for info in infos):
        return name
    LOG.warning("access control: host name/address mismatch: %s is %s, but not back", addr, name)
    return PARANOID


def lint_table(path: str) -> list[TableProblem]:
    """Lines of a hosts.allow/hosts.deny that libwrap ignores or that always deny.

    Mirrors libwrap's reader (``xgets``: ``\\`` joins lines; a logical line needs a
    final newline and a ``:`` between daemons and clients). A missing file is an
    empty table for libwrap, so it is no problem.
    """
    try:
        with open(path, "rb") as fp:
            data = fp.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        why = "libwrap ignores an unreadable hosts.allow and denies all for a hosts.deny"
        return [TableProblem(path, 0, f"cannot read ({exc.strerror}); {why}", True)]
    problems: list[TableProblem] = []
    text = data.decode("latin-1")
    raw_lines = text.split("\n")
    logical = ""
    start = 1
    continued = False
    for number, raw in enumerate(raw_lines, start=1):
        last = number == len(raw_lines)
        if last and raw == "":
            break
        if not continued:
            start = number
        continued = raw.endswith("\\") and not last
        if continued:
            logical += raw[:-1]
            continue
        logical += raw
        line, logical = logical, ""
        if last:
            # Even blanks or a comment without newline break the table for libwrap.
            problems.append(
                TableProblem(path, start, f"no newline at end of file; {_BROKEN}", True)
            )
            break
        if len(line) >= _BUFLEN - 1:
            problems.append(TableProblem(path, start, f"line too long; {_BROKEN}", True))
            break
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        clients = _split_at(line, ":")
        if clients is None:
            problems.append(
                TableProblem(path, start, "missing ':' separator; libwrap ignores this line")
            )
            continue
        options = _split_at(clients, ":")
        if options is None:
            continue
        problems += _lint_options(path, start, _option_fields(options))
    return problems


def _lint_options(path: str, line: int, options: list[str]) -> list[TableProblem]:
    problems = []
    for option in options:
        name = option.strip().split("=", 1)[0].split(None, 1)[0] if option.strip() else ""
        lowered = name.lower()
        if lowered not in _KNOWN_OPTIONS:
            problems.append(
                TableProblem(path, line, f"unknown option {name!r}; a matching client is denied")
            )
        elif lowered == "twist":
            problems.append(
                TableProblem(
                    path,
                    line,
                    "'twist' is refused in wlmd's long-running supervisor; "
                    "a matching client is denied",
                )
            )
        elif lowered in _PROCESS_OPTIONS:
            problems.append(
                TableProblem(path, line, f"option {name!r} acts on the wlmd supervisor process")
            )
    return problems


def _split_at(text: str, delimiter: str) -> str | None:
    """What follows the first ``delimiter`` outside ``[...]``, as libwrap's split_at."""
    depth = 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif depth == 0 and char == delimiter:
            return text[i + 1 :]
    return None


def _option_fields(options: str) -> list[str]:
    """Split the option part at ``:`` (``\\:`` is a literal colon), as libwrap's get_field."""
    fields, current, i = [], "", 0
    while i < len(options):
        if options[i] == "\\" and options[i + 1 : i + 2] == ":":
            current += ":"
            i += 2
            continue
        if options[i] == ":":
            fields.append(current)
            current = ""
        else:
            current += options[i]
        i += 1
    if current or fields:
        fields.append(current)
    return [f for n, f in enumerate(fields) if f.strip() or n < len(fields) - 1]


def _c_string(pointer: ctypes.c_void_p) -> str:
    return "" if pointer.value is None else os.fsdecode(ctypes.string_at(pointer.value))


def _keep_alive(path: str) -> ctypes.Array[ctypes.c_char]:
    if path not in _KEEP_ALIVE:
        _KEEP_ALIVE[path] = ctypes.create_string_buffer(os.fsencode(path))
    return _KEEP_ALIVE[path]


def _openlog_once(ident: str) -> None:
    """Make libwrap's syslog messages say ``wlmd[pid]`` in the daemon facility."""
    global _SYSLOG_IDENT
    if _SYSLOG_IDENT is not None:
        return
    _SYSLOG_IDENT = ctypes.create_string_buffer(ident.encode())
    libc = ctypes.CDLL(None)
    libc.openlog.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    libc.openlog.restype = None
    libc.openlog(ctypes.cast(_SYSLOG_IDENT, ctypes.c_char_p), _LOG_PID, _LOG_DAEMON)
