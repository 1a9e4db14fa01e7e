"""All services' data as the supervisor keeps it, and the router its workers serve with.

The supervisor drives this through :class:`wlmd.process.hooks.ServiceData`.
The parts: the MWL snapshot
(:class:`~wlmd.services.mwlsnapshot.WorklistSnapshot`), always, and the UPS
state store with its event sender (:class:`~wlmd.services.upsdata.UpsData`)
when ``--ups-ae-title`` names called AE titles, and the REST API's socket and
server (:class:`~wlmd.api.part.ApiPart`) with ``--api-port``, and the housekeeping
child (:class:`~wlmd.services.housekeepingpart.HousekeepingPart`) when it has work;
each hook is passed on to every part, and each part's service is an entry in the
:class:`~wlmd.services.routing.Router`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wlmd.api.part import ApiPart
from wlmd.services.hl7forward import Hl7ForwardPart
from wlmd.services.hl7intake import Hl7Data
from wlmd.services.housekeepingpart import HousekeepingPart
from wlmd.services.housekeepingpart import wanted as housekeeping_wanted
from wlmd.services.mppsdata import SERVICE_NAME as MPPS_SERVICE
from wlmd.services.mppsdata import MppsData
from wlmd.services.mwl import WorklistService
from wlmd.services.mwlsnapshot import WorklistSnapshot
from wlmd.services.routing import Router
from wlmd.services.upsdata import SERVICE_NAME, UpsData
from wlmd.settings.config import Config


class Catalogue:
    """The parts, and the router built on them (created in the supervisor, before forking)."""

    def __init__(self, config: Config) -> None:
        self.worklist = WorklistSnapshot(config)
        store = self.worklist.store
        self._parts: list[
            WorklistSnapshot
            | UpsData
            | MppsData
            | ApiPart
            | Hl7Data
            | HousekeepingPart
            | Hl7ForwardPart
        ] = [self.worklist]
        titled = []
        if config.ups_ae_titles:
            ups = UpsData(config)
            self._parts.append(ups)
            titled.append((SERVICE_NAME, config.ups_ae_titles, ups.service))
        if config.mpps_ae_titles:
            mpps = MppsData(config)
            self._parts.append(mpps)
            titled.append((MPPS_SERVICE, config.mpps_ae_titles, mpps.service))
        if config.api_port is not None:
            self._parts.append(ApiPart(config))
        if config.hl7_port:
            self._parts.append(Hl7Data(config))
        if housekeeping_wanted(config):
            self._parts.append(HousekeepingPart(config))
        if config.hl7_forward:
            self._parts.append(Hl7ForwardPart(config))
        self.router = Router(
            store, lambda log: WorklistService(config, store, log).service(), titled
        )

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        for part in self._parts:
            part.preload(progress)

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        return [helper for part in self._parts for helper in part.helpers()]

    def descriptors(self) -> list[int]:
        return [fd for part in self._parts for fd in part.descriptors()]

    def wait_time(self, wait: float) -> float:
        for part in self._parts:
            wait = part.wait_time(wait)
        return wait

    def refresh_due(self, ready: Sequence[object]) -> bool:
        return any(part.refresh_due(ready) for part in self._parts)

    def refresh(self) -> bool:
        return any([part.refresh() for part in self._parts])  # every part refreshed

    def background_job(self) -> tuple[str, Callable[[], int]] | None:
        return self.worklist.background_job()  # UPS has none

    def before_fork(self) -> object:
        return [part.before_fork() for part in self._parts]

    def in_parent(self, for_child: object) -> None:
        for part, token in zip(self._parts, _tokens(for_child), strict=True):
            part.in_parent(token)

    def in_child(self, for_child: object) -> None:
        for part, token in zip(self._parts, _tokens(for_child), strict=True):
            part.in_child(token)


def _tokens(for_child: object) -> list:  # type: ignore[type-arg]
    assert isinstance(for_child, list), "before_fork() gives a list"
    return for_child
