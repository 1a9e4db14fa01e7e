"""The REST API over real HTTP against a real wlmd, checked with DCMTK's findscu.

Create -> findscu sees the entry; list filters; get; delete -> findscu no
longer sees it; a refused entry's reason equals the authoring module's
(what ``wlmctl validate`` prints); the token; the start-up refusals; the log
lines (route templates, never a query string's patient data).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers import procs, servers
from tests.helpers.api import ApiServer, request, wlmd_with_api
from tests.helpers.dcmtk import findscu
from tests.helpers.worklists import DROP, complete_entry, make_area, query
from wlmd.authoring.editor import AreaEditor
from wlmd.authoring.errors import EntryRejected

TODAY = dt.date.today().strftime("%Y%m%d")
STATION = "ScheduledStationAETitle"


def entry_json(**overrides: Any) -> dict[str, Any]:
    """A complete entry as DICOM JSON, scheduled today, with the file's own IDs dropped
    unless given (so that authoring generates them)."""
    ds = complete_entry(ScheduledProcedureStepStartDate=TODAY, **overrides)
    return ds.to_json_dict()


def patient_ids(port: int, **sps: str) -> list[str]:
    result = findscu(port, query(PatientID=None, sps=sps), aec="WLMD")
    assert result.final_status == 0x0000, result.describe()
    return sorted(str(ds.PatientID) for ds in result.datasets)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> Path:
    root = tmp_path_factory.mktemp("api-data")
    make_area(
        root,
        "WLMD",
        {  # type: ignore[arg-type]
            "SMITH_JOHN.wl": complete_entry(  # a RIS's file name: patient data
                PatientID="R1", AccessionNumber="ACC-R1", Modality="CT",
                ScheduledProcedureStepStartDate=TODAY, **{STATION: "CT1"}),
            "b.wl": complete_entry(
                PatientID="R2", AccessionNumber="ACC-R2", Modality="MR",
                ScheduledProcedureStepStartDate=TODAY, **{STATION: "MR1"}),
            "c.wl": complete_entry(
                PatientID="R3", AccessionNumber="ACC-R3", Modality="CT",
                ScheduledProcedureStepStartDate="20240115", **{STATION: "CT1"}),
            "broken.wl": complete_entry(PatientID="R4", PatientName=""),
        },
    )  # fmt: skip
    make_area(root, "OTHER", [])
    return root


@pytest.fixture(scope="module")
def api(data_root: Path, dcmtk: dict[str, str]) -> Iterator[ApiServer]:
    with wlmd_with_api(data_root) as server:
        yield server


def entries_url(api: ApiServer, area: str = "WLMD", query_string: str = "") -> str:
    return f"{api.base}/api/areas/{area}/entries" + (f"?{query_string}" if query_string else "")


# --- round trips ----------------------------------------------------------------------


def test_create_is_seen_by_findscu_then_get_then_delete(api: ApiServer) -> None:
    body = entry_json(PatientID="NEW1", PatientName="NEW^ONE", Modality="US",
                      AccessionNumber=DROP, StudyInstanceUID=DROP,
                      **{STATION: "US9"})  # fmt: skip
    created = request("POST", entries_url(api), body)
    assert created.status == 201, created.body
    answer = created.json()
    assert re.fullmatch(r"order-[0-9a-f]{32}", answer["id"])
    assert set(answer["generated"]) == {"AccessionNumber", "StudyInstanceUID"}
    assert created.headers["Location"] == f"/api/areas/WLMD/entries/{answer['id']}"
    assert "NEW1" not in created.headers["Location"]

    assert patient_ids(api.dicom_port, ScheduledStationAETitle="US9") == ["NEW1"]

    got = request("GET", api.base + created.headers["Location"])
    assert got.status == 200 and got.headers["Content-Type"] == "application/dicom+json"
    ds = Dataset.from_json(got.json())
    assert ds.PatientID == "NEW1" and ds.PatientName == "NEW^ONE"
    assert ds.AccessionNumber == answer["generated"]["AccessionNumber"]
    assert ds.ScheduledProcedureStepSequence[0].Modality == "US"

    deleted = request("DELETE", api.base + created.headers["Location"])
    assert deleted.status == 204
    assert patient_ids(api.dicom_port, ScheduledStationAETitle="US9") == []
    again = request("DELETE", api.base + created.headers["Location"])
    assert again.status == 404 and again.json()["kind"] == "not-found"
    assert request("GET", api.base + created.headers["Location"]).status == 404


def test_the_same_order_again_replaces_the_entry(api: ApiServer) -> None:
    body = entry_json(PatientID="REP1", AccessionNumber="ACC-REP1", StudyInstanceUID=DROP,
                      ScheduledProcedureStepID=DROP, **{STATION: "REP"})  # fmt: skip
    first = request("POST", entries_url(api), body)
    assert first.status == 201, first.body
    body["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": "RENAMED^PATIENT"}]}
    second = request("POST", entries_url(api), body)
    assert second.status == 200 and second.json()["replaced"] is True
    assert second.json()["id"] == first.json()["id"]
    result = findscu(api.dicom_port, query(PatientName=None, sps={STATION: "REP"}), aec="WLMD")
    assert [str(d.PatientName) for d in result.datasets] == ["RENAMED^PATIENT"]
    assert request("DELETE", api.base + second.headers["Location"]).status == 204


def test_a_file_named_by_the_ris_gets_an_id_without_patient_data(api: ApiServer) -> None:
    listing = request("GET", entries_url(api, query_string="PatientID=R1")).json()
    assert [e["PatientID"] for e in listing["entries"]] == ["R1"]
    id_ = listing["entries"][0]["id"]
    assert re.fullmatch(r"file-[0-9a-f]{32}", id_) and "SMITH" not in id_
    ds = Dataset.from_json(request("GET", f"{entries_url(api)}/{id_}").json())
    assert ds.AccessionNumber == "ACC-R1"


# --- listing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        ("", ["R1", "R2", "R3"]),
        ("Modality=CT", ["R1", "R3"]),
        ("ScheduledStationAETitle=MR1", ["R2"]),
        ("PatientID=R3", ["R3"]),
        ("AccessionNumber=ACC-R2", ["R2"]),
        (f"ScheduledProcedureStepStartDate={TODAY}", ["R1", "R2"]),
        ("ScheduledProcedureStepStartDate=20240101-20240131", ["R3"]),
        ("ScheduledProcedureStepStartDate=-20240115", ["R3"]),
        (f"ScheduledProcedureStepStartDate={TODAY}&Modality=CT", ["R1"]),
        ("Modality=XA", []),
    ],
)
def test_list_filters(api: ApiServer, query_string: str, expected: list[str]) -> None:
    reply = request("GET", entries_url(api, query_string=query_string))
    assert reply.status == 200, reply.body
    listing = reply.json()
    assert sorted(e["PatientID"] for e in listing["entries"]) == expected
    assert listing["total"] == len(expected)


def test_list_pages_in_schedule_order_and_names_skipped_files(api: ApiServer) -> None:
    everything = request("GET", entries_url(api)).json()
    ordered = [e["PatientID"] for e in everything["entries"]]
    assert ordered[0] == "R3", "the 2024 entry is scheduled first"
    page = request("GET", entries_url(api, query_string="limit=1&offset=1")).json()
    assert [e["PatientID"] for e in page["entries"]] == ordered[1:2] and page["total"] == 3
    assert [s["reason"] for s in everything["skipped"]] == [
        "incomplete worklist file rejected: PatientName is missing or empty"
    ]


@pytest.mark.parametrize(
    ("query_string", "reason"),
    [
        ("PatientName=DOE", "unknown query parameter PatientName"),
        ("limit=x", "limit must be a non-negative integer"),
        ("limit=10001", "limit is at most 10000"),
        ("ScheduledProcedureStepStartDate=2024-13-45", "bad date"),
    ],
)
def test_bad_query_parameters_are_400(api: ApiServer, query_string: str, reason: str) -> None:
    reply = request("GET", entries_url(api, query_string=query_string))
    assert reply.status == 400 and reply.json()["kind"] == "bad-input"
    assert reason in reply.json()["reason"]


def test_areas_and_unknown_area(api: ApiServer) -> None:
    assert request("GET", f"{api.base}/api/areas").json() == {"areas": ["OTHER", "WLMD"]}
    missing = request("GET", entries_url(api, area="NOPE"))
    assert missing.status == 404 and missing.json() == {
        "kind": "not-found", "reason": "no storage area NOPE"}  # fmt: skip


# --- refusals: the authoring module's reasons -----------------------------------------


INCOMPLETE = {
    "no modality": {"Modality": DROP},
    "empty patient name": {"PatientName": ""},
    "no descriptions": {
        "ScheduledProcedureStepDescription": DROP,
        "RequestedProcedureDescription": DROP,
    },
    "no step": {"ScheduledProcedureStepSequence": []},
}


def authoring_reason(tmp_path: Path, ds: Dataset) -> str:
    """What wlmd.authoring (and so `wlmctl validate`) says about ``ds``."""
    make_area(tmp_path, "SCRATCH", [])
    with pytest.raises(EntryRejected) as refused:
        AreaEditor(str(tmp_path), "SCRATCH").put(ds)
    return refused.value.reason


@pytest.mark.parametrize("case", sorted(INCOMPLETE))
def test_a_refused_entry_gets_the_authoring_modules_reason(
    api: ApiServer, tmp_path: Path, case: str
) -> None:
    overrides = {"PatientID": "BAD1", **INCOMPLETE[case]}
    reply = request("POST", entries_url(api), entry_json(**overrides))
    assert reply.status == 422, reply.body
    expected = authoring_reason(tmp_path, complete_entry(
        ScheduledProcedureStepStartDate=TODAY, **overrides))  # fmt: skip
    assert reply.json() == {"kind": "rejected", "reason": expected}
    assert patient_ids(api.dicom_port) == ["R1", "R2", "R3"], "nothing was written"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "one DICOM JSON data set per request, not 0"),
        (b'{"00100020": {"vr": "LO", "Value": 5}}', "not a DICOM JSON data set"),
    ],
)
def test_bad_bodies_are_400(api: ApiServer, body: bytes, reason: str) -> None:
    reply = request("POST", entries_url(api), body)
    assert reply.status == 400 and reply.json()["kind"] == "bad-input"
    assert reason in reply.json()["reason"]


def test_a_body_over_a_mebibyte_is_413(api: ApiServer) -> None:
    """Refused on its Content-Length, before the body is read (the client sends none here:
    the server closes such a connection, and a client still sending would see EPIPE)."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", api.api_port, timeout=10)
    try:
        conn.putrequest("POST", "/api/areas/WLMD/entries")
        conn.putheader("Content-Type", "application/dicom+json")
        conn.putheader("Content-Length", str(1024 * 1024 + 1))
        conn.endheaders()
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 413 and body["kind"] == "too-large"


