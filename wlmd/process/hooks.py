"""What the supervisor knows of the services: a small hook protocol, nothing else.

The supervisor is a process manager. It must keep each service's data warm
across ``fork()`` (the MWL snapshot; a UPS state store next), but it must not
know what that data is: it calls these hooks at fixed points of its loop, and
hands :attr:`ServiceData.router` to each worker unopened. The one
implementation is :class:`wlmd.services.catalogue.Catalogue`; a new service
adds its part there, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from wlmd.services.routing import Router


class ServiceData(Protocol):
    """The hooks, in the order the supervisor calls them."""

    #: called AE title → services, passed to every worker (and used inline with -s)
    router: Router

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Load what workers should start with, before READY=1 and the first fork."""

    def helpers(self) -> Sequence[tuple[str, Callable[[], int]]]:
        """Processes to run beside the workers (the UPS event sender): a name for logs and
        ps, and the function the child runs (its result is the exit status). Started
        after :meth:`preload`, restarted when they die (:mod:`wlmd.process.helpers`)."""
        ...

    def descriptors(self) -> list[int]:
        """Descriptors to keep when daemonising and to watch in the select loop."""
        ...

    def wait_time(self, wait: float) -> float:
        """``wait`` shortened to when a hook wants to run next (a delayed refresh)."""
        ...

    def refresh_due(self, ready: Sequence[object]) -> bool:
        """Whether :meth:`refresh` should run, given select's readable descriptors."""
        ...

    def refresh(self) -> bool:
        """Bring the kept data up to date (new workers start with it); True if it changed.

        Only a change makes the idle spare workers stale (each retires after one
        association and is forked again: ~120 ms of the supervisor per fork at
        2.7 GB, 1,000,000 entries); an event that changed nothing must not.
        """
        ...

    def background_job(self) -> tuple[str, Callable[[], int]] | None:
        """A one-shot process to start now (writing the MWL snapshot cache), as
        :meth:`helpers` but not restarted; asked only while no such job runs."""
        ...

    def before_fork(self) -> object:
        """What the next child needs of its own; passed back to in_parent / in_child."""
        ...

    def in_parent(self, for_child: object) -> None:
        """After fork() (or a failed one), in the supervisor."""

    def in_child(self, for_child: object) -> None:
        """After fork(), in the child, before it serves."""
