"""The DICOM services wlmd offers, each a :class:`wlmd.association.dimse.Service`.

:mod:`wlmd.services.echo` (Verification, PS3.4 A) and :mod:`wlmd.services.mwl`
(Modality Worklist C-FIND, PS3.4 K) plug into the association layer the same
way: abstract syntaxes to offer, and a handler per DIMSE command. A UPS or
MPPS service is one more module of the same shape.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from wlmd.proctitle import set_title


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

    def title(self, doing: str) -> None:
        """The worker's process title (ps): who it serves and what it is doing."""
        set_title(f"worker {self.peer} {self.calling} -> {self.called}: {doing}")
