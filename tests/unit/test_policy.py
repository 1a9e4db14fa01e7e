"""check_association: wlmscpfs's order — refuse, application context, reject, called AE."""

from __future__ import annotations

import itertools

import pytest

from wlmd import policy

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
        has_storage_area=area,
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
        has_storage_area=True,
    )
    assert got is policy.BAD_APPLICATION_CONTEXT