# --- description, page, log -----------------------------------------------------------


def test_openapi_describes_every_route(api: ApiServer) -> None:
    document = request("GET", f"{api.base}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/areas", "/api/areas/{area}/entries", "/api/areas/{area}/entries/{id}",
        "/openapi.json"}  # fmt: skip
    assert set(document["paths"]["/api/areas/{area}/entries"]) >= {"get", "post"}
    assert set(document["paths"]["/api/areas/{area}/entries/{id}"]) >= {"get", "delete"}


def test_the_page_and_its_files_are_served_with_no_outside_resources(api: ApiServer) -> None:
    page = request("GET", f"{api.base}/")
    assert page.status == 200 and b'<table id="entries">' in page.body
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    for asset in ("/static/app.js", "/static/app.css"):
        reply = request("GET", api.base + asset)
        assert reply.status == 200, asset
        assert b"http://" not in reply.body and b"https://" not in reply.body, asset


def test_one_log_line_per_request_without_patient_data(api: ApiServer) -> None:
    line = re.compile(r"GET /api/areas/\{area\}/entries 200 [\d.]+ ms from 127\.0\.0\.1$")

    def written() -> int:
        return sum(1 for x in api.log().splitlines() if line.search(x))

    before = written()
    request("GET", entries_url(api, query_string="PatientID=R3-SECRET&limit=7"))
    # the line is written once the response has gone out: poll for it, bounded
    procs.wait_for(lambda: written() == before + 1, "the request's log line")
    log = api.log()
    assert "limit=7" not in log, "the route template, not the query string"
    assert "R3-SECRET" not in log and "DOE^JOHN" not in log and "SMITH" not in log


