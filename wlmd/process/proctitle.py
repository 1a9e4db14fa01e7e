"""Process titles, so ``ps`` tells an operator what each wlmd process is doing."""

from __future__ import annotations

from collections.abc import Callable

_setproctitle: Callable[[str], None] | None
try:
    from setproctitle import setproctitle as _setproctitle
except ImportError:  # pragma: no cover - setproctitle is a declared dependency
    _setproctitle = None


def set_title(what: str) -> None:
    """Show ``wlmd: <what>`` in ps/top (a no-op without setproctitle)."""
    if _setproctitle is not None:
        _setproctitle(f"wlmd: {what}")
