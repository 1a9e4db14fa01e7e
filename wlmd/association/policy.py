"""Association acceptance policy, in wlmscpfs's order (dcmwlm WlmActivityManager).

``--refuse`` → application context → ``--reject`` (no Implementation Class UID)
→ (the supervisor's ``--max-associations`` and, wlmd only,
``--max-associations-per-host``) → the called AE title offers a service (in
wlmscpfs: names a storage area; see :mod:`wlmd.services.routing`) → (wlmd)
the calling AE title may use it (``--allowed-callers``).
Pure: the caller passes in what it knows about the request.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The DICOM Application Context Name (PS3.7 A.2.1).
DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

# A-ASSOCIATE-RJ result / source / reason (PS3.8 9.3.4)
REJECTED_PERMANENT = 0x01
REJECTED_TRANSIENT = 0x02
SOURCE_SERVICE_USER = 0x01
SOURCE_SERVICE_PROVIDER_PRESENTATION = 0x03
REASON_NO_REASON_GIVEN = 0x01
REASON_APPLICATION_CONTEXT_NOT_SUPPORTED = 0x02
REASON_CALLING_AE_NOT_RECOGNIZED = 0x03
REASON_CALLED_AE_NOT_RECOGNIZED = 0x07
REASON_LOCAL_LIMIT_EXCEEDED = 0x02


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ to send, and why (for the log)."""

    result: int
    source: int
    reason: int
    why: str


REFUSED = Rejection(
    REJECTED_PERMANENT, SOURCE_SERVICE_USER, REASON_NO_REASON_GIVEN, "refused (--refuse)"
)
BAD_APPLICATION_CONTEXT = Rejection(
    REJECTED_TRANSIENT,
    SOURCE_SERVICE_USER,
    REASON_APPLICATION_CONTEXT_NOT_SUPPORTED,
    "application context not supported",
)
NO_IMPLEMENTATION_UID = Rejection(
    REJECTED_PERMANENT,
    SOURCE_SERVICE_USER,
    REASON_NO_REASON_GIVEN,
    "no implementation class UID (--reject)",
)
TOO_MANY_ASSOCIATIONS = Rejection(
    REJECTED_TRANSIENT,
    SOURCE_SERVICE_PROVIDER_PRESENTATION,
    REASON_LOCAL_LIMIT_EXCEEDED,
    "too many associations (--max-associations)",
)
#: wlmd only: the same A-ASSOCIATE-RJ as the global limit (a modality treats both
#: as "try again later"), with its own reason for the log.
TOO_MANY_FROM_HOST = Rejection(
    REJECTED_TRANSIENT,
    SOURCE_SERVICE_PROVIDER_PRESENTATION,
    REASON_LOCAL_LIMIT_EXCEEDED,
    "too many associations from this host (--max-associations-per-host)",
)
UNKNOWN_CALLED_AE = Rejection(
    REJECTED_PERMANENT,
    SOURCE_SERVICE_USER,
    REASON_CALLED_AE_NOT_RECOGNIZED,
    "called AE title offers no service (no storage area of that name)",
)


CALLER_NOT_ALLOWED = Rejection(
    REJECTED_PERMANENT,
    SOURCE_SERVICE_USER,
    REASON_CALLING_AE_NOT_RECOGNIZED,
    "calling AE title may not query this storage area (--allowed-callers)",
)


def per_host_limit(max_associations: int, max_per_host: int | None) -> int:
    """The effective ``--max-associations-per-host``: 0 means no per-host limit.

    Unset, it is half of ``--max-associations`` (at least 1): one host that
    opens silent connections (a crash-looping modality, a port scanner, a
    misconfigured health check) can then take at most half the slots, and the
    rest of the department still gets in. A limit at or above
    ``--max-associations`` can never bite, so it is reported as off.
    """
    limit = max(1, max_associations // 2) if max_per_host is None else max_per_host
    return 0 if limit >= max_associations else limit


def check_connection(
    *, running: int, from_host: int, max_associations: int, max_per_host: int
) -> Rejection | None:
    """The supervisor's limits, checked before forking: the rejection to send, or None.

    ``running`` counts all live workers, ``from_host`` those serving the
    connecting peer's address; ``max_per_host`` is :func:`per_host_limit`'s value.
    """
    if running >= max_associations:
        return TOO_MANY_ASSOCIATIONS
    if max_per_host and from_host >= max_per_host:
        return TOO_MANY_FROM_HOST
    return None


def check_association(
    *,
    refuse: bool,
    reject_without_implementation_uid: bool,
    application_context: str,
    implementation_class_uid: str,
    called_ae_known: bool,
    caller_allowed: bool = True,
) -> Rejection | None:
    """The rejection to send, or None to go on negotiating."""
    if refuse:
        return REFUSED
    if application_context != DICOM_APPLICATION_CONTEXT:
        return BAD_APPLICATION_CONTEXT
    if reject_without_implementation_uid and not implementation_class_uid:
        return NO_IMPLEMENTATION_UID
    if not called_ae_known:
        return UNKNOWN_CALLED_AE
    if not caller_allowed:
        return CALLER_NOT_ALLOWED
    return None
