"""The HTTP application: routes, the JSON error bodies, authentication and the request line.

Endpoints per storage area (the called AE title a modality queries), in the
spirit of dcm4chee-arc's ``/aets/{aet}/rs/mwlitems`` and QIDO-RS (PS3.18
10.6): entries go in and out as DICOM JSON (PS3.18 F.2); the list takes the
QIDO-like parameters PatientID, AccessionNumber, Modality,
ScheduledStationAETitle, ScheduledProcedureStepStartDate (a date or a DICOM
range, PS3.4 C.2.2.2.5), limit and offset. Errors are ``{"kind", "reason"}``
where the reason of a refused entry is the authoring module's, i.e. what
``wlmctl validate`` and the server's skip line say.

Logging (issue 14: no patient data above debug): one info line per request
with the method, the *route template* (``/api/areas/{area}/entries``, never
the query string, which may carry a PatientID), the status, the duration and
the client address. Uvicorn's own access log is off.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydicom.dataset import Dataset
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from wlmd.api import openapi
from wlmd.api.entries import Areas
from wlmd.authoring.errors import (
    AreaProblem,
    AuthoringError,
    BadInput,
    EntryRejected,
    LockTimeout,
    NotFound,
)
from wlmd.authoring.selection import Selection, date_range
from wlmd.authoring.sources import from_json

LOG = logging.getLogger("wlmd.api")
STATIC = os.path.join(os.path.dirname(__file__), "static")
DICOM_JSON = "application/dicom+json"
#: No worklist entry is this big (wlmd's own file limit is 64 MiB; an entry is a few KiB).
MAX_BODY = 1024 * 1024
MAX_LIMIT = 10000
FILTERS = ("PatientID", "AccessionNumber", "Modality", "ScheduledStationAETitle")
PAGING = ("limit", "offset", "ScheduledProcedureStepStartDate")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

_STATUS = {
    EntryRejected: (422, "rejected"),
    BadInput: (400, "bad-input"),
    NotFound: (404, "not-found"),
    LockTimeout: (503, "lock-timeout"),
    AreaProblem: (503, "area-unavailable"),
}


def error(status: int, kind: str, reason: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"kind": kind, "reason": reason}, status_code=status, headers=_no_store(headers)
    )


def _no_store(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Responses carry patient data: no caching by browsers or proxies."""
    return {"Cache-Control": "no-store", **(headers or {})}


def _failure(exc: AuthoringError) -> Response:
    for kind, (status, name) in _STATUS.items():
        if isinstance(exc, kind):
            return error(status, name, exc.reason)
    return error(500, "failed", exc.reason)


