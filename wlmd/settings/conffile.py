"""wlmd.conf(5): the options of the command line, one per line, in a file.

The file is another way to write the command line, so it is read through the
same table (:mod:`wlmd.settings.options`) as the command line: a setting's name is the
long option name without ``--`` (plus ``port``), and every value goes through
the option's own converter. What the file says is turned into the same
``(Option, raw value)`` occurrences :mod:`wlmd.cli` collects from ``argv``;
the command line is then laid over it, group by group, so a command-line
option always wins.

The format is deliberately strict, because the file is edited by hand on a
server that must not start with a setting silently ignored: an unknown name,
a bad value, a name given twice or two members of one group (``fork`` and
``single-process``) stop start-up with ``FILE:LINE: reason``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wlmd.settings.options import OPTIONS, PORT, config_defaults
from wlmd.settings.optiontypes import Option, UsageError

#: Words accepted for switches (options without a value).
TRUE_WORDS = frozenset({"yes", "true", "on", "1"})
FALSE_WORDS = frozenset({"no", "false", "off", "0"})

#: Options that make no sense in a file (actions, and the file itself).
NOT_IN_FILE = frozenset({"--help", "--version", "--arguments", "--config"})


class ConfigFileError(UsageError):
    """A bad line in the configuration file; ``str()`` is ``FILE:LINE: reason``."""


@dataclass(frozen=True)
class Setting:
    """One line of the file, turned into what the command line would have said."""

    option: Option
    raw: str | None  # the option's value; None for a switch
    line: int
    name: str  # as written in the file


@dataclass(frozen=True)
class ConfigFile:
    path: str
    settings: tuple[Setting, ...]
    port: str | None  # the raw ``port = ...`` value, if any

    def occurrences(self) -> list[tuple[Option, str | None]]:
        return [(setting.option, setting.raw) for setting in self.settings]


def setting_name(option: Option) -> str:
    """The name of ``option`` in wlmd.conf: its long spelling without ``--``."""
    return option.long[2:]


BY_NAME: dict[str, Option] = {
    setting_name(option): option for option in OPTIONS if option.long not in NOT_IN_FILE
}


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _opposite(option: Option) -> Option | None:
    """The other switch of a two-way group (``-efr``/``-dfr``), if there is exactly one."""
    others = [row for row in OPTIONS if row.field == option.field and row is not option]
    if len(others) == 1 and others[0].param is None and option.param is None:
        return others[0]
    return None


def _switch(option: Option, word: str) -> Option | None:
    """The option a ``name = yes|no`` line stands for (None: nothing to set)."""
    if word in TRUE_WORDS:
        return option
    if word not in FALSE_WORDS:
        raise ValueError(f"expected yes or no for {setting_name(option)}, not {word!r}")
    opposite = _opposite(option)
    if opposite is not None:
        return opposite
    if isinstance(option.const, bool) and config_defaults().get(option.field or "") is (
        not option.const
    ):
        return None  # "refuse = no": the default, nothing to set
    group = [setting_name(row) for row in OPTIONS if row.field == option.field]
    raise ValueError(
        f"'no' is not allowed here: {setting_name(option)} is one of {', '.join(group)}; "
        "set the one you want"
    )


def parse(text: str, path: str) -> ConfigFile:
    """Read the text of a configuration file; raise :class:`ConfigFileError` on any bad line."""
    settings: list[Setting] = []
    port: str | None = None
    port_line = 0
    by_field: dict[str, Setting] = {}

    def fail(number: int, reason: str) -> ConfigFileError:
        return ConfigFileError(f"{path}:{number}: {reason}")

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, equals, rest = stripped.partition("=")
        name = name.strip()
        if not equals:
            raise fail(number, f"expected 'name = value', got {stripped!r}")
        if name.startswith("-") or name.startswith("+"):
            raise fail(number, f"write the setting without dashes: {name.lstrip('+-')!r}")
        if not rest.strip():
            raise fail(number, f'no value for {name}; write {name} = "" for an empty value')
        value = _unquote(rest.strip())
        if name == "port":
            if port is not None:
                raise fail(number, f"port given twice (also on line {port_line})")
            try:
                PORT.convert.convert(value)
            except ValueError as exc:
                raise fail(number, f"invalid value for port: {value!r} ({exc})") from None
            port, port_line = value, number
            continue
        option = BY_NAME.get(name)
        if option is None:
            if ("--" + name) in NOT_IN_FILE:
                raise fail(number, f"{name!r} cannot be used in a configuration file")
            raise fail(number, f"unknown setting {name!r}")
        try:
            if option.param is None:
                chosen = _switch(option, value.lower())
                raw = None
            else:
                chosen = option
                option.param.convert.convert(value)
                raw = value
        except ValueError as exc:
            raise fail(number, f"invalid value for {name}: {value!r} ({exc})") from None
        earlier = by_field.get(option.field or "")
        if earlier is not None:
            if earlier.name == name:
                raise fail(number, f"{name} given twice (also on line {earlier.line})")
            raise fail(number, f"{name} conflicts with {earlier.name} on line {earlier.line}")
        setting = Setting(chosen or option, raw, number, name)
        by_field[option.field or ""] = setting
        if chosen is not None:
            settings.append(setting)

    for setting in settings:
        clash = setting.option.conflicts_with
        if clash is not None and clash in by_field:
            other = by_field[clash]
            raise fail(
                setting.line,
                f"{setting.name} conflicts with {other.name} on line {other.line}",
            )
    return ConfigFile(path, tuple(settings), port)


def read(path: str) -> ConfigFile:
    """Read and check ``path``; raise :class:`ConfigFileError` (a UsageError) if unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: {exc.strerror or exc}") from None
    return parse(text, path)


