"""UPS events end to end: a real wlmd over TCP, pynetdicom SCUs for the operations,
pynetdicom event receivers on 127.0.0.1 that insist on role selection (as ``dcmups -L``).

Every wait is for an event or a log line, bounded in time; time bounds are read
from the receivers' arrival times, not from sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association

from tests.helpers import procs, servers
from tests.helpers.servers import Server
from tests.helpers.ups import performed, scheduled
from tests.helpers.upsevents import EVENT, PUSH, TRIAL_EVENT, TRIAL_PUSH, Receiver, Report
from tests.helpers.worklists import make_area

PULL = "1.2.840.10008.5.1.4.34.6.3"
WATCH = "1.2.840.10008.5.1.4.34.6.2"
GLOBAL = "1.2.840.10008.5.1.4.34.5"
FILTERED_GLOBAL = "1.2.840.10008.5.1.4.34.5.1"
TUID = "1.2.826.0.1.3680043.10.1.77"
STATE_REPORT, CANCEL_REQUESTED, PROGRESS, SCP_STATUS, ASSIGNED = 1, 2, 3, 4, 5
TIMEOUT = 10


class Ups:
    """wlmd with UPS on called AE title UPS, its subscriber table and its receivers."""

    def __init__(self, tmp: Path, names: tuple[str, ...], trial: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.db = tmp / "state.db"
        self.root = tmp / "wl"
        make_area(self.root, "WLMD", [])
        self.receivers = {
            name: Receiver(name, servers.free_port(), trial_only=name in trial) for name in names
        }
        table = tmp / "subscribers"
        table.write_text(
            "".join(f"{r.ae_title} 127.0.0.1 {r.port}\n" for r in self.receivers.values())
        )
        self.options = (
            "-v",
            "--ups-ae-title",
            "UPS",
            "--state-store",
            str(self.db),
            "--ups-subscribers",
            str(table),
        )
        self.port = servers.free_port()

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        with servers.wlmd(self.root, self.options, port=self.port, log_dir=self.tmp) as server:
            wait_log(server, "ups event sender started")
            yield server

    def __getitem__(self, name: str) -> Receiver:
        return self.receivers[name]


@pytest.fixture
def ups_env(tmp_path: Path, wlmd_available: None) -> Iterator[Callable]:  # type: ignore[type-arg]
    made: list[Ups] = []

    def make(*names: str, trial: tuple[str, ...] = (), start: bool = True) -> Ups:
        env = Ups(tmp_path / f"u{len(made)}", names, trial)
        made.append(env)
        if start:
            for receiver in env.receivers.values():
                receiver.start()
        return env

    yield make
    for env in made:
        for receiver in env.receivers.values():
            receiver.stop()


from collections.abc import Callable  # noqa: E402


def wait_log(server: Server, text: str, count: int = 1, timeout: float = 15.0) -> None:
    procs.wait_for(
        lambda: server.log().count(text) >= count or not server.alive(),
        f"{count}x {text!r} in the log",
        timeout,
    )
    assert server.log().count(text) >= count, server.describe()


@contextlib.contextmanager
def scu(server: Server, calling: str = "RIS") -> Iterator[Association]:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = TIMEOUT
    for uid in (PUSH, PULL, WATCH):
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", server.port, ae_title="UPS")
    assert assoc.is_established, server.describe()
    try:
        yield assoc
    finally:
        assoc.release()


def create(assoc: Association, uid: str, **attrs: object) -> None:
    ds = scheduled()
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    status, _ = assoc.send_n_create(ds, PUSH, uid)
    assert status.Status in (0x0000, 0xB300), hex(status.Status)


def subscribe(assoc: Association, uid: str, ae: str, keys: Dataset | None = None) -> None:
    ds = keys or Dataset()
    ds.ReceivingAE = ae
    ds.DeletionLock = "FALSE"
    status, _ = assoc.send_n_action(ds, 3, WATCH, uid)
    assert status.Status in (0x0000, 0xB301), hex(status.Status)


def change_state(assoc: Association, uid: str, state: str) -> None:
    ds = Dataset()
    ds.TransactionUID = TUID
    ds.ProcedureStepState = state
    status, _ = assoc.send_n_action(ds, 1, PULL, uid)
    assert status.Status == 0x0000, hex(status.Status)


def progress(assoc: Association, uid: str, percent: str) -> None:
    ds = Dataset()
    ds.TransactionUID = TUID
    item = Dataset()
    item.ProcedureStepProgress = percent
    ds.ProcedureStepProgressInformationSequence = [item]
    status, _ = assoc.send_n_set(ds, PULL, uid)
    assert status.Status == 0x0000, hex(status.Status)


def about(reports: list[Report], uid: str) -> list[tuple[int, str]]:
    """(event type, state or progress) of the reports about ``uid``, in arrival order."""
    out = []
    for r in reports:
        if r.uid != uid:
            continue
        value = r.info.get("ProcedureStepState", "")
        if r.type == PROGRESS:
            value = str(r.info.ProcedureStepProgressInformationSequence[0].ProcedureStepProgress)
        out.append((r.type, str(value)))
    return out


def has(*wanted: tuple[int, str], uid: str) -> Callable[[list[Report]], bool]:
    return lambda reports: len(about(reports, uid)) >= len(wanted)


# --- the cases --------------------------------------------------------------------------


def test_subscribe_instance_global_and_filtered_get_initial_state_reports(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("ONE", "ALL", "CT")
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.3.1", WorklistLabel="CT")
        create(assoc, "1.2.3.2", WorklistLabel="MR")
        subscribe(assoc, "1.2.3.1", "ONE")
        subscribe(assoc, GLOBAL, "ALL")
        keys = Dataset()
        keys.WorklistLabel = "CT"
        subscribe(assoc, FILTERED_GLOBAL, "CT", keys)
        env["ONE"].wait_for(has((1, "SCHEDULED"), uid="1.2.3.1"), "ONE's report")
        env["ALL"].wait_for(lambda r: {x.uid for x in r} >= {"1.2.3.1", "1.2.3.2"}, "ALL's")
        env["CT"].wait_for(has((1, "SCHEDULED"), uid="1.2.3.1"), "CT's report")
        wait_log(server, "to CT at 127.0.0.1")
    assert about(env["ONE"].accepted(), "1.2.3.1") == [(STATE_REPORT, "SCHEDULED")]
    assert {r.uid for r in env["ALL"].accepted() if r.type == STATE_REPORT} == {
        "1.2.3.1",
        "1.2.3.2",
    }
    assert {r.uid for r in env["CT"].accepted() if r.type == STATE_REPORT} == {"1.2.3.1"}
    for receiver in env.receivers.values():
        for r in receiver.accepted():
            assert (r.context, r.sop_class) == (EVENT, PUSH)  # the final family, Push UID
        assert receiver.refused_contexts == 0  # role selection proposed every time


def test_workflow_events_in_order_and_cancel_requested(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("ALL")
    with env.running() as server, scu(server) as assoc:
        subscribe(assoc, GLOBAL, "ALL")
        station = Dataset()
        station.CodeValue, station.CodingSchemeDesignator, station.CodeMeaning = "CT1", "99", "CT"
        create(assoc, "1.2.4.1", ScheduledStationNameCodeSequence=[station])
        change_state(assoc, "1.2.4.1", "IN PROGRESS")
        progress(assoc, "1.2.4.1", "50")
        ds = performed(Dataset())
        ds.TransactionUID = TUID
        assert assoc.send_n_set(ds, PULL, "1.2.4.1")[0].Status == 0
        change_state(assoc, "1.2.4.1", "COMPLETED")
        create(assoc, "1.2.4.2")
        with scu(server, calling="ALL") as performer:  # the performer is subscribed
            change_state(performer, "1.2.4.2", "IN PROGRESS")
        cancel = Dataset()
        cancel.ReasonForCancellation = "patient left"
        assert assoc.send_n_action(cancel, 2, PUSH, "1.2.4.2")[0].Status == 0
        env["ALL"].wait_for(lambda r: len(about(r, "1.2.4.1")) >= 5, "the workflow's events")
        env["ALL"].wait_for(lambda r: len(about(r, "1.2.4.2")) >= 3, "the cancel request")
    assert about(env["ALL"].accepted(), "1.2.4.1") == [
        (STATE_REPORT, "SCHEDULED"),
        (ASSIGNED, ""),
        (STATE_REPORT, "IN PROGRESS"),
        (PROGRESS, "50"),
        (STATE_REPORT, "COMPLETED"),
    ]
    assert about(env["ALL"].accepted(), "1.2.4.2") == [
        (STATE_REPORT, "SCHEDULED"),
        (STATE_REPORT, "IN PROGRESS"),
        (CANCEL_REQUESTED, ""),
    ]
    requested = [r for r in env["ALL"].accepted() if r.type == CANCEL_REQUESTED][0]
    assert requested.info.ReasonForCancellation == "patient left"
    assert requested.info.RequestingAE == "RIS"


def test_trial_only_receiver_gets_trial_push_uid(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("DCMUPS", trial=("DCMUPS",))
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.5.1")
        subscribe(assoc, "1.2.5.1", "DCMUPS")
        env["DCMUPS"].wait_for(has((1, "SCHEDULED"), uid="1.2.5.1"), "the trial report")
        wait_log(server, "(trial)")
    # answered 0 the first time: no 0x0118 and no retries
    (report,) = [r for r in env["DCMUPS"].reports if r.uid == "1.2.5.1"]
    assert (report.context, report.sop_class, report.status) == (TRIAL_EVENT, TRIAL_PUSH, 0)
    assert env["DCMUPS"].refused_contexts == 0


def test_scp_status_change_at_start_and_orderly_stop(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("ONE", "TWO")
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.6.1")
        subscribe(assoc, "1.2.6.1", "ONE")
        subscribe(assoc, GLOBAL, "TWO")
        env["ONE"].wait_for(lambda r: len(r) >= 1, "ONE's initial report")
        env["TWO"].wait_for(lambda r: len(r) >= 1, "TWO's initial report")
    # servers.wlmd stops with SIGTERM: GOING DOWN went out before the exit
    for name in ("ONE", "TWO"):
        (down,) = [r for r in env[name].accepted() if r.type == SCP_STATUS]
        assert (down.uid, down.info.SCPStatus) == (GLOBAL, "GOING DOWN")
    with env.running():
        for name in ("ONE", "TWO"):
            env[name].wait_for(
                lambda r: [x.info.SCPStatus for x in r if x.type == SCP_STATUS]
                == ["GOING DOWN", "RESTARTED"],
                f"{name}'s RESTARTED",
            )
    restarted = [r for r in env["ONE"].accepted() if r.type == SCP_STATUS][1]
    assert restarted.info.SubscriptionListStatus == "WARM START"
