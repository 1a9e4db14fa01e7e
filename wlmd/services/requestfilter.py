"""``--request-filter FILE.py``: a site's function that rewrites or refuses C-FIND requests.

Modalities send odd queries: a station AE title that is filled in wrongly, a
date range of today only when the procedure was booked for tomorrow's early
hours, no Modality at all. Orthanc answers this with its
``IncomingWorklistRequestFilter`` Lua/Python callback; wlmd runs a Python
function from a file the administrator owns, in the worker, before matching::

    def request_filter(query, request):
        # query: the C-FIND identifier (pydicom Dataset), to change in place or replace
        # request: .calling_ae, .called_ae, .peer ("10.1.2.3:40112")
        if request.calling_ae == "CT01":
            query.ScheduledProcedureStepSequence[0].ScheduledStationAETitle = ""
        return query          # or None: the (changed) query; False: refuse it

What it returns decides:

* a Dataset, or None (the query changed in place): that identifier is matched;
* False: the query is refused with 0xC000 (Unable to process), error comment
  "refused by the request filter", and the modality shows a failed query.

An exception in the function is a fault of the filter, not of the modality's
query: it is logged (a warning with the exception type, the traceback at
debug level: the message may quote patient data) and the query is answered
as if there were no filter, so a broken filter cannot take a department's
worklist away. A file that cannot be loaded, or has no ``request_filter``,
stops start-up with one line, like a bad option. The file is loaded once, in
the supervisor before workers are forked (a change needs a restart).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

LOG = logging.getLogger("wlmd.worker")

FUNCTION = "request_filter"


class RequestFilterError(Exception):
    """The filter file cannot be used; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class RequestInfo:
    """What the filter is told about the request besides its identifier."""

    calling_ae: str
    called_ae: str
    peer: str


@dataclass(frozen=True)
class Filtered:
    """The outcome: the identifier to match, or a refusal."""

    identifier: Dataset | None
    refused: bool = False


Function = Callable[[Dataset, RequestInfo], Any]

_loaded: dict[str, Function] = {}


def load(path: str) -> Function:
    """The ``request_filter`` function of ``path`` (loaded once per process and path)."""
    if path in _loaded:
        return _loaded[path]
    spec = importlib.util.spec_from_file_location("wlmd_request_filter", path)
    if spec is None or spec.loader is None:
        raise RequestFilterError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError:
        raise RequestFilterError(f"{path}: no such file") from None
    except Exception as exc:
        raise RequestFilterError(f"{path}: {type(exc).__name__}: {exc}") from None
    function = getattr(module, FUNCTION, None)
    if not callable(function):
        raise RequestFilterError(f"{path}: defines no function {FUNCTION}(query, request)")
    _loaded[path] = function
    return function


def apply(function: Function, identifier: Dataset, info: RequestInfo, syntax: Any) -> Filtered:
    """Run the filter on ``identifier``; the identifier to match as it would arrive on the wire.

    The result is encoded and decoded again in the context's transfer syntax
    (``syntax``: a pydicom UID), so that matching sees raw elements exactly as
    it does for an unfiltered request, whatever values the filter assigned.
    """
    try:
        answer = function(identifier, info)
    except Exception as exc:
        LOG.warning(
            "request filter failed (%s) for %s -> %s: the query is answered unfiltered",
            type(exc).__name__,
            info.calling_ae,
            info.called_ae,
        )
        LOG.debug("request filter traceback", exc_info=True)
        return Filtered(identifier)
    if answer is False:
        LOG.info("request filter refused the C-FIND from %s -> %s", info.calling_ae, info.called_ae)
        return Filtered(None, refused=True)
    chosen = identifier if answer is None or answer is True else answer
    if not isinstance(chosen, Dataset):
        LOG.warning(
            "request filter returned %s (expected a Dataset, None or False): "
            "the query is answered unfiltered",
            type(answer).__name__,
        )
        return Filtered(identifier)
    try:
        data = encode(chosen, syntax.is_implicit_VR, syntax.is_little_endian)
        if data is None:
            raise ValueError("not encodable")
        return Filtered(decode(BytesIO(data), syntax.is_implicit_VR, syntax.is_little_endian))
    except Exception as exc:
        LOG.warning(
            "request filter's identifier cannot be encoded (%s): the query is answered unfiltered",
            type(exc).__name__,
        )
        return Filtered(identifier)
