"""Per-scan checks of the engine: the signing key's validity at the time of verification,
iss against the key's country, out-of-range times, high-S signatures and the SIGNATURE
hash, COUNTRYCODEUCI with iss and co, and one meaning of certificate.valid_until."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from engine_support import (
    AT,
    DAY,
    DE,
    ES,
    NOW,
    Snapshots,
    assemble,
    key_of,
    signed,
    token,
    verifier_for,
)

from keys.cbor import dumps
from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from verifier import Reason, Verifier

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def h16(data: bytes | str) -> bytes:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).digest()[:16]


# -- key_expired: the key's validity at the time of verification ---------------------------


def test_key_validity_is_checked_at_the_time_of_verification() -> None:
    nb, na = NOW - 10 * DAY, NOW + 10 * DAY
    v = verifier_for([key_of(ES, not_before=nb, not_after=na)])
    # exp beyond notAfter, iat before notBefore: neither alone is an error
    t = token(iat=nb - 5 * DAY, exp=na + 100 * DAY)
    ok = v.verify(t, at=AT)
    assert ok.valid
    assert (
        ok.certificate is not None and ok.certificate["valid_until"] == "2021-11-25T12:00:00Z"
    )  # the key's notAfter ends what the token admits
    assert v.verify(t, at=na).valid
    late = v.verify(t, at=na + 1)
    assert late.reason is Reason.KEY_EXPIRED
    assert late.holder == ok.holder and late.certificate == ok.certificate
    early = v.verify(t, at=nb - 1)
    assert early.reason is Reason.KEY_EXPIRED and early.holder is not None
    assert v.verify(t, at=nb).valid
    assert v.cache_misses == 1  # decided per scan, from the one cached proof


def test_key_expired_comes_before_token_expired() -> None:
    v = verifier_for([key_of(ES, not_after=NOW)])
    t = token(iat=NOW - DAY, exp=NOW + DAY)
    assert v.verify(t, at=NOW + 2 * DAY).reason is Reason.KEY_EXPIRED


# -- iss against the signing key's country -------------------------------------------------


@pytest.mark.parametrize(
    ("iss", "reason"),
    [
        ("RU", None),
        ("ru", None),
        (None, None),
        ("Ministry of Health", None),
        ("RUS", None),
        ("DE", Reason.UNKNOWN_KEY),
        ("de", Reason.UNKNOWN_KEY),
        ("XY", Reason.UNKNOWN_KEY),
    ],
)
def test_iss_country_must_match_the_key(iss: str | None, reason: Reason | None) -> None:
    v = verifier_for([key_of(ES, country="RU")])
    verdict = v.verify(token(iss=iss), at=AT)
    assert verdict.reason is reason
    if reason is not None:
        assert verdict.holder is None and v.status()["cache"]["entries"] == 0


def test_iss_country_is_free_when_the_key_has_none() -> None:
    v = verifier_for([key_of(ES, country=None)])
    assert v.verify(token(iss="DE"), at=AT).valid


def test_iss_picks_among_colliding_kids() -> None:
    """A DE key sharing the RU key's kid: a token claiming DE is only tried with it."""
    de_same_kid = key_of(DE, country="DE")
    de_same_kid = type(de_same_kid)(DE.private_key.public_key(), ES.kid, country="DE")
    v = verifier_for([de_same_kid, key_of(ES, country="RU")])
    assert v.verify(token(iss="RU"), at=AT).valid
    assert v.verify(token(iss="DE"), at=AT).reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("iss", "shown"),
    [
        ("Ministry of Health", "Ministry of Health"),
        ("RU\u202eEVIL\x07", "RU\ufffdEVIL\ufffd"),  # bidi override and a control character
        ("M" * 200, "M" * 79 + "\u2026"),  # a free-text iss is cut for display
    ],
)
def test_issuer_is_shown_safely(iss: str, shown: str) -> None:
    v = verifier_for([key_of(ES, country=None)])
    verdict = v.verify(token(iss=iss), at=AT)
    assert verdict.valid
    assert verdict.certificate is not None and verdict.certificate["issuer"] == shown


# -- out-of-range times never raise ----------------------------------------------------------


@pytest.mark.parametrize(
    ("iat", "exp"),
    [
        (NOW - 3600, 253402300800),  # year 10000
        (-62135596801, NOW + DAY),  # year 0
        (NOW + DAY, NOW + DAY - 1),  # iat after exp
        (NOW - 3600, -(1 << 61)),
    ],
)
def test_out_of_range_times_are_bad_cwt(iat: int, exp: int) -> None:
    v = verifier_for([key_of(ES)], "none")
    verdict = v.verify(token(iat=iat, exp=exp), at=AT)
    assert verdict.reason is Reason.BAD_CWT and verdict.holder is None
    assert v.status()["cache"]["entries"] == 0


