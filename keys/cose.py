"""Build COSE_Sign1 messages (RFC 9052) the way HCERT issuers do.

Only signing lives here; verification is in :mod:`keys.registry` (keys) and the verifier.
The CBOR is cbor2's (keys.cbor.issue_dumps: definite lengths, shortest heads, maps in
insertion order; the same bytes as the hand-written keys.cbor.dumps,
tests/keys/test_cbor2_issuing.py).
"""

from __future__ import annotations

from typing import Literal, Protocol

import cbor2

from keys.cbor import issue_dumps

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_PS256",
    "ALG_IDS",
    "HEADER_ALG",
    "HEADER_KID",
    "Signer",
    "sig_structure",
    "sign1",
]

ALG_ES256 = -7
ALG_EDDSA = -8
ALG_PS256 = -37
ALG_IDS: dict[str, int] = {"ES256": ALG_ES256, "PS256": ALG_PS256, "EdDSA": ALG_EDDSA}

HEADER_ALG = 1
HEADER_KID = 4
TAG_COSE_SIGN1 = 18
TAG_CWT = 61

KidPlacement = Literal["protected", "unprotected", "both", "none"]
CoseForm = Literal["tag18", "untagged", "tag61"]


class Signer(Protocol):
    """Anything that signs like an issuer: its COSE alg id and a raw-signature function."""

    @property
    def cose_alg(self) -> int: ...

    def sign(self, data: bytes) -> bytes:
        """Return the raw COSE signature over ``data`` (ES256: r||s, 64 bytes)."""
        ...


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The bytes a COSE_Sign1 signature covers: ["Signature1", protected, aad, payload]."""
    return issue_dumps(["Signature1", protected, external_aad, payload])


def sign1(
    payload: bytes,
    signer: Signer,
    *,
    kid: bytes | None,
    kid_placement: KidPlacement = "protected",
    form: CoseForm = "tag18",
    alg: int | None = None,
) -> bytes:
    """Sign ``payload`` and return the encoded COSE_Sign1 message.

    ``alg`` overrides the alg id written into the protected header (the signature is
    still made with the signer's own algorithm): used to build mismatching tokens.
    """
    if kid_placement not in ("protected", "unprotected", "both", "none"):
        raise ValueError(f"unknown kid placement {kid_placement!r}")
    if form not in ("tag18", "untagged", "tag61"):
        raise ValueError(f"unknown COSE form {form!r}")
    protected_map: dict[int, object] = {HEADER_ALG: signer.cose_alg if alg is None else alg}
    unprotected: dict[int, object] = {}
    if kid is not None:
        if kid_placement in ("protected", "both"):
            protected_map[HEADER_KID] = kid
        if kid_placement in ("unprotected", "both"):
            unprotected[HEADER_KID] = kid
    protected = issue_dumps(protected_map)
    signature = signer.sign(sig_structure(protected, payload))
    message: object = [protected, unprotected, payload, signature]
    if form == "tag18":
        message = cbor2.CBORTag(TAG_COSE_SIGN1, message)
    elif form == "tag61":
        message = cbor2.CBORTag(TAG_CWT, cbor2.CBORTag(TAG_COSE_SIGN1, message))
    return issue_dumps(message)