# --- protection -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    token = "s3cret-token-0123456789"
    path = tmp_path_factory.mktemp("token") / "api-token"
    path.write_text(token + "\n")
    return path, token


def test_the_token_is_required_on_the_api(
    data_root: Path, dcmtk: dict[str, str], token_file: tuple[Path, str]
) -> None:
    path, token = token_file
    with wlmd_with_api(data_root, ["--api-token-file", str(path)]) as api:
        areas = f"{api.base}/api/areas"
        missing = request("GET", areas)
        assert missing.status == 401 and missing.json()["kind"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        assert request("GET", areas, token="wrong-token-0123456789").status == 401
        assert request("GET", f"{api.base}/openapi.json").status == 401
        assert request("POST", entries_url(api), entry_json()).status == 401
        assert request("GET", areas, token=token).status == 200
        assert request("GET", f"{api.base}/").status == 200, "the page itself has no data"


def test_https_with_the_api_certificate(
    data_root: Path, dcmtk: dict[str, str], tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    options = ["--api-tls-cert", str(cert), "--api-tls-key", str(key)]
    with wlmd_with_api(data_root, options, scheme="https") as api:
        context = ssl.create_default_context(cafile=str(cert))
        reply = request("GET", f"{api.base}/api/areas", context=context)
        assert reply.status == 200 and "WLMD" in reply.json()["areas"]
        assert "rest api listening on https://127.0.0.1:" in api.log()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--api-listen-address", "0.0.0.0"],
         "--api-listen-address 0.0.0.0 is not loopback: it needs --api-tls-cert (HTTPS)"),
        (["--api-listen-address", "", "--api-tls-cert", "{cert}"],
         "--api-listen-address all interfaces is not loopback: it needs --api-token-file"),
        (["--api-token-file", "{short}"], "must have at least 16 characters"),
    ],
)  # fmt: skip
def test_unprotected_exposure_stops_start_up(
    options: list[str], message: str, tmp_path: Path, data_root: Path
) -> None:
    cert = tmp_path / "both.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=wlmd", "-keyout", str(cert), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (tmp_path / "short").write_text("short\n")
    filled = [o.replace("{cert}", str(cert)).replace("{short}", str(tmp_path / "short"))
              for o in options]  # fmt: skip
    port = servers.free_port()
    proc = servers.run_wlmd_cli(
        [
            "--listen-address",
            "127.0.0.1",
            "--api-port",
            str(servers.free_port()),
            *filled,
            "-dfp",
            str(data_root),
            str(port),
        ]
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"wlmd: {message}"] or message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_api_port_in_use_stops_start_up(data_root: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        api_port = taken.getsockname()[1]
        proc = servers.run_wlmd_cli(
            [
                "--listen-address",
                "127.0.0.1",
                "--api-port",
                str(api_port),
                "-dfp",
                str(data_root),
                str(servers.free_port()),
            ]
        )
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{api_port} (--api-port): Address already in use" in (
        proc.stdout + proc.stderr
    )