def test_last_representable_exp_is_fine() -> None:
    v = verifier_for([key_of(ES)], "none")
    verdict = v.verify(token(exp=253402300799), at=AT)
    assert verdict.valid and verdict.certificate is not None
    assert verdict.certificate["valid_until"] == "9999-12-31T23:59:59Z"
    assert v.verify(token(iat=NOW, exp=NOW), at=AT).valid  # iat == exp is allowed


# -- high-S ECDSA and the SIGNATURE revocation hash -------------------------------------------


def _high_s_pair() -> tuple[str, str, bytes]:
    payload = dumps(
        {1: "RU", 4: NOW + 300 * DAY, 6: NOW - 3600, -260: {1: sample_dcc("vaccination", at=NOW)}}
    )
    protected, sig = signed(ES, payload)
    r, s = sig[:32], int.from_bytes(sig[32:], "big")
    other = (P256_N - s).to_bytes(32, "big")
    return assemble(protected, payload, sig), assemble(protected, payload, r + other), r


def test_high_s_signatures_are_accepted() -> None:
    low, high, _ = _high_s_pair()
    assert low != high
    v = verifier_for([key_of(ES)])
    assert v.verify(low, at=AT).valid and v.verify(high, at=AT).valid


def test_signature_revocation_uses_r_so_the_high_s_copy_is_refused() -> None:
    low, high, r = _high_s_pair()
    store = Snapshots(TrustRegistry([key_of(ES)]), revoked=[h16(r)])
    v = Verifier(store)  # type: ignore[arg-type]
    assert v.verify(low, at=AT).reason is Reason.REVOKED
    assert v.verify(high, at=AT).reason is Reason.REVOKED


# -- COUNTRYCODEUCI: iss+ci and co+ci -----------------------------------------------------------


def test_countrycodeuci_checked_with_iss_and_with_co() -> None:
    dcc = sample_dcc("vaccination", at=NOW, country="DE")
    ci = dcc["v"][0]["ci"]
    t = token(dcc=dcc, iss="RU")  # issued under RU, vaccinated in DE
    store = Snapshots(TrustRegistry([key_of(ES)]))
    v = Verifier(store)  # type: ignore[arg-type]
    assert v.verify(t, at=AT).valid
    for revoked in (h16("RU" + ci), h16("DE" + ci), h16(ci)):
        store.replace(revoked=[revoked])
        assert v.verify(t, at=AT).reason is Reason.REVOKED
    store.replace(revoked=[h16("FR" + ci), h16("RU" + ci.lower())])
    assert v.verify(t, at=AT).valid


# -- certificate.valid_until means one thing in every verdict ---------------------------------


def _until(verdict: Any) -> str:
    assert verdict.certificate is not None
    return str(verdict.certificate["valid_until"])


def test_valid_until_is_the_same_whatever_the_verdict() -> None:
    dcc = sample_dcc("recovery", at=NOW)
    ci = dcc["r"][0]["ci"]
    t = token(dcc=dcc, exp=NOW + 400 * DAY)
    store = Snapshots(TrustRegistry([key_of(ES)]))
    v = Verifier(store)  # type: ignore[arg-type]
    valid = v.verify(t, at=AT)
    assert valid.valid
    expected = _until(valid)
    store.replace(revoked=[h16(ci)])
    revoked = v.verify(t, at=AT)
    assert revoked.reason is Reason.REVOKED and _until(revoked) == expected
    store.replace(registry=[])
    absent = v.verify(t, at=AT)
    assert absent.reason is Reason.NOT_IN_REGISTRY and _until(absent) == expected
    store.replace()
    later = v.verify(t, at=AT + timedelta(days=390))
    assert later.reason is Reason.RECOVERY_EXPIRED and _until(later) == expected
    gone = v.verify(t, at=AT + timedelta(days=500))
    assert gone.reason is Reason.TOKEN_EXPIRED and _until(gone) == expected
    # key usage refuses it, with the same certificate shown
    vaccination_only = verifier_for([key_of(ES, types=["vaccination"])])
    usage = vaccination_only.verify(t, at=AT)
    assert usage.reason is Reason.KEY_USAGE and _until(usage) == expected


def test_valid_until_for_a_refused_vaccine_is_its_window() -> None:
    dcc = sample_dcc("vaccination", at=NOW)
    dcc["v"][0].update(mp="EU/1/20/1528", ma="ORG-100030215")
    assert dcc["v"][0]["dt"] == "2021-10-16"
    t = token(dcc=dcc, exp=NOW + 400 * DAY)
    venue = verifier_for([key_of(ES)]).verify(t, at=AT)
    assert venue.reason is Reason.VACCINE_NOT_ACCEPTED
    assert _until(venue) == "2022-10-16T00:00:00Z"  # dt + 365 days, as if accepted
    none = verifier_for([key_of(ES)], "none").verify(t, at=AT)
    assert none.valid and _until(none) == "2022-12-20T12:00:00Z"  # rules none: the exp
