"""The man pages: wlmd(8), wlmd.conf(5) and wlmctl(1) render cleanly and document every option.

Rendering
    Each page is formatted by man-db's ``man -l`` with all groff warnings on
    (``--warnings=w``), the way lintian checks Debian man pages: exit status 0 and
    nothing at all on stderr. ``test_warnings_are_detected`` proves on a broken page
    that this check can fail.

Completeness
    The option list comes from the actual ``python -m wlmd --help`` output (cross-
    checked against ``wlmd.settings.options``, so the help parser cannot silently miss rows).
    wlmd(8) must have a tag line for every short and long spelling in OPTIONS, and no
    tag for an option wlmd does not have; wlmd.conf(5) must list every long option
    that takes a value or is a switch as a ``name = ...`` setting under SETTINGS; the
    conformance statement must list exactly the matching and return keys of
    ``wlmd.worklist.keys``. wlmctl(1) must have a tag line in OPTIONS for every option
    of wlmctl's own parser and one in each command's ``.SS "wlmctl COMMAND"`` of
    COMMANDS for every other option of that command's parser (read from
    ``wlmd.ctl.main.build_parser``, the parser ``wlmctl --help`` prints). Adding an
    option (or a key) without documenting it fails.

Pages are rendered with ``-E ascii`` for the text checks, so ``\\-`` and ``-`` both come
out as ``-``; hyphenation and justification are off so option names stay whole.

Policy when ``man``/``groff`` are missing (Debian packages ``man-db`` and
``groff-base``): with ``CI=true`` the tests fail, elsewhere they are skipped.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from pydicom.datadict import keyword_for_tag

from wlmd import __version__
from wlmd.ctl import main as ctl
from wlmd.ctl.main import build_parser as wlmctl_parser
from wlmd.settings.options import BY_SPELLING, OPTIONS
from wlmd.worklist import keys

REPO_ROOT = Path(__file__).resolve().parents[2]
WLMD_8 = REPO_ROOT / "man" / "wlmd.8"
WLMD_CONF_5 = REPO_ROOT / "man" / "wlmd.conf.5"
WLMCTL_1 = REPO_ROOT / "man" / "wlmctl.1"
PAGES = [WLMD_8, WLMD_CONF_5, WLMCTL_1]

#: Long options that make wlmd do something (or name the file itself): no setting.
NOT_SETTINGS = frozenset({"--help", "--version", "--arguments", "--config"})

#: Where the help text starts in ``wlmd --help`` (DCMTK layout, see wlmd.cli).
HELP_COLUMN = 33
#: Indentation of .TP tags and .SH text in man's output; .SS headings get 3.
TAG_INDENT = 7
#: Indentation of a .TP paragraph.
BODY_INDENT = 14
#: What an option spelling looks like: -dfp, +x=, --data-files-path.
OPTION_WORD = re.compile(r"[-+]{1,2}[A-Za-z0-9=][A-Za-z0-9=-]*")
TIMEOUT = 60


# --- running man and wlmd -------------------------------------------------------------


def require_man() -> None:
    """Skip (or, with CI=true, fail) when man-db or groff is not installed."""
    missing = [tool for tool in ("man", "groff") if shutil.which(tool) is None]
    if missing:
        message = (
            f"{' and '.join(missing)} not installed (Debian: apt-get install man-db groff-base)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _man_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAN", "GROFF"))}
    # MANROFFSEQ="": no preprocessors from the page's first line, as lintian runs it.
    env.update(LC_ALL="C.UTF-8", MANWIDTH="80", MANROFFSEQ="")
    return env


def run_man(page: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["man", "--warnings=w", "--nh", "--nj", *options, "-l", str(page)],
        capture_output=True,
        text=True,
        env=_man_env(),
        timeout=TIMEOUT,
        check=False,
    )


def groff_warnings(page: Path) -> tuple[int, str]:
    """Exit status and stderr of formatting ``page`` (UTF-8 device, output discarded)."""
    result = run_man(page, "-E", "UTF-8", "-Tutf8", "-Z")
    return result.returncode, result.stderr


@cache
def rendered(page: Path) -> str:
    """The page as plain ASCII text (no overstrikes, no colour, no hyphenation)."""
    require_man()
    result = run_man(page, "-E", "ascii")
    assert result.returncode == 0, f"man -l {page} failed:\n{result.stderr}"
    text = re.sub(r".\x08", "", result.stdout)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    # Should a UTF-8 rendering ever slip through: hyphen and minus are '-'.
    return text.replace("\u2010", "-").replace("\u2212", "-")


@cache
def help_text() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "wlmd", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"wlmd --help failed:\n{result.stderr}"
    return result.stdout


# --- reading --help and the rendered pages ------------------------------------------


def help_spellings(text: str) -> list[tuple[str, ...]]:
    """Option spellings per row of ``--help``: ``[("-dfp", "--data-files-path"), ...]``.

    A row starts, left of the help column, with one or two words beginning with
    ``-`` or ``+`` (short spelling, long spelling); everything else is a heading,
    the parameter or help text.
    """
    rows = []
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if indent >= HELP_COLUMN or not line.lstrip().startswith(("-", "+")):
            continue
        spellings: list[str] = []
        for word in line.split():
            if not word.startswith(("-", "+")) or len(spellings) == 2:
                break
            spellings.append(word)
        rows.append(tuple(spellings))
    return rows


def section(text: str, heading: str) -> str:
    """The body of a ``.SH`` section (headings are the unindented lines)."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next(
        (i for i in range(start, len(lines)) if lines[i][:1].strip()),
        len(lines),
    )
    return "\n".join(lines[start:end])