# --- supervision ----------------------------------------------------------------------


def test_the_api_process_is_a_supervised_child(data_root: Path, dcmtk: dict[str, str]) -> None:
    """Killed, it is restarted (after 1 s) on the same socket; SIGTERM stops it with wlmd."""
    with wlmd_with_api(data_root) as api:

        def api_children() -> list[int]:
            return [p for p in procs.children(api.server.proc.pid) if "rest api" in procs.title(p)]

        (first,) = procs.wait_for(api_children, "the rest api child")  # type: ignore[misc]
        os.kill(first, signal.SIGKILL)
        procs.wait_for(lambda: api_children() and api_children() != [first], "a new rest api child")
        reply = request("GET", f"{api.base}/api/areas")
        assert reply.status == 200, "served again, on the socket the supervisor kept"
        assert "rest api (pid" in api.log() and "killed by SIGKILL; restarting" in api.log()
        procs.stop_gracefully(api.server.proc, api.server.log_path, 30)
        assert "rest api stopped" in api.log()


def test_a_held_lock_answers_503_naming_the_holder(data_root: Path, dcmtk: dict[str, str]) -> None:
    """--lock-timeout bounds the API's wait for the area's lock; the reason names who holds it."""
    import fcntl

    with wlmd_with_api(data_root, ["--lock-timeout", "1"]) as api:
        with open(data_root / "OTHER" / "lockfile", "r+b") as lock:
            fcntl.lockf(lock, fcntl.LOCK_EX)  # as a RIS writing a batch
            reply = request("POST", entries_url(api, area="OTHER"), entry_json())
        assert reply.status == 503 and reply.json()["kind"] == "lock-timeout", reply.body
        assert str(os.getpid()) in reply.json()["reason"]
        written = request("POST", entries_url(api, area="OTHER"), entry_json())
        assert written.status == 201, "served again once the lock is free"
        assert request("DELETE", api.base + written.headers["Location"]).status == 204
