"""Issue HC1 tokens: "HC1:" + Base45(zlib(COSE_Sign1(CWT))).

The pieces are public so test-vector scripts can build malformed tokens step by step.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keys import base45
from keys.cbor import issue_dumps
from keys.cose import CoseForm, KidPlacement, Signer, sign1

if TYPE_CHECKING:
    from keys.issuer import Issuer

__all__ = [
    "CLAIM_EXP",
    "CLAIM_HCERT",
    "CLAIM_IAT",
    "CLAIM_ISS",
    "HC1_PREFIX",
    "cose_bytes",
    "cwt_bytes",
    "hc1_from_cose",
    "issue_token",
]

HC1_PREFIX = "HC1:"
CLAIM_ISS = 1
CLAIM_EXP = 4
CLAIM_IAT = 6
CLAIM_HCERT = -260
HCERT_EU_DCC = 1


def cwt_bytes(
    dcc: Mapping[str, Any], *, iat: int | None, exp: int | None, iss: str | None = None
) -> bytes:
    """CBOR of the CWT claims {1: iss, 4: exp, 6: iat, -260: {1: dcc}}; None claims are left out."""
    claims: dict[int, Any] = {}
    if iss is not None:
        claims[CLAIM_ISS] = iss
    if exp is not None:
        claims[CLAIM_EXP] = int(exp)
    if iat is not None:
        claims[CLAIM_IAT] = int(iat)
    claims[CLAIM_HCERT] = {HCERT_EU_DCC: dict(dcc)}
    return issue_dumps(claims)


def cose_bytes(
    signer: Signer,
    payload: bytes,
    *,
    kid: bytes | None,
    kid_placement: KidPlacement = "protected",
    cose_form: CoseForm = "tag18",
    alg: int | None = None,
) -> bytes:
    """COSE_Sign1 over an arbitrary payload (thin alias of :func:`keys.cose.sign1`)."""
    return sign1(payload, signer, kid=kid, kid_placement=kid_placement, form=cose_form, alg=alg)


def hc1_from_cose(cose: bytes) -> str:
    """Compress (zlib level 9), Base45-encode and prefix with "HC1:"."""
    return HC1_PREFIX + base45.encode(zlib.compress(cose, 9))


def issue_token(
    issuer: Issuer,
    dcc: Mapping[str, Any],
    *,
    iat: int,
    exp: int,
    iss: str | None = None,
    kid_placement: KidPlacement = "protected",
    cose_form: CoseForm = "tag18",
) -> str:
    """Sign ``dcc`` as ``issuer`` and return the HC1 token string."""
    payload = cwt_bytes(dcc, iat=iat, exp=exp, iss=issuer.country if iss is None else iss)
    cose = sign1(payload, issuer, kid=issuer.kid, kid_placement=kid_placement, form=cose_form)
    return hc1_from_cose(cose)
