"""The API's OpenAPI 3.0 description, served at ``/openapi.json``.

Written out rather than generated: the API is small, and a document kept by
hand says what the responses mean (the error kinds, where a reason comes
from), which a generator could not. ``tests/integration/test_api.py`` checks
that every route is described.
"""

from __future__ import annotations

from typing import Any

from wlmd import __version__

_AREA = {
    "name": "area",
    "in": "path",
    "required": True,
    "description": "storage area = the called AE title modalities query",
    "schema": {"type": "string", "maxLength": 16},
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "entry id from a list or create response (never patient data)",
    "schema": {"type": "string", "pattern": "^(order|file)-[0-9a-f]{32}$"},
}


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": kind}}  # fmt: skip


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


_ERRORS = {
    "400": _error("bad input (not DICOM JSON, a bad query parameter)"),
    "401": _error("no or wrong bearer token (with --api-token-file)"),
    "404": _error("no such storage area or entry"),
    "503": _error("the storage area's lock was held too long, or the area is unusable"),
}
_DICOM_JSON = {"application/dicom+json": {"schema": {"type": "object"}}}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "wlmd worklist authoring API",
        "version": __version__,
        "description": (
            "Create, list, get and delete Modality Worklist entries of wlmd's storage "
            "areas. Entries are DICOM JSON (PS3.18 F.2). A refused entry's reason is "
            "exactly what `wlmctl validate` and the server say about such a file."
        ),
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["kind", "reason"],
                "properties": {
                    "kind": {
                        "type": "string",
                        "enum": [
                            "rejected",
                            "bad-input",
                            "not-found",
                            "lock-timeout",
                            "area-unavailable",
                            "unauthorized",
                            "too-large",
                            "failed",
                        ],
                    },
                    "reason": {"type": "string", "description": "one line, no patient data"},
                },
            },
            "Summary": {
                "type": "object",
                "properties": {
                    name: {"type": "string"}
                    for name in (
                        "id",
                        "PatientName",
                        "PatientID",
                        "AccessionNumber",
                        "Modality",
                        "ScheduledStationAETitle",
                        "ScheduledProcedureStepStartDate",
                        "ScheduledProcedureStepStartTime",
                    )
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/areas": {
            "get": {
                "summary": "the storage areas",
                "responses": {"200": {"description": "area names"}, "401": _ERRORS["401"]},
            }
        },
        "/api/areas/{area}/entries": {
            "parameters": [_AREA],
            "get": {
                "summary": "list the entries the server serves (QIDO-RS-like matching)",
                "parameters": [
                    _query("PatientID", "exact match"),
                    _query("AccessionNumber", "exact match"),
                    _query("Modality", "exact match, first SPS item"),
                    _query("ScheduledStationAETitle", "exact match, first SPS item"),
                    _query(
                        "ScheduledProcedureStepStartDate",
                        "YYYYMMDD or a range YYYYMMDD-YYYYMMDD (either side may be empty)",
                    ),
                    _query("limit", "at most this many entries (at most 10000)", "integer"),
                    _query("offset", "skip this many entries first", "integer"),
                ],
                "responses": {
                    "200": {
                        "description": "one page of entries by SPS start date and time, the "
                        "total matching, and the files the server skips with the reason",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "total": {"type": "integer"},
                                        "entries": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Summary"},
                                        },
                                        "skipped": {"type": "array", "items": {"type": "object"}},
                                    },
                                }
                            }
                        },
                    },
                    **_ERRORS,
                },
            },
            "post": {
                "summary": "create or update an entry (one DICOM JSON data set)",
                "description": (
                    "Missing StudyInstanceUID, RequestedProcedureID, ScheduledProcedureStepID "
                    "and AccessionNumber are generated. The order identity (StudyInstanceUID + "
                    "SPS ID, else AccessionNumber) names the file: the same order again "
                    "replaces it (200) instead of adding one (201)."
                ),
                "requestBody": {"required": True, "content": _DICOM_JSON},
                "responses": {
                    "201": {"description": "created; Location names the entry"},
                    "200": {"description": "replaced the entry of the same order"},
                    "413": _error("body over 1 MiB"),
                    "422": _error("the server would skip the entry; the reason says why"),
                    **_ERRORS,
                },
            },
        },
        "/api/areas/{area}/entries/{id}": {
            "parameters": [_AREA, _ID],
            "get": {
                "summary": "one entry as DICOM JSON",
                "responses": {
                    "200": {"description": "the entry", "content": _DICOM_JSON},
                    **_ERRORS,
                },
            },
            "delete": {
                "summary": "remove one entry",
                "responses": {"204": {"description": "removed"}, **_ERRORS},
            },
        },
        "/openapi.json": {
            "get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI"}}}
        },
    },
}
