"""What the network fuzzer found, as fixed cases (see test_network_fuzz.py).

1. A C-FIND whose requester resets the connection while wlmd answers: wlmd
   wrote responses to a socket pynetdicom had already dropped and answered
   "Internal error" with a traceback.
2. A malformed PDU inside an association: pynetdicom logged a traceback of
   dozens of lines at ERROR for what is a peer's fault.

Now both end the association with warnings of one line each; wlmd logs no
ERROR, no traceback, and no worker exits abnormally.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.rawclient import Association, associated_socket, identifier, mwlclient
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"
ENTRIES = 500
WAIT = 10.0


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-regressions")
    make_area(root, AREA, {f"e{n}.wl": complete_entry(PatientID=f"P{n}") for n in range(ENTRIES)})
    return root


def _associated(port: int) -> socket.socket:
    return associated_socket(port, AREA, "REGRESSION")


def _all_ended(server: servers.Server, count: int) -> bool:
    return server.log().count("association REGRESSION -> WLMD") >= count


def _wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.02)


def _assert_clean(log: str) -> None:
    bad = [
        line
        for line in log.splitlines()
        if " ERROR " in line
        or "Traceback" in line
        or "Internal error" in line
        or "exited with status" in line
        or "killed by signal" in line
    ]
    assert not bad, "\n".join(bad[:20])


def _normal_query_works(server: servers.Server) -> None:
    with Association.open("127.0.0.1", server.port, AREA, io_timeout=WAIT) as assoc:
        result = assoc.find(identifier({"PatientID": "P7"}), deadline_s=WAIT)
        assert (result.status, result.matches) == (0x0000, 1)
        assoc.release()


def test_peer_resetting_the_connection_during_the_answer(data_root: Path) -> None:
    attempts = 12
    with servers.wlmd(data_root, ["-v", "-ta", "2", "-td", "2"]) as server:
        for attempt in range(attempts):
            sock = _associated(server.port)
            sock.sendall(mwlclient.find_rq(1, identifier({})))  # 500 matches to send
            if attempt % 2:  # sometimes after the first responses have arrived
                sock.recv(1)
            # close with RST (SO_LINGER 0) while wlmd is matching or sending
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        _wait_until(lambda: _all_ended(server, attempts), "every association to be logged")
        _normal_query_works(server)
        log = server.log()
    _assert_clean(log)
    # each one was a query that was received, answered as far as possible, and logged
    assert log.count("C-FIND REGRESSION -> WLMD") == attempts, log


def test_malformed_pdu_in_an_association_is_one_warning(data_root: Path) -> None:
    with servers.wlmd(data_root, ["-v", "-ta", "2", "-td", "2"]) as server:
        sock = _associated(server.port)
        # a P-DATA-TF whose PDV item claims 500 bytes in a 10-byte PDU
        sock.sendall(struct.pack(">BBL", 0x04, 0, 10) + struct.pack(">LBB", 500, 1, 3) + bytes(4))
        reply = sock.recv(10)
        sock.close()
        assert reply[:1] == b"\x07", f"expected an A-ABORT, got {reply!r}"
        _wait_until(lambda: _all_ended(server, 1), "the association to be logged")
        _normal_query_works(server)
        log = server.log()
    _assert_clean(log)
    tag = re.search(r"(\[a[0-9a-z]{6}\.\d+\]) association REGRESSION -> WLMD", log)
    assert tag, log
    worker_lines = [line for line in log.splitlines() if tag.group(1) in line]
    warnings = [line for line in worker_lines if " WARNING " in line]
    assert 1 <= len(warnings) <= 3, "\n".join(worker_lines)
    assert any("Unable to decode" in line for line in warnings), "\n".join(worker_lines)
