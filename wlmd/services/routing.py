"""Which services a called AE title offers: admission and presentation contexts follow from it.

wlmscpfs knows one rule, and wlmd keeps it without configuration: a called
AE title that names a storage area under ``--data-files-path`` offers
Modality Worklist C-FIND from that area (PS3.4 K), and any other called AE
title is rejected with "called AE title not recognized" (PS3.8 9.3.4,
reason 7). Beyond that, a called AE title can offer other services on the
same port — UPS (PS3.4 CC) for the titles configured to offer it — alone or
beside a storage area of the same name. Verification (C-ECHO) comes with
every title that offers anything, as it does in wlmscpfs.

An :class:`Offer` is decided once per association, from the A-ASSOCIATE-RQ's
called AE title, before negotiating: it decides whether the association is
admitted, which abstract syntaxes are offered in negotiation (a context for
a service this title does not offer is refused "abstract syntax not
supported", and the worker logs it), and what the rejection says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from wlmd.association.dimse import Service
from wlmd.association.report import AssociationLog
from wlmd.services.echo import echo_service
from wlmd.worklist.store import WorklistStore

#: builds a service for one association (a UPS service needs its state store and log)
ServiceFactory = Callable[[AssociationLog], Service]


@dataclass(frozen=True)
class Offer:
    """What one called AE title offers on this port."""

    called_ae: str
    #: Modality Worklist C-FIND from the storage area of that name
    worklist: bool
    #: services configured for this title beside the storage area (UPS), by name
    others: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """Whether the title offers anything (else the association is rejected)."""
        return self.worklist or bool(self.others)

    @property
    def names(self) -> tuple[str, ...]:
        """The offered services, for log lines ("verification, modality worklist")."""
        if not self.known:
            return ()
        return ("verification", *(("modality worklist",) if self.worklist else ()), *self.others)


class Router:
    """Called AE title → offered services, for the associations of one worker.

    ``titled`` maps a service name to the called AE titles that offer it and
    the factory that builds it for one association; the storage areas come
    from ``store`` (wlmscpfs's layout: a directory per called AE title).
    ``worklist`` builds the MWL service for an association.
    """

    def __init__(
        self,
        store: WorklistStore,
        worklist: ServiceFactory,
        titled: Sequence[tuple[str, Iterable[str], ServiceFactory]] = (),
    ) -> None:
        self.store = store
        self._worklist = worklist
        self._titled = [(name, frozenset(titles), factory) for name, titles, factory in titled]

    def offer(self, called_ae: str) -> Offer:
        """What ``called_ae`` offers; an area is looked up now (areas come and go)."""
        title = called_ae.rstrip(" ")
        others = tuple(name for name, titles, _ in self._titled if title in titles)
        return Offer(title, self.store.area(title) is not None, others)

    def services(self, offer: Offer, log: AssociationLog) -> list[Service]:
        """The services to negotiate for an association admitted with ``offer``."""
        if not offer.known:
            return []
        services = [echo_service(log)]
        if offer.worklist:
            services.append(self._worklist(log))
        services.extend(
            factory(log) for name, _titles, factory in self._titled if name in offer.others
        )
        return services

    def titles(self) -> dict[str, frozenset[str]]:
        """Each configured service's called AE titles (start-up line, tests)."""
        return {name: titles for name, titles, _ in self._titled}


def unknown_title_reason(called_ae: str, data_files_path: str, router: Router) -> str:
    """Why ``called_ae`` was rejected, in the words an operator needs to fix it."""
    reason = f"called AE title {called_ae!r} has no storage area in {data_files_path}"
    configured = router.titles()
    if configured:
        offered = "; ".join(
            f"{name}: {', '.join(sorted(titles)) or 'none'}"
            for name, titles in sorted(configured.items())
        )
        reason += f" and offers no other service ({offered})"
    return reason