def subsection(text: str, heading: str) -> str:
    """The body of a ``.SS`` subsection (headings are indented by 3)."""
    lines = text.splitlines()
    start = lines.index("   " + heading) + 1
    end = next(
        (i for i in range(start, len(lines)) if re.match(r"^ {3}\S", lines[i])),
        len(lines),
    )
    return "\n".join(lines[start:end])


def documented_options(text: str) -> set[str]:
    """Spellings at the start of the tag lines of OPTIONS: ``-dfp, --data-files-path path``."""
    return tag_options(section(text, "OPTIONS"))


def tag_options(body: str) -> set[str]:
    """Spellings at the start of the ``.TP`` tag lines of a section or subsection body.

    A ``.TP`` tag is at indent 7 with its paragraph at indent 14, on the next line or,
    for a tag shorter than the indent (``--fork``), on the same line; prose lines of
    the section are at indent 7 and followed by more of the same.
    """
    lines = body.splitlines()
    found: set[str] = set()
    for number, line in enumerate(lines):
        if not re.match(rf"^ {{{TAG_INDENT}}}[-+]", line):
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        body_below = re.match(rf"^ {{{BODY_INDENT}}}\S", following)
        beside = re.match(rf"^ {{{TAG_INDENT}}}\S+ +(?=\S)", line)
        body_beside = beside is not None and beside.end() == BODY_INDENT
        if not (body_below or body_beside):
            continue
        for word in line.split():
            word = word.rstrip(",")
            if not OPTION_WORD.fullmatch(word):
                break
            found.add(word)
    return found


