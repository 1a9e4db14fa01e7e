"""The one info line per association: what it reports, filled in as the association goes.

The worker creates it, the runtime and the services fill it in (calling and
called AE titles, queries, outcome), and the worker logs it when the
association ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class AssociationLog:
    """What the one info line per association reports; services count their queries here."""

    ident: str
    peer: str
    started: float = field(default_factory=time.monotonic)
    calling: str = "?"
    called: str = "?"
    queries: int = 0
    outcome: str = "closed"
    #: the association line's level: WARNING when a modality was turned away
    level: int = logging.INFO
    #: added to the outcome ("no presentation context accepted")
    note: str = ""
    #: shows a process title (the worker passes its ``set_title``; none in tests)
    show_title: Callable[[str], None] = field(default=lambda _text: None, repr=False)

    def title(self, doing: str) -> None:
        """The worker's process title (ps): who it serves and what it is doing."""
        self.show_title(f"worker {self.peer} {self.calling} -> {self.called}: {doing}")
