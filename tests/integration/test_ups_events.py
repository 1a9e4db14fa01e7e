"""UPS events end to end: a real wlmd over TCP, pynetdicom SCUs for the operations,
pynetdicom event receivers on 127.0.0.1 that insist on role selection (as ``dcmups -L``).

Every wait is for an event or a log line, bounded in time; time bounds are read
from the receivers' arrival times, not from sleeps.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association

from tests.helpers import procs, servers
from tests.helpers.postgres import Cluster
from tests.helpers.servers import Server
from tests.helpers.ups import performed, scheduled
from tests.helpers.upsevents import (
    EVENT,
    PUSH,
    TRIAL_EVENT,
    TRIAL_PUSH,
    Receiver,
    Report,
    Silent,
)
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

    def __init__(
        self,
        tmp: Path,
        names: tuple[str, ...],
        trial: tuple[str, ...] = (),
        tls: tuple[str, ...] = (),
    ) -> None:
        self.tmp = tmp
        self.db = tmp / "state.db"
        self.root = tmp / "wl"
        make_area(self.root, "WLMD", [])
        self.receivers = {
            name: Receiver(name, servers.free_port(), trial_only=name in trial) for name in names
        }
        table = tmp / "subscribers"
        table.write_text(
            "".join(
                f"{r.ae_title} 127.0.0.1 {r.port}{' tls' if r.ae_title in tls else ''}\n"
                for r in self.receivers.values()
            )
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
    def running(self, port: int | None = None) -> Iterator[Server]:
        port = port or self.port
        with servers.wlmd(self.root, self.options, port=port, log_dir=self.tmp) as server:
            wait_log(server, "ups event sender started")
            yield server

    def __getitem__(self, name: str) -> Receiver:
        return self.receivers[name]


@pytest.fixture
def ups_env(tmp_path: Path, wlmd_available: None) -> Iterator[Callable]:  # type: ignore[type-arg]
    made: list[Ups] = []

    def make(
        *names: str,
        trial: tuple[str, ...] = (),
        down: tuple[str, ...] = (),
        tls: tuple[str, ...] = (),
    ) -> Ups:
        env = Ups(tmp_path / f"u{len(made)}", names, trial, tls)
        made.append(env)
        for receiver in env.receivers.values():
            if receiver.ae_title not in down:
                receiver.start()
        return env

    yield make
    for env in made:
        for receiver in env.receivers.values():
            receiver.stop()


def wait_log(server: Server, text: str, count: int = 1, timeout: float = 15.0) -> None:
    procs.wait_for(
        lambda: server.log().count(text) >= count or not server.alive(),
        f"{count}x {text!r} in the log",
        timeout,
    )
    assert server.log().count(text) >= count, server.describe()


@contextlib.contextmanager
def scu(
    server: Server, calling: str = "RIS", tls: ssl.SSLContext | None = None
) -> Iterator[Association]:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = TIMEOUT
    for uid in (PUSH, PULL, WATCH):
        ae.add_requested_context(uid)
    tls_args = (tls, "127.0.0.1") if tls is not None else None
    assoc = ae.associate("127.0.0.1", server.port, ae_title="UPS", tls_args=tls_args)
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
    requested = next(r for r in env["ALL"].accepted() if r.type == CANCEL_REQUESTED)
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
                lambda r: (
                    [x.info.SCPStatus for x in r if x.type == SCP_STATUS]
                    == ["GOING DOWN", "RESTARTED"]
                ),
                f"{name}'s RESTARTED",
            )
    restarted = [r for r in env["ONE"].accepted() if r.type == SCP_STATUS][1]
    assert restarted.info.SubscriptionListStatus == "WARM START"


def sender_pids(server: Server) -> list[int]:
    return [int(p) for p in re.findall(r"ups event sender started \(pid (\d+)\)", server.log())]


def test_a_hung_subscriber_does_not_delay_another_and_gets_its_events_later(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("HUNG", "UP", down=("HUNG",))
    hung = Silent(env["HUNG"].port)  # accepts TCP, never answers: the sender waits its ACSE timeout
    try:
        with env.running() as server, scu(server) as assoc:
            subscribe(assoc, GLOBAL, "HUNG")
            subscribe(assoc, GLOBAL, "UP")
            uids = [f"1.2.7.{n}" for n in range(1, 6)]
            for uid in uids:
                create(assoc, uid)
                change_state(assoc, uid, "IN PROGRESS")
            written = time.monotonic()
            got = env["UP"].wait_for(
                lambda r: all(len(about(r, uid)) >= 2 for uid in uids), "UP's 10 reports"
            )
            # all of UP's within a fraction of the 5 s the sender waits for HUNG's A-ASSOCIATE-AC
            assert max(r.at for r in got) - written < 2.5, [r.at - written for r in got]
            for uid in uids:
                assert about(got, uid) == [(1, "SCHEDULED"), (1, "IN PROGRESS")]
            wait_log(server, "no answer to the A-ASSOCIATE-RQ within 5 s; retry in")
            hung.close()
            env["HUNG"].start()
            late = env["HUNG"].wait_for(
                lambda r: all(len(about(r, uid)) >= 2 for uid in uids), "HUNG's reports", 40
            )
            for uid in uids:
                assert about(late, uid) == [(1, "SCHEDULED"), (1, "IN PROGRESS")]
    finally:
        hung.close()


def test_event_sender_killed_mid_delivery_is_restarted_and_loses_nothing(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("SLOW")
    env["SLOW"].delay = 0.3
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.8.1")
        subscribe(assoc, "1.2.8.1", "SLOW")
        change_state(assoc, "1.2.8.1", "IN PROGRESS")
        for percent in ("10", "20", "30", "40"):
            progress(assoc, "1.2.8.1", percent)
        env["SLOW"].wait_for(lambda r: len(about(r, "1.2.8.1")) >= 2, "the first reports")
        (first,) = sender_pids(server)
        os.kill(first, signal.SIGKILL)
        wait_log(server, "ups event sender started", count=2)
        got = env["SLOW"].wait_for(
            lambda r: len(dedup(about(r, "1.2.8.1"))) >= 6, "every report after the restart", 30
        )
        wait_log(server, "ups event sender (pid")
    expected = [(1, "SCHEDULED"), (1, "IN PROGRESS")] + [(3, p) for p in ("10", "20", "30", "40")]
    seen = about(got, "1.2.8.1")
    assert dedup(seen) == expected  # nothing lost, in order
    assert len(seen) - len(expected) <= 1  # at most the report in flight, again
    # the restarted sender did not announce the SCP's start again (only the stop's GOING DOWN)
    statuses = [r.info.SCPStatus for r in env["SLOW"].reports if r.type == SCP_STATUS]
    assert statuses == ["GOING DOWN"]


def dedup(seen: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [x for n, x in enumerate(seen) if n == 0 or seen[n - 1] != x]


def test_everything_killed_then_restarted_delivers_what_was_pending(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("LATER", down=("LATER",))
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.9.1")
        subscribe(assoc, "1.2.9.1", "LATER")
        change_state(assoc, "1.2.9.1", "IN PROGRESS")
        wait_log(server, "not delivered: LATER at 127.0.0.1")
        procs.kill_session(server.proc, 10)  # supervisor, sender, workers: SIGKILL
        assert "GOING DOWN" not in server.log()
    env["LATER"].start()
    with env.running():
        got = env["LATER"].wait_for(
            lambda r: len(about(r, "1.2.9.1")) >= 2 and any(x.type == SCP_STATUS for x in r),
            "the pending reports and RESTARTED",
        )
    assert about(got, "1.2.9.1") == [(1, "SCHEDULED"), (1, "IN PROGRESS")]
    assert next(r.info.SCPStatus for r in got if r.type == SCP_STATUS) == "RESTARTED"


def test_housekeeping_deletes_final_steps_and_logs_counts(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("ONE")
    env.options = (*env.options, "--ups-keep-final", "0")
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.10.1", PatientName="Secret^Patient")
        cancel = Dataset()
        cancel.ReasonForCancellation = "test"
        assert assoc.send_n_action(cancel, 2, PUSH, "1.2.10.1")[0].Status == 0
    with env.running() as server, scu(server) as assoc:
        wait_log(server, "housekeeping: deleted 0 completed and 1 canceled steps")
        status, _ = assoc.send_n_get([0x00741000, 0x00404041], PUSH, "1.2.10.1")
        assert status.Status == 0xC307  # gone
    assert "Secret" not in server.log()


def test_events_a_subscriber_never_took_are_given_up_after_the_expiry(ups_env) -> None:  # type: ignore[no-untyped-def]
    # A subscriber switched off for good: its events are retried until
    # --ups-event-expiry, then dropped with one warning naming it (counts only).
    env = ups_env("GONE", "UP", down=("GONE",))
    env.options = (*env.options, "--ups-event-expiry", "3600")
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.11.1", PatientName="Secret^Patient")
        subscribe(assoc, "1.2.11.1", "GONE")
        subscribe(assoc, "1.2.11.1", "UP")
        env["UP"].wait_for(lambda r: len(r) >= 1, "UP's initial state report")
        wait_log(server, "not delivered: GONE at 127.0.0.1:")
    with sqlite3.connect(env.db) as db:  # the clock we control: the events are two hours old
        pending = db.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()
        assert pending[0] >= 2  # GONE's initial state report, GOING DOWN
        db.execute("UPDATE outbox SET created_at = created_at - 7200")
    with env.running() as server:
        wait_log(server, "housekeeping: gave up")
        line = next(x for x in server.log().splitlines() if "gave up" in x)
        assert re.search(r"gave up \d+ events not delivered within 3600 s \(GONE: \d+\)", line)
    with sqlite3.connect(env.db) as db:
        left = db.execute(
            "SELECT subscriber FROM outbox WHERE delivered_at IS NULL AND created_at < ?",
            (time.time() - 3600,),
        ).fetchall()
    assert left == []
    assert "Secret" not in server.log()


def test_a_refusing_receiver_is_retried_with_backoff_and_order_kept(ups_env) -> None:  # type: ignore[no-untyped-def]
    env = ups_env("PICKY")
    env["PICKY"].status = 0x0110  # Processing failure: not delivered
    with env.running() as server, scu(server) as assoc:
        create(assoc, "1.2.11.1")
        subscribe(assoc, "1.2.11.1", "PICKY")
        change_state(assoc, "1.2.11.1", "IN PROGRESS")
        wait_log(server, "to PICKY at 127.0.0.1")
        wait_log(server, "refused: status 0x0110; retry in 1 s")
        env["PICKY"].status = 0x0000
        got = env["PICKY"].wait_for(lambda r: len(about(r, "1.2.11.1")) >= 2, "both reports")
    assert about(got, "1.2.11.1") == [(1, "SCHEDULED"), (1, "IN PROGRESS")]
    refused = [r for r in env["PICKY"].reports if r.status == 0x0110]
    assert refused and {about([r], "1.2.11.1")[0] for r in refused} == {(1, "SCHEDULED")}


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _pki(where: Path) -> Path:
    """A CA, a certificate for 127.0.0.1 signed by it, and a self-signed one."""
    where.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=wlmd test CA", "-keyout", str(where / "ca.key"),
             "-out", str(where / "ca.pem"))  # fmt: skip
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", str(where / "host.key"), "-out", str(where / "host.csr"))  # fmt: skip
    (where / "host.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(where / "host.csr"), "-CA", str(where / "ca.pem"),
             "-CAkey", str(where / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(where / "host.ext"), "-out", str(where / "host.pem"))  # fmt: skip
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(where / "fake.key"), "-out", str(where / "fake.pem"))  # fmt: skip
    return where


def test_tls_subscribers_get_events_only_with_a_trusted_certificate(ups_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pki = _pki(tmp_path / "pki")

    def listener(name: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki / f"{name}.pem", pki / f"{name}.key")
        context.load_verify_locations(pki / "ca.pem")
        context.verify_mode = ssl.CERT_REQUIRED  # wlmd must present --tls-cert
        return context

    env = ups_env("SECURE", "FAKE", tls=("SECURE", "FAKE"), down=("SECURE", "FAKE"))
    env["SECURE"].tls = listener("host")
    env["FAKE"].tls = listener("fake")  # a certificate wlmd's --tls-ca did not sign
    for name in ("SECURE", "FAKE"):
        env[name].start()
    cert, key, ca = pki / "host.pem", pki / "host.key", pki / "ca.pem"
    env.options = (
        *env.options,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--tls-ca",
        str(ca),
    )
    client = ssl.create_default_context(cafile=str(ca))
    with env.running() as server, scu(server, tls=client) as assoc:
        create(assoc, "1.2.12.1")
        subscribe(assoc, "1.2.12.1", "SECURE")
        subscribe(assoc, "1.2.12.1", "FAKE")
        env["SECURE"].wait_for(has((1, "SCHEDULED"), uid="1.2.12.1"), "the report over TLS")
        wait_log(server, "not delivered: FAKE at 127.0.0.1")
        assert "TLS: certificate verify failed" in server.log(), server.describe()
    assert env["FAKE"].reports == []


def test_two_nodes_on_one_postgresql_database_deliver_each_event_once(  # type: ignore[no-untyped-def]
    ups_env, pg_cluster: Cluster
) -> None:
    env = ups_env("ALL")
    at = env.options.index("--state-store") + 1
    env.options = (*env.options[:at], pg_cluster.database(), *env.options[at + 1 :])
    with env.running() as node_a, env.running(servers.free_port()) as node_b:
        wait_log(node_b, "ups event sender started")
        with scu(node_a) as on_a, scu(node_b) as on_b:
            subscribe(on_a, GLOBAL, "ALL")
            uids = [f"1.2.13.{n}" for n in range(1, 9)]
            for n, uid in enumerate(uids):
                create(on_a if n % 2 else on_b, uid)
                change_state(on_b if n % 2 else on_a, uid, "IN PROGRESS")
            got = env["ALL"].wait_for(
                lambda r: all(len(about(r, uid)) >= 2 for uid in uids), "16 reports"
            )
            # one more round trip through both senders' polls: a duplicate would show by now
            create(on_a, "1.2.13.99")
            env["ALL"].wait_for(has((1, "SCHEDULED"), uid="1.2.13.99"), "the last report")
        lines = [
            line
            for log in (node_a.log(), node_b.log())
            for line in log.splitlines()
            if "State Report for 1.2.13." in line
        ]
    for uid in uids:
        assert about(got, uid) == [(1, "SCHEDULED"), (1, "IN PROGRESS")]
    reports = [(r.uid, r.info.ProcedureStepState) for r in env["ALL"].reports if r.type == 1]
    assert len(reports) == len(set(reports)) == 17  # each event once, by one node or the other
    assert len(lines) == 17
