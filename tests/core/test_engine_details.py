"""A failure the decoder can name gets a verdict `detail` that names it (CONTRACT section 1:
"its detail names what was wrong"); other failures keep their reason's sentence."""

from __future__ import annotations

import time

from keys.issuer import Issuer
from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from keys.token import issue_token
from verifier import Verifier
from verifier.reasons import DETAILS, Reason
from verifier.store import MemoryStore

NOW = int(time.time())


def _verifier(issuer: Issuer) -> Verifier:
    return Verifier(MemoryStore(TrustRegistry.from_dict({"keys": [issuer.trust_entry()]})))


def test_unknown_value_set_code_names_the_field() -> None:
    issuer = Issuer.generate(country="RU", alg="ES256")
    dcc = sample_dcc("vaccination", at=NOW)
    dcc["v"][0]["co"] = "XY"
    verdict = _verifier(issuer).verify(issue_token(issuer, dcc, iat=NOW, exp=NOW + 86400))
    assert verdict.reason is Reason.BAD_PAYLOAD
    assert (
        verdict.detail == "The certificate's co is not a code of the EU value set country-2-codes."
    )
    assert verdict.holder is None  # refused before anything is shown


def test_iat_after_exp_is_named_and_the_next_scan_gets_its_own_detail() -> None:
    issuer = Issuer.generate(country="RU", alg="ES256")
    v = _verifier(issuer)
    bad = issue_token(issuer, sample_dcc("test", at=NOW), iat=NOW + 100, exp=NOW)
    first = v.verify(bad)
    assert first.reason is Reason.BAD_CWT
    assert first.detail == "The token was issued (iat) after it expires (exp)."
    # a failure without a specific sentence must not inherit the previous one
    other = v.verify("HC1:NCFOXN")
    assert other.reason is not None and other.detail == DETAILS[other.reason]
    assert v.verify("not a token").detail == DETAILS[Reason.BAD_PREFIX]
