"""The hooks of a catalogue part that keeps nothing in the supervisor's memory.

UPS, MPPS, the REST API and the HL7 listener keep their state in a database
or in the worklist files, not in the snapshot the supervisor hands to its
workers: most of :class:`wlmd.process.hooks.ServiceData`'s hooks do nothing
for them. They inherit these defaults and override what they need (preload,
helpers, in_child to close a listening socket).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class QuietPart:
    """No descriptors to watch, nothing to refresh, nothing handed over across fork()."""

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Nothing to load."""

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        return []

    def descriptors(self) -> list[int]:
        return []

    def wait_time(self, wait: float) -> float:
        return wait

    def refresh_due(self, ready: Sequence[object]) -> bool:
        return False

    def refresh(self) -> bool:
        """Nothing kept in memory: every operation reads the database or the files."""
        return False

    def before_fork(self) -> None:
        return None

    def in_parent(self, for_child: object) -> None:
        """Nothing to hand over."""

    def in_child(self, for_child: object) -> None:
        """The child opens what it needs on first use."""