def build(areas: Areas, token: str | None) -> Starlette:
    """The application over ``areas``; ``token`` (if set) is required on /api and /openapi.json."""

    async def list_areas(request: Request) -> Response:
        try:
            names = await run_in_threadpool(areas.names)
        except AuthoringError as exc:
            return _failure(exc)
        return JSONResponse({"areas": names}, headers=_no_store())

    async def list_entries(request: Request) -> Response:
        area = request.path_params["area"]
        params = request.query_params
        unknown = sorted(set(params) - set(FILTERS) - set(PAGING))
        if unknown:
            return error(400, "bad-input", f"unknown query parameter {unknown[0]}")
        try:
            limit = _number(params.get("limit"), "limit", MAX_LIMIT)
            offset = _number(params.get("offset"), "offset", None) or 0
            low = high = None
            if dates := params.get("ScheduledProcedureStepStartDate"):
                low, high = date_range(dates)
            selection = Selection(
                patient_id=params.get("PatientID") or None,
                accession=params.get("AccessionNumber") or None,
                modality=params.get("Modality") or None,
                station=params.get("ScheduledStationAETitle") or None,
                date_from=low,
                date_to=high,
            )
            listing = await run_in_threadpool(areas.list, area, selection, offset, limit)
        except AuthoringError as exc:
            return _failure(exc)
        body = {
            "total": listing.total,
            "offset": offset,
            "limit": limit,
            "entries": listing.entries,
            "skipped": listing.skipped,
        }
        return JSONResponse(body, headers=_no_store())

    async def get_entry(request: Request) -> Response:
        area, id_ = request.path_params["area"], request.path_params["id"]
        try:
            ds = await run_in_threadpool(areas.get, area, id_)
        except AuthoringError as exc:
            return _failure(exc)
        return _dicom_json(ds)

    async def put_entry(request: Request) -> Response:
        area = request.path_params["area"]
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            return error(413, "too-large", f"an entry is at most {MAX_BODY} bytes")
        body = await request.body()
        if len(body) > MAX_BODY:
            return error(413, "too-large", f"an entry is at most {MAX_BODY} bytes")
        try:
            datasets = from_json(body)
            if len(datasets) != 1:
                raise BadInput(f"one DICOM JSON data set per request, not {len(datasets)}")
            id_, written = await run_in_threadpool(areas.put, area, datasets[0])
        except AuthoringError as exc:
            return _failure(exc)
        location = f"/api/areas/{area}/entries/{id_}"
        return JSONResponse(
            {"id": id_, "replaced": written.replaced, "generated": written.generated},
            status_code=200 if written.replaced else 201,
            headers=_no_store({"Location": location}),
        )

    async def delete_entry(request: Request) -> Response:
        area, id_ = request.path_params["area"], request.path_params["id"]
        try:
            await run_in_threadpool(areas.remove, area, id_)
        except NotFound:
            return error(404, "not-found", f"no entry {id_} in {area}")
        except AuthoringError as exc:
            return _failure(exc)
        return Response(status_code=204, headers=_no_store())

    async def describe(request: Request) -> Response:
        return JSONResponse(openapi.DOCUMENT)

    async def page(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"), headers=_PAGE_HEADERS)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/openapi.json", describe, methods=["GET"]),
        Route("/api/areas", list_areas, methods=["GET"]),
        Route("/api/areas/{area}/entries", list_entries, methods=["GET"]),
        Route("/api/areas/{area}/entries", put_entry, methods=["POST"]),
        Route("/api/areas/{area}/entries/{id}", get_entry, methods=["GET"]),
        Route("/api/areas/{area}/entries/{id}", delete_entry, methods=["DELETE"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_RequestLine, routes=routes, token=token)
    return app


#: The page loads nothing from elsewhere (no CDN: it must work offline at a modality).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _number(text: str | None, name: str, maximum: int | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise BadInput(f"{name} must be a non-negative integer")
    value = int(text)
    if maximum is not None and value > maximum:
        raise BadInput(f"{name} is at most {maximum}")
    return value


def _dicom_json(ds: Dataset) -> Response:
    body = json.dumps(ds.to_json_dict(), ensure_ascii=False).encode("utf-8")
    return Response(body, media_type=DICOM_JSON, headers=_no_store())


class _RequestLine:
    """Bearer token check (when configured) and the one info line per request."""

    def __init__(self, app: Asgi, routes: list[Route | Mount], token: str | None) -> None:
        self.app = app
        self.routes = routes
        self.token = token.encode("utf-8") if token else None

    def template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path + ("/..." if isinstance(route, Mount) else "")
        return "(no route)"

    def authorised(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        path = scope.get("path", "")
        if not (path.startswith("/api/") or path == "/openapi.json"):
            return True  # the page itself carries no data; what it loads needs the token
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given, self.token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.authorised(scope):
                await self.app(scope, receive, sending)
            else:
                reply = error(
                    401, "unauthorized", "a bearer token is required",
                    {"WWW-Authenticate": 'Bearer realm="wlmd"'},
                )  # fmt: skip
                await reply(scope, receive, sending)
        finally:
            client = scope.get("client") or ("-", 0)
            LOG.info(
                "%s %s %d %.1f ms from %s",
                scope.get("method", "-"),
                self.template(scope),
                status,
                (time.monotonic() - started) * 1000,
                client[0],
            )