def documented_settings(text: str) -> dict[str, str]:
    """``name = value`` tag lines of SETTINGS: ``{"max-pdu": "bytes", "refuse": "yes|no"}``."""
    settings: dict[str, str] = {}
    for line in section(text, "SETTINGS").splitlines():
        match = re.match(rf"^ {{{TAG_INDENT}}}([a-z0-9][a-z0-9-]*) = (\S+)", line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def listed_keys(text: str) -> set[tuple[int, str]]:
    """Lines ``(gggg,eeee) Keyword`` (nested: ``> (gggg,eeee) Keyword``), as (tag, keyword)."""
    return {
        (int(group + element, 16), keyword)
        for group, element, keyword in re.findall(
            r"^ *(?:> )*\(([0-9A-F]{4}),([0-9A-F]{4})\) ([A-Za-z]+) *$", text, re.MULTILINE
        )
    }


def parser_options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def wlmctl_commands() -> dict[str, argparse.ArgumentParser]:
    """``wlmctl``'s subcommand parsers by name."""
    parser = wlmctl_parser()
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(found) == 1, "wlmctl has no (or several) subcommand groups"
    return dict(found[0].choices)


def missing_from(documented: set[str], expected: set[str]) -> list[str]:
    return sorted(expected - documented)


# --- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_formats_without_warnings(page: Path) -> None:
    require_man()
    status, warnings = groff_warnings(page)
    assert status == 0
    assert warnings == "", f"man/groff warnings for {page.name}:\n{warnings}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_renders_as_ascii_without_warnings(page: Path) -> None:
    require_man()
    result = run_man(page, "-E", "ascii")
    assert result.returncode == 0
    assert result.stderr == "", f"warnings rendering {page.name}:\n{result.stderr}"
    assert "NAME" in result.stdout.splitlines()


def test_warnings_are_detected(tmp_path: Path) -> None:
    """The warning check is not blind: an unknown macro and a bad escape are reported."""
    require_man()
    broken = tmp_path / "broken.8"
    broken.write_text(".TH BROKEN 8\n.SH NAME\nbroken \\- test\n.XYZ macro\nbad \\q escape\n")
    _status, warnings = groff_warnings(broken)
    assert "XYZ" in warnings
    assert "escape" in warnings


def test_help_parser_finds_every_option() -> None:
    """The --help reader sees exactly the option table (else the next tests prove nothing)."""
    parsed = {s for row in help_spellings(help_text()) for s in row}
    assert parsed == set(BY_SPELLING)


def test_wlmd_8_documents_every_option() -> None:
    expected = {s for row in help_spellings(help_text()) for s in row}
    documented = documented_options(rendered(WLMD_8))
    missing = missing_from(documented, expected)
    assert not missing, f"options of wlmd --help without a tag in wlmd(8) OPTIONS: {missing}"
    unknown = sorted(documented - expected)
    assert not unknown, f"wlmd(8) OPTIONS documents options wlmd does not have: {unknown}"


def test_wlmd_conf_5_documents_every_setting() -> None:
    longs = {row[-1] for row in help_spellings(help_text())}
    expected = {name[2:] for name in longs - NOT_SETTINGS} | {"port"}
    documented = documented_settings(rendered(WLMD_CONF_5))
    missing = missing_from(set(documented), expected)
    assert not missing, f"options without a setting in wlmd.conf(5) SETTINGS: {missing}"
    unknown = sorted(set(documented) - expected)
    assert not unknown, f"wlmd.conf(5) SETTINGS documents unknown settings: {unknown}"


def test_wlmd_conf_5_shows_how_each_setting_is_set() -> None:
    """Switches read ``yes|no``, or ``yes`` alone where ``no`` is an error; values not."""
    group_size: dict[str, int] = {}
    for option in OPTIONS:
        if option.field is not None:
            group_size[option.field] = group_size.get(option.field, 0) + 1
    documented = documented_settings(rendered(WLMD_CONF_5))
    wrong = []
    for option in OPTIONS:
        name = option.long[2:]
        if option.long in NOT_SETTINGS or name not in documented:
            continue
        shown = documented[name]
        if option.param is not None:
            ok = shown not in ("yes", "yes|no")
        elif group_size[option.field or ""] > 2:
            ok = shown == "yes"
        else:
            ok = shown == "yes|no"
        if not ok:
            wrong.append(f"{name} = {shown}")
    assert not wrong, f"settings shown with the wrong kind of value: {wrong}"


def test_wlmd_8_lists_the_matching_and_return_keys() -> None:
    conformance = section(rendered(WLMD_8), "CONFORMANCE STATEMENT")

    def named(tags: frozenset[int] | set[int]) -> set[tuple[int, str]]:
        return {(t, keyword_for_tag(t)) for t in tags}

    matching = named(keys.ROOT_MATCHING_TAGS | keys.SPS_MATCHING_TAGS)
    returned = named(set(keys.ROOT_RETURN_TAGS).union(*keys.NESTED_RETURN_TAGS.values()))
    listed_matching = listed_keys(subsection(conformance, "Matching keys"))
    listed_return = listed_keys(subsection(conformance, "Return keys"))
    assert listed_matching == matching, (
        f"matching keys: missing {sorted(matching - listed_matching)}, "
        f"not matching keys {sorted(listed_matching - matching)}"
    )
    assert listed_return | listed_matching == returned, (
        f"return keys: missing {sorted(returned - listed_return - listed_matching)}, "
        f"not return keys {sorted(listed_return - returned)}"
    )


def test_wlmctl_1_documents_every_option() -> None:
    """OPTIONS: wlmctl's own options (also accepted after a command: the parent parser)."""
    expected = parser_options(wlmctl_parser())
    documented = documented_options(rendered(WLMCTL_1))
    assert expected >= {"--help", "--data-files-path", "--area", "--lock-timeout"}
    missing = missing_from(documented, expected)
    assert not missing, f"options of wlmctl --help without a tag in wlmctl(1) OPTIONS: {missing}"
    unknown = sorted(documented - expected)
    assert not unknown, f"wlmctl(1) OPTIONS documents options wlmctl does not have: {unknown}"


@pytest.mark.parametrize("command", sorted(wlmctl_commands()))
def test_wlmctl_1_documents_every_command_option(command: str) -> None:
    """COMMANDS has ``wlmctl COMMAND`` with a tag for each option of its --help
    (less those of OPTIONS)."""
    common = parser_options(wlmctl_parser())
    expected = parser_options(wlmctl_commands()[command]) - common
    body = subsection(section(rendered(WLMCTL_1), "COMMANDS"), f"wlmctl {command}")
    documented = tag_options(body)
    missing = missing_from(documented, expected)
    assert not missing, f"options of wlmctl {command} --help without a tag: {missing}"
    unknown = sorted(documented - expected)
    assert not unknown, f"wlmctl(1) documents options wlmctl {command} does not have: {unknown}"


def test_wlmctl_1_describes_every_command_once() -> None:
    commands = section(rendered(WLMCTL_1), "COMMANDS")
    headings = re.findall(r"^ {3}wlmctl (\S+)$", commands, re.MULTILINE)
    assert headings == list(wlmctl_commands()), f"COMMANDS subsections: {headings}"


def test_wlmctl_1_lists_the_exit_statuses() -> None:
    statuses = section(rendered(WLMCTL_1), "EXIT STATUS")
    listed = re.findall(rf"^ {{{TAG_INDENT}}}(\d+) ", statuses, re.MULTILINE)
    expected = [str(s) for s in (ctl.OK, ctl.FAILED, ctl.USAGE, ctl.UNAVAILABLE)]
    assert listed[:4] == expected, f"EXIT STATUS tags: {listed}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_names_the_current_version(page: Path) -> None:
    title = next(line for line in page.read_text().splitlines() if line.startswith(".TH "))
    assert f'"wlmd {__version__}"' in title, f"{page.name}: {title}"


def test_missing_options_are_reported() -> None:
    """The comparison itself: an undocumented option is named (guards the helpers)."""
    text = (
        "OPTIONS\n"
        "       Prose about options such as -s/--fork, -q, -v and\n"
        "       -d, which is not a tag.\n\n"
        "       -q, --quiet\n"
        "              quiet\n\n"
        "       --fork Fork one worker per association.\n\n"
        "EXIT STATUS\n"
    )
    assert documented_options(text) == {"-q", "--quiet", "--fork"}
    assert missing_from(documented_options(text), {"-q", "--quiet", "--fork", "-v"}) == ["-v"]
