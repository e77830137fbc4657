"""COSE_Sign1 + HC1 token issuing, checked with cbor2/zlib decoding and python-cwt."""

from __future__ import annotations

import time
import zlib
from typing import Any

import cbor2
import cwt
import pytest
from cryptography.hazmat.primitives import serialization

from keys import base45
from keys.cbor import dumps
from keys.cose import ALG_EDDSA, ALG_ES256, ALG_PS256, sig_structure, sign1
from keys.issuer import Issuer
from keys.registry import IssuerKey, TrustRegistry
from keys.samples import sample_dcc
from keys.token import cwt_bytes, hc1_from_cose, issue_token

ALGS = ("ES256", "PS256", "EdDSA")
COSE_ALG = {"ES256": ALG_ES256, "PS256": ALG_PS256, "EdDSA": ALG_EDDSA}
NOW = 1_700_000_000


def decode_hc1(token: str) -> Any:
    """Independent decode of an HC1 token down to the COSE structure (zlib + cbor2)."""
    assert token.startswith("HC1:")
    return cbor2.loads(zlib.decompress(base45.decode(token[4:])))


def _key(issuer: Issuer) -> IssuerKey:
    (key,) = TrustRegistry.from_dict({"keys": [issuer.trust_entry()]}).candidates(issuer.kid)
    return key


def _parts(token: str) -> tuple[bytes, dict[int, Any], bytes, bytes]:
    decoded = decode_hc1(token)
    assert isinstance(decoded, cbor2.CBORTag) and decoded.tag == 18
    protected, unprotected, payload, signature = decoded.value
    return protected, unprotected, payload, signature


@pytest.mark.parametrize("alg", ALGS)
def test_issue_and_verify_each_alg(issuers: dict[str, Issuer], alg: str) -> None:
    issuer = issuers[alg]
    dcc = sample_dcc("vaccination", at=NOW)
    token = issue_token(issuer, dcc, iat=NOW, exp=NOW + 86400)
    protected, unprotected, payload, signature = _parts(token)
    assert cbor2.loads(protected) == {1: COSE_ALG[alg], 4: issuer.kid}
    assert unprotected == {}
    assert cbor2.loads(payload) == {1: "RU", 4: NOW + 86400, 6: NOW, -260: {1: dcc}}
    if alg == "ES256":
        assert len(signature) == 64
    key = _key(issuer)
    data = sig_structure(protected, payload)
    assert key.verify(COSE_ALG[alg], signature, data) is True
    # one flipped bit anywhere -> rejected
    flipped_sig = bytes([signature[0] ^ 1]) + signature[1:]
    assert key.verify(COSE_ALG[alg], flipped_sig, data) is False
    flipped_data = data[:-1] + bytes([data[-1] ^ 0x80])
    assert key.verify(COSE_ALG[alg], signature, flipped_data) is False


@pytest.mark.parametrize("alg", ALGS)
def test_wrong_alg_rejected(issuers: dict[str, Issuer], alg: str) -> None:
    issuer = issuers[alg]
    data = b"some signed bytes"
    signature = issuer.sign(data)
    key = _key(issuer)
    for other in {-7, -8, -35, -37, 0, 999} - {COSE_ALG[alg]}:
        assert key.verify(other, signature, data) is False


def test_other_issuer_key_rejects(issuers: dict[str, Issuer]) -> None:
    data = b"payload"
    other = Issuer.generate("RU", "ES256")
    assert _key(other).verify(ALG_ES256, issuers["ES256"].sign(data), data) is False


@pytest.mark.parametrize(
    "bad_sig", [b"", b"\x00" * 63, b"\x00" * 65, b"\x00" * 64, b"\xff" * 64, b"\x01" * 200]
)
def test_es256_malformed_signatures_never_raise(es256: Issuer, bad_sig: bytes) -> None:
    assert _key(es256).verify(ALG_ES256, bad_sig, b"data") is False


@pytest.mark.parametrize("alg", ALGS)
def test_verify_never_raises_on_garbage(issuers: dict[str, Issuer], alg: str) -> None:
    key = _key(issuers[alg])
    for sig, data in [(b"", b""), (b"\x00" * 256, b"x"), (None, b"x"), (b"x" * 64, None)]:
        assert key.verify(COSE_ALG[alg], sig, data) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("placement", "protected_kid", "unprotected"),
    [
        ("protected", True, {}),
        ("unprotected", False, {4: "kid"}),
        ("both", True, {4: "kid"}),
        ("none", False, {}),
    ],
)
def test_kid_placement(
    es256: Issuer, placement: str, protected_kid: bool, unprotected: dict[int, str]
) -> None:
    token = issue_token(es256, {"ver": "1.3.0"}, iat=NOW, exp=NOW + 1, kid_placement=placement)  # type: ignore[arg-type]
    protected, unprot, payload, signature = _parts(token)
    header = cbor2.loads(protected)
    assert (4 in header) is protected_kid
    assert header[1] == ALG_ES256
    assert unprot == {k: es256.kid for k in unprotected}
    assert _key(es256).verify(ALG_ES256, signature, sig_structure(protected, payload))