def _linked_fields() -> dict[str, set[str]]:
    """Fields that one option decides together (``log-config`` excludes ``log-level``)."""
    linked: dict[str, set[str]] = {}
    for option in OPTIONS:
        if option.field is None:
            continue
        linked.setdefault(option.field, {option.field})
        if option.conflicts_with is not None:
            linked[option.field].add(option.conflicts_with)
            linked.setdefault(option.conflicts_with, {option.conflicts_with}).add(option.field)
    return linked


def merge(
    from_file: Sequence[tuple[Option, str | None]],
    from_command_line: Iterable[tuple[Option, str | None]],
) -> list[tuple[Option, str | None]]:
    """The file's occurrences, minus those the command line overrides, then the command line's.

    A command-line option overrides the file's setting of its group and of the
    groups it excludes: ``-v`` on the command line replaces both
    ``log-level = warn`` and ``log-config = ...`` from the file, as it would
    have been an error to give both.
    """
    command_line = list(from_command_line)
    linked = _linked_fields()
    overridden: set[str] = set()
    for option, _ in command_line:
        if option.field is not None:
            overridden |= linked.get(option.field, {option.field})
    kept = [(option, raw) for option, raw in from_file if option.field not in overridden]
    return kept + command_line


def template(skip: Iterable[str] = ()) -> str:
    """Every setting with its help and default, commented out (etc/wlmd.conf's reference part).

    Values show their default; switches show ``= yes`` (what turns them on),
    and the default switch of each group is marked "(default)", so that
    uncommenting any one line gives a valid file.

    ``skip`` names settings left out (because the file sets them above).
    """
    defaults = config_defaults()
    lines: list[str] = []
    group = None
    skipped = set(skip)
    for option in OPTIONS:
        if option.long in NOT_IN_FILE or setting_name(option) in skipped:
            continue
        heading = option.subgroup or option.group
        if heading != group:
            group = heading
            lines += [
                "",
                f"# --- {option.group}" + (f": {option.subgroup}" if option.subgroup else ""),
            ]
        name = setting_name(option)
        if option.param is None:
            is_default = defaults.get(option.field or "") == option.const
            lines.append(f"# {option.help}" + (" (default)" if is_default else ""))
            lines.append(f"#{name} = yes")
        else:
            shown = option.param.default_text
            value = defaults.get(option.field or "")
            if isinstance(value, tuple):  # a list setting (ups-ae-title): as it is written
                value = ",".join(value) or None
            if shown is None:
                shown = "" if value is None else str(value)
            lines.append(f"# {option.help}" + (f" (default: {shown})" if shown else ""))
            lines.append(f"#{name} = {'' if value is None else value}".rstrip())
    return "\n".join(lines) + "\n"


__all__ = [
    "BY_NAME",
    "ConfigFile",
    "ConfigFileError",
    "Setting",
    "merge",
    "parse",
    "read",
    "setting_name",
    "template",
]
