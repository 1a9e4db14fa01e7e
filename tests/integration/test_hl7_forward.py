"""MPPS -> RIS over MLLP (--hl7-forward): a real wlmd, a pynetdicom modality, and a real
MLLP receiver in the test that answers AA and records what it got."""

from __future__ import annotations

import queue
import re
import socket
import threading
import time
from pathlib import Path

from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from tests.helpers import servers
from tests.helpers.hl7 import TIMEOUT
from tests.helpers.mpps import completed, in_progress
from tests.helpers.worklists import make_area
from wlmd.hl7 import ack, mllp
from wlmd.hl7.message import Message, read_header


class Receiver:
    """A RIS's MLLP listener on 127.0.0.1: each message queued, each answered AA."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.messages: queue.Queue[Message] = queue.Queue()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(TIMEOUT)
                decoder = mllp.Decoder()
                try:
                    while data := conn.recv(65536):
                        for event in decoder.feed(data):
                            if isinstance(event, mllp.Frame):
                                self.messages.put(Message(event.payload))
                                answer = ack.build(read_header(event.payload), "AA")
                                conn.sendall(mllp.frame(answer.encode("ascii")))
                except OSError:
                    pass

    def next(self) -> Message:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        self.thread.join(TIMEOUT)


def modality_ae() -> AE:
    ae = AE(ae_title="CT01")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(ModalityPerformedProcedureStep)
    return ae


def mpps(port: int, uid: str, sps_id: str = "", final: str = "") -> float:
    """N-CREATE (with ``sps_id``) or N-SET to ``final``; the response time."""
    assoc = modality_ae().associate("127.0.0.1", port, ae_title="WLMD")
    assert assoc.is_established
    try:
        started = time.monotonic()
        if final:
            status, _ = assoc.send_n_set(completed(final), ModalityPerformedProcedureStep, uid)
        else:
            study = "1.2.826.0.1.3680043.8.498.77"
            status, _ = assoc.send_n_create(
                in_progress(study, sps_id), ModalityPerformedProcedureStep, uid
            )
        elapsed = time.monotonic() - started
        assert status.Status == 0x0000
    finally:
        assoc.release()
    return elapsed


def wait_for_log(server: servers.Server, pattern: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    while not re.search(pattern, log := server.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


def test_mpps_status_changes_reach_the_ris(tmp_path: Path, wlmd_available: None) -> None:
    data = tmp_path / "data"
    make_area(data, "WLMD", {})
    receiver = Receiver()
    port = receiver.port
    state = tmp_path / "state" / "wlmd.db"
    state.parent.mkdir()
    options = ["-v", "--mpps-ae-title", "WLMD", "--state-store", str(state)]
    options += ["--hl7-forward", f"127.0.0.1:{port}"]
    try:
        with servers.wlmd(data, options) as running:
            mpps(running.port, "1.2.826.0.1.3680043.8.498.901", "SPSF1")
            first = receiver.next()
            mpps(running.port, "1.2.826.0.1.3680043.8.498.901", final="COMPLETED")
            second = receiver.next()
            assert [m.value("ORC-5") for m in (first, second)] == ["IP", "CM"]
            for message in (first, second):
                assert (message.value("MSH-9"), message.value("MSH-9.2")) == ("ORM", "O01")
                assert message.value("ORC-1") == "SC"
                assert message.value("OBR-18") == "ACC1" and message.value("OBR-20") == "SPSF1"
                assert message.value("ZDS-1") == "1.2.826.0.1.3680043.8.498.77"
                assert message.value("PID-3") == "MPPS1"
            log = wait_for_log(
                running, r"HL7 forward MPPS \S+901 COMPLETED to 127\.0\.0\.1:\d+: AA"
            )
            assert re.search(r"HL7 forward MPPS \S+901 COMPLETED to 127\.0\.0\.1:\d+: AA", log)
            assert "Doe" not in log and "MPPS1" not in log, "no patient data at info level"

            # The RIS down: the MPPS is answered at once all the same, and sent once it is back.
            receiver.close()
            slowest = mpps(running.port, "1.2.826.0.1.3680043.8.498.902", "SPSF2")
            assert slowest < 2.0, "the MPPS response does not wait for the RIS"
            log = wait_for_log(running, r"HL7 forward of MPPS \S+902 IN PROGRESS .* failed")
            assert re.search(r"failed: .*; retry in \d+ s", log), log
            receiver = Receiver(port)
            assert receiver.next().value("OBR-20") == "SPSF2"

        # A restart neither repeats what was sent nor skips what changed meanwhile.
        with servers.wlmd(data, options) as running:
            mpps(running.port, "1.2.826.0.1.3680043.8.498.903", "SPSF3")
            got = [receiver.next()]
            mpps(running.port, "1.2.826.0.1.3680043.8.498.903", final="DISCONTINUED")
            got.append(receiver.next())
            assert [(m.value("OBR-20"), m.value("ORC-5")) for m in got] == [
                ("SPSF3", "IP"),
                ("SPSF3", "DC"),
            ]
        assert receiver.messages.empty()
    finally:
        receiver.close()