@pytest.mark.parametrize(("form", "tags"), [("tag18", [18]), ("untagged", []), ("tag61", [61, 18])])
def test_cose_forms(es256: Issuer, form: str, tags: list[int]) -> None:
    token = issue_token(es256, {"ver": "1.3.0"}, iat=NOW, exp=NOW + 1, cose_form=form)  # type: ignore[arg-type]
    obj = decode_hc1(token)
    seen = []
    while isinstance(obj, cbor2.CBORTag):
        seen.append(obj.tag)
        obj = obj.value
    assert seen == tags
    assert isinstance(obj, list) and len(obj) == 4


def test_alg_override_is_written_but_signature_stays(es256: Issuer) -> None:
    cose = sign1(b"payload", es256, kid=es256.kid, alg=ALG_PS256)
    protected, _, payload, signature = cbor2.loads(cose).value
    assert cbor2.loads(protected)[1] == ALG_PS256
    data = sig_structure(protected, payload)
    assert _key(es256).verify(ALG_PS256, signature, data) is False
    assert _key(es256).verify(ALG_ES256, signature, data) is True


def test_sign1_rejects_unknown_options(es256: Issuer) -> None:
    with pytest.raises(ValueError):
        sign1(b"p", es256, kid=None, kid_placement="header")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sign1(b"p", es256, kid=None, form="tag98")  # type: ignore[arg-type]


def test_sig_structure_bytes() -> None:
    assert sig_structure(b"\xa1\x01&", b"P") == dumps(["Signature1", b"\xa1\x01&", b"", b"P"])
    assert sig_structure(b"", b"").hex() == "846a" + b"Signature1".hex() + "404040"


def test_pieces_compose_to_issue_token(es256: Issuer) -> None:
    claims = cwt_bytes({"ver": "1.3.0"}, iat=NOW, exp=NOW + 5, iss="RU")
    assert cbor2.loads(claims) == {1: "RU", 4: NOW + 5, 6: NOW, -260: {1: {"ver": "1.3.0"}}}
    assert list(cbor2.loads(claims)) == [1, 4, 6, -260]
    token = hc1_from_cose(sign1(claims, es256, kid=es256.kid))
    assert token.startswith("HC1:")
    assert decode_hc1(token).value[2] == claims
    # level-9 zlib stream header
    assert base45.decode(token[4:])[:2] == b"\x78\xda"
    # None claims are left out
    assert cbor2.loads(cwt_bytes({}, iat=None, exp=None)) == {-260: {1: {}}}


def test_iss_override(es256: Issuer) -> None:
    token = issue_token(es256, {"ver": "1.3.0"}, iat=NOW, exp=NOW + 1, iss="DE")
    assert cbor2.loads(_parts(token)[2])[1] == "DE"


@pytest.mark.parametrize("alg", ALGS)
def test_python_cwt_decodes_our_tokens(issuers: dict[str, Issuer], alg: str) -> None:
    """Interop: an independent COSE/CWT implementation verifies what we issue."""
    issuer = issuers[alg]
    now = int(time.time())
    dcc = sample_dcc("test", at=now, name="Иванов Иван")
    token = issue_token(issuer, dcc, iat=now, exp=now + 3600)
    cose = zlib.decompress(base45.decode(token[4:]))
    if alg == "EdDSA":  # cwt's HCERT helper knows only ES256/PS256 certificates
        spki = issuer.certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public = cwt.COSEKey.from_pem(spki, alg="EdDSA", kid=issuer.kid)
    else:
        public = cwt.load_pem_hcert_dsc(issuer.certificate.public_bytes(serialization.Encoding.PEM))
    assert public.kid == issuer.kid  # cwt computes the HCERT kid independently
    payload = cwt.COSE.new().decode(cose, public)
    assert cbor2.loads(payload)[-260][1] == dcc
    claims = cwt.decode(cose, public)
    assert claims[1] == "RU" and claims[6] == now and claims[-260][1] == dcc
    # and a tampered message is refused by the other implementation too
    obj = cbor2.loads(cose)
    obj.value[2] = obj.value[2][:-1] + b"\x00"
    with pytest.raises(cwt.VerifyError):
        cwt.COSE.new().decode(cbor2.dumps(obj), public)
