"""TCP-wrappers access control (``+ac``): wlmd.process.access against the real libwrap.so.0.

Every test points libwrap at its own hosts.allow/hosts.deny in ``tmp_path``, so
the machine's /etc files never matter. Decisions come from libwrap itself; the
tests pin the semantics wlmd relies on (hosts_access(5)) and the traps of using
libwrap inside a long-running process.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from wlmd.process import access
from wlmd.process.access import AccessControl, AccessControlUnavailable

REPO_ROOT = Path(__file__).resolve().parents[3]

Factory = Callable[..., AccessControl]


def _libwrap_missing() -> bool:
    try:
        AccessControl(allow_table="/nonexistent", deny_table="/nonexistent")
    except AccessControlUnavailable:
        return True
    return False


if _libwrap_missing():
    message = "libwrap.so.0 not installed (Debian package libwrap0)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI=true, so it is required", pytrace=False)
    pytest.skip(message, allow_module_level=True)


@pytest.fixture
def tables(tmp_path: Path) -> Factory:
    """Write hosts.allow/hosts.deny into tmp_path and return an AccessControl for them."""

    def make(allow: str = "", deny: str = "", **kwargs: object) -> AccessControl:
        allow_path, deny_path = tmp_path / "hosts.allow", tmp_path / "hosts.deny"
        allow_path.write_text(allow)
        deny_path.write_text(deny)
        kwargs.setdefault("host_lookup", False)
        return AccessControl(
            allow_table=str(allow_path),
            deny_table=str(deny_path),
            **kwargs,  # type: ignore[arg-type]
        )

    return make


DENY_ALL = "ALL: ALL\n"


@pytest.mark.parametrize(
    ("allow", "deny", "peer", "expected"),
    [
        # no rule matches: hosts_access(5) grants
        ("", "", "192.0.2.1", True),
        ("wlmd: 127.0.0.1\n", DENY_ALL, "127.0.0.1", True),
        ("wlmd: 127.0.0.1\n", DENY_ALL, "127.0.0.2", False),
        # deny only
        ("", DENY_ALL, "127.0.0.1", False),
        ("", "wlmd: 192.0.2.7\n", "192.0.2.7", False),
        ("", "wlmd: 192.0.2.7\n", "192.0.2.8", True),
        # EXCEPT
        ("wlmd: 127.0.0.0/255.0.0.0 EXCEPT 127.0.0.2\n", DENY_ALL, "127.0.0.3", True),
        ("wlmd: 127.0.0.0/255.0.0.0 EXCEPT 127.0.0.2\n", DENY_ALL, "127.0.0.2", False),
        # network/mask, CIDR prefix, trailing-dot prefix
        ("wlmd: 10.1.0.0/255.255.0.0\n", DENY_ALL, "10.1.200.3", True),
        ("wlmd: 10.1.0.0/255.255.0.0\n", DENY_ALL, "10.2.0.1", False),
        ("wlmd: 10.1.0.0/16\n", DENY_ALL, "10.1.0.9", True),
        ("wlmd: 10.1.\n", DENY_ALL, "10.1.4.4", True),
        # ALL as the daemon list
        ("ALL: 192.168.1.5\n", DENY_ALL, "192.168.1.5", True),
        # a rule for another daemon does not apply to wlmd
        ("wlmscpfs: 127.0.0.1\n", DENY_ALL, "127.0.0.1", False),
        ("sshd: ALL\n", "", "127.0.0.1", True),
        ("", "sshd: ALL\n", "127.0.0.1", True),
        # IPv6 in brackets; IPv4-mapped IPv6 is matched as IPv4
        ("wlmd: [::1]\n", DENY_ALL, "::1", True),
        ("wlmd: 127.0.0.1\n", DENY_ALL, "::ffff:127.0.0.1", True),
        ("", "wlmd: 203.0.113.9\n", "::ffff:203.0.113.9", False),
    ],
)
def test_hosts_access_semantics(
    tables: Factory, allow: str, deny: str, peer: str, expected: bool
) -> None:
    assert tables(allow, deny).allows(peer) is expected


def test_daemon_name_selects_the_rules(tables: Factory) -> None:
    ac = tables("wlmscpfs: 127.0.0.1\n", DENY_ALL, daemon_name="wlmscpfs")
    assert ac.allows("127.0.0.1")


def test_denial_is_logged_with_the_address(
    tables: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    ac = tables("", DENY_ALL)
    with caplog.at_level(logging.DEBUG, logger="wlmd.access"):
        assert not ac.allows("::ffff:198.51.100.4")
    denials = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in denials] == [
        "access denied by hosts.allow/hosts.deny: 198.51.100.4"
    ]


def test_grant_is_logged_at_debug(tables: Factory, caplog: pytest.LogCaptureFixture) -> None:
    ac = tables("wlmd: 127.0.0.1\n", DENY_ALL)
    with caplog.at_level(logging.DEBUG, logger="wlmd.access"):
        assert ac.allows("127.0.0.1")
    assert "access granted by hosts.allow/hosts.deny: 127.0.0.1" in caplog.messages


# --------------------------------------------------------------- malformed tables


def test_line_without_separator_is_ignored_and_reported(
    tables: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    # "wlmd 127.0.0.1" has no ':' -> libwrap skips it, so ALL: ALL in deny applies.
    with caplog.at_level(logging.WARNING, logger="wlmd.access"):
        ac = tables("# comment\n\nwlmd 127.0.0.1\n", DENY_ALL)
        assert not ac.allows("127.0.0.1")
    assert any("hosts.allow line 3: missing ':' separator" in m for m in caplog.messages)
    assert "access denied by hosts.allow/hosts.deny: 127.0.0.1" in caplog.messages


def test_hosts_deny_without_final_newline_denies_everyone(
    tables: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """Debian's libwrap treats a last line without newline as an error in the table.

    In hosts.deny that fails closed: every client is denied, not just 192.0.2.1.
    """
    with caplog.at_level(logging.WARNING, logger="wlmd.access"):
        ac = tables("", "wlmd: 192.0.2.1")
        assert not ac.allows("127.0.0.1")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("hosts.deny line 1: no newline at end of file" in m for m in errors), errors


def test_hosts_allow_without_final_newline_grants_nothing_there(tables: Factory) -> None:
    ac = tables("wlmd: 127.0.0.2\nwlmd: 127.0.0.1", DENY_ALL)
    assert ac.allows("127.0.0.2")  # the lines before still count
    assert not ac.allows("127.0.0.1")


def test_too_long_line_breaks_the_table(tables: Factory) -> None:
    ac = tables("", "wlmd: 192.0.2.1 " + "192.0.2.2 " * 250 + "\n")
    assert not ac.allows("127.0.0.1")


def test_unknown_option_denies_a_matching_client(
    tables: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wlmd.access"):
        ac = tables("wlmd: 127.0.0.1: bogus\n")
        assert not ac.allows("127.0.0.1")
        assert ac.allows("127.0.0.2")  # the rule does not match: no rule, granted
    assert any("unknown option 'bogus'" in m for m in caplog.messages)


def test_lint_is_logged_once_per_table_change(
    tables: Factory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wlmd.access"):
        ac = tables("wlmd 127.0.0.1\n")
        ac.allows("127.0.0.1")
        ac.allows("127.0.0.1")
        assert sum("missing ':'" in m for m in caplog.messages) == 1
        (tmp_path / "hosts.allow").write_text("wlmd 127.0.0.1\nwlmd 127.0.0.9\n")
        ac.allows("127.0.0.1")
    assert sum("missing ':'" in m for m in caplog.messages) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wlmd: 127.0.0.1\n", []),
        ("# only a comment\n", []),
        ("# a comment", ["line 1: no newline at end of file"]),
        ("wlmd: 1.2.3.4\n  ", ["line 2: no newline at end of file"]),
        ("wlmd: " + "x " * 1100 + "\nwlmd 1.2.3.4\n", ["line 1: line too long"]),
        ("wlmd: [::1]: allow\n", []),
        ("wlmd: 10.0.0.0/8 \\\n  EXCEPT 10.0.0.1\n", []),
        ("wlmd: ALL: spawn (echo %a\\: hello) &\n", []),
        ("wlmd 1.2.3.4\n", ["line 1: missing ':' separator"]),
        ("\n\\\nwlmd 1.2.3.4\n", ["line 2: missing ':' separator"]),
        ("wlmd: 1.2.3.4", ["line 1: no newline at end of file"]),
        ("wlmd: ALL: twist /bin/echo no\n", ["line 1: 'twist' is refused"]),
        ("wlmd: ALL: nice 5\n", ["line 1: option 'nice' acts on the wlmd supervisor"]),
        ("wlmd: ALL: severity auth.info: allowed\n", ["line 1: unknown option 'allowed'"]),
    ],
)
def test_lint_table(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "hosts.allow"
    path.write_text(text)
    problems = [str(p) for p in access.lint_table(str(path))]
    assert len(problems) == len(expected), problems
    for problem, wanted in zip(problems, expected, strict=True):
        assert f"{path} {wanted}" in problem


def test_lint_missing_table_is_empty(tmp_path: Path) -> None:
    assert access.lint_table(str(tmp_path / "absent")) == []


# --------------------------------------------------------------- options with side effects


def test_twist_does_not_replace_the_process(tmp_path: Path) -> None:
    """Without ``resident = 1``, libwrap would exec /bin/sh in the caller on the first check.

    Run in a subprocess: if the trap were not handled, the test process would be gone.
    """
    marker = tmp_path / "twisted"
    (tmp_path / "hosts.allow").write_text(f"wlmd: 127.0.0.1: twist /bin/touch {marker}\n")
    script = textwrap.dedent(
        f"""
        from wlmd.process.access import AccessControl
        ac = AccessControl(allow_table={str(tmp_path / "hosts.allow")!r},
                           deny_table={str(tmp_path / "hosts.deny")!r}, host_lookup=False)
        print("decision", ac.allows("127.0.0.1"), ac.allows("127.0.0.1"), flush=True)
        print("survived", flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(REPO_ROOT),
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # libwrap refuses twist in a resident process: a matching client is denied
    assert "decision False False" in proc.stdout, proc.stdout + proc.stderr
    assert "survived" in proc.stdout
    assert not marker.exists()


def test_spawn_runs_and_grants(tables: Factory, tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    ac = tables(f"wlmd: 127.0.0.1: spawn /bin/touch {marker}\n", DENY_ALL)
    assert ac.allows("127.0.0.1")
    assert marker.exists()  # libwrap waits for the spawned shell


def test_umask_option_does_not_stick(tables: Factory) -> None:
    before = os.umask(0o022)
    try:
        ac = tables("wlmd: 127.0.0.1: umask 077\n")
        assert ac.allows("127.0.0.1")
        after = os.umask(0o022)
        assert after == 0o022
    finally:
        os.umask(before)


def test_instances_keep_their_own_tables(tmp_path: Path) -> None:
    (tmp_path / "open.deny").write_text("")
    (tmp_path / "closed.deny").write_text(DENY_ALL)
    none = str(tmp_path / "none")
    closed = AccessControl(allow_table=none, deny_table=str(tmp_path / "closed.deny"))
    opened = AccessControl(allow_table=none, deny_table=str(tmp_path / "open.deny"))
    assert not closed.allows("127.0.0.1")
    assert opened.allows("127.0.0.1")
    assert not closed.allows("127.0.0.1")


# --------------------------------------------------------------- table paths, library


def test_environment_overrides_default_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "deny").write_text(DENY_ALL)
    monkeypatch.setenv("WLMD_HOSTS_ALLOW", str(tmp_path / "allow"))
    monkeypatch.setenv("WLMD_HOSTS_DENY", str(tmp_path / "deny"))
    ac = AccessControl(host_lookup=False)
    assert (ac.allow_table, ac.deny_table) == (str(tmp_path / "allow"), str(tmp_path / "deny"))
    assert not ac.allows("127.0.0.1")


def test_default_tables_are_libwraps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WLMD_HOSTS_ALLOW", raising=False)
    monkeypatch.delenv("WLMD_HOSTS_DENY", raising=False)
    # libwrap's compiled-in default, as long as no earlier instance re-pointed it;
    # either way the path must be a real string, not a dangling pointer.
    ac = AccessControl(host_lookup=False)
    assert ac.allow_table.endswith("hosts.allow")
    assert ac.deny_table.endswith("hosts.deny")


def test_missing_library_fails_clearly() -> None:
    with pytest.raises(AccessControlUnavailable) as info:
        AccessControl(library="libwrap-does-not-exist.so.0")
    message = str(info.value)
    assert "libwrap-does-not-exist.so.0" in message
    assert "libwrap0" in message
    assert "\n" not in message


def test_library_without_hosts_ctl_fails_clearly() -> None:
    with pytest.raises(AccessControlUnavailable):
        AccessControl(library="libc.so.6")


# --------------------------------------------------------------- addresses and names


@pytest.mark.parametrize(
    ("peer", "presented"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::FFFF:10.0.0.1", "10.0.0.1"),
        ("::1", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("2001:DB8::1", "2001:db8::1"),
    ],
)
def test_presentable_address(peer: str, presented: str) -> None:
    assert access.presentable_address(peer) == presented


def _fake_dns(
    monkeypatch: pytest.MonkeyPatch, ptr: dict[str, str], forward: dict[str, str]
) -> list[str]:
    calls: list[str] = []

    def gethostbyaddr(addr: str) -> tuple[str, list[str], list[str]]:
        calls.append(addr)
        if addr not in ptr:
            raise socket.herror(1, "Unknown host")
        return ptr[addr], [], [addr]

    def getaddrinfo(name: str, *_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        if name not in forward:
            raise socket.gaierror(-2, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (forward[name], 0))]

    monkeypatch.setattr(access.socket, "gethostbyaddr", gethostbyaddr)
    monkeypatch.setattr(access.socket, "getaddrinfo", getaddrinfo)
    return calls


def test_name_rule_with_forward_confirmed_name(
    tables: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dns(monkeypatch, {"192.0.2.10": "ris.example.org"}, {"ris.example.org": "192.0.2.10"})
    ac = tables("wlmd: ris.example.org\n", DENY_ALL, host_lookup=True)
    assert ac.allows("192.0.2.10")


def test_forged_ptr_is_paranoid(
    tables: Factory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the attacker's PTR claims a trusted name, which resolves elsewhere
    _fake_dns(monkeypatch, {"203.0.113.66": "ris.example.org"}, {"ris.example.org": "192.0.2.10"})
    ac = tables("wlmd: ris.example.org\n", DENY_ALL, host_lookup=True)
    with caplog.at_level(logging.WARNING, logger="wlmd.access"):
        assert not ac.allows("203.0.113.66")
    assert "access denied by hosts.allow/hosts.deny: 203.0.113.66 (paranoid)" in caplog.messages
    assert access.client_name("203.0.113.66") == access.PARANOID


def test_no_reverse_name_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {}, {})
    assert access.client_name("192.0.2.99") == access.UNKNOWN


def test_disabled_host_lookup_never_resolves(
    tables: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_dns(
        monkeypatch, {"192.0.2.10": "ris.example.org"}, {"ris.example.org": "192.0.2.10"}
    )
    ac = tables("wlmd: ris.example.org\n", DENY_ALL, host_lookup=False)
    assert not ac.allows("192.0.2.10")  # -dhl: only address rules can match
    assert calls == []
