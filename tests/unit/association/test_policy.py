"""check_association: wlmscpfs's order — refuse, application context, reject, called AE."""

from __future__ import annotations

import itertools

import pytest

from wlmd.association import policy

GOOD_CONTEXT = "1.2.840.10008.3.1.1.1"


def _expected(refuse: bool, context_ok: bool, reject: bool, impl_uid: bool, area: bool):  # type: ignore[no-untyped-def]
    if refuse:
        return policy.REFUSED
    if not context_ok:
        return policy.BAD_APPLICATION_CONTEXT
    if reject and not impl_uid:
        return policy.NO_IMPLEMENTATION_UID
    if not area:
        return policy.UNKNOWN_CALLED_AE
    return None


@pytest.mark.parametrize(
    ("refuse", "context_ok", "reject", "impl_uid", "area"),
    list(itertools.product([False, True], repeat=5)),
)
def test_order(refuse: bool, context_ok: bool, reject: bool, impl_uid: bool, area: bool) -> None:
    got = policy.check_association(
        refuse=refuse,
        reject_without_implementation_uid=reject,
        application_context=GOOD_CONTEXT if context_ok else "1.2.3.4",
        implementation_class_uid="1.2.276.0.7230010.3.0.3.6.7" if impl_uid else "",
        called_ae_known=area,
    )
    assert got == _expected(refuse, context_ok, reject, impl_uid, area)


@pytest.mark.parametrize(
    ("rejection", "result", "source", "reason"),
    [
        # values of DCMTK's WlmActivityManager::RefuseAssociation
        (policy.REFUSED, 1, 1, 1),
        (policy.BAD_APPLICATION_CONTEXT, 2, 1, 2),
        (policy.NO_IMPLEMENTATION_UID, 1, 1, 1),
        (policy.TOO_MANY_ASSOCIATIONS, 2, 3, 2),
        (policy.UNKNOWN_CALLED_AE, 1, 1, 7),
    ],
)
def test_reject_codes(rejection: policy.Rejection, result: int, source: int, reason: int) -> None:
    assert (rejection.result, rejection.source, rejection.reason) == (result, source, reason)
    assert rejection.why


@pytest.mark.parametrize("context", ["", "1.2.840.10008.3.1.1.1.1", "1.2.840.10008.3.1.1"])
def test_application_context_must_be_exact(context: str) -> None:
    got = policy.check_association(
        refuse=False,
        reject_without_implementation_uid=False,
        application_context=context,
        implementation_class_uid="1.2",
        called_ae_known=True,
    )
    assert got is policy.BAD_APPLICATION_CONTEXT


# --------------------------------------------------------------- connection limits


@pytest.mark.parametrize(
    ("max_associations", "configured", "effective"),
    [
        (50, None, 25),  # unset: half of --max-associations
        (51, None, 25),
        (3, None, 1),
        (2, None, 1),
        (1, None, 0),  # half of 1 is at least 1 = the global limit: nothing left to limit
        (50, 0, 0),  # 0 = off
        (50, 10, 10),
        (50, 50, 0),  # never bites before the global limit
        (50, 80, 0),
    ],
)
def test_per_host_limit(max_associations: int, configured: int | None, effective: int) -> None:
    assert policy.per_host_limit(max_associations, configured) == effective


@pytest.mark.parametrize(
    ("running", "from_host", "max_per_host", "expected"),
    [
        (0, 0, 2, None),
        (3, 1, 2, None),  # others' associations do not count against this host
        (3, 2, 2, policy.TOO_MANY_FROM_HOST),
        (9, 9, 2, policy.TOO_MANY_FROM_HOST),
        (10, 0, 2, policy.TOO_MANY_ASSOCIATIONS),  # the global limit is checked first
        (10, 5, 2, policy.TOO_MANY_ASSOCIATIONS),
        (9, 9, 0, None),  # 0: no per-host limit
    ],
)
def test_check_connection(
    running: int, from_host: int, max_per_host: int, expected: policy.Rejection | None
) -> None:
    got = policy.check_connection(
        running=running, from_host=from_host, max_associations=10, max_per_host=max_per_host
    )
    assert got == expected


def test_per_host_rejection_is_the_global_limits_a_associate_rj() -> None:
    """A modality cannot tell the two apart: both say "transient, local limit exceeded"."""
    ours, theirs = policy.TOO_MANY_FROM_HOST, policy.TOO_MANY_ASSOCIATIONS
    assert (ours.result, ours.source, ours.reason) == (theirs.result, theirs.source, theirs.reason)
    assert "--max-associations-per-host" in ours.why
