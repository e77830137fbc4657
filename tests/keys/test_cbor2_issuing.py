"""Issuing encodes with cbor2 (issue 8): the same bytes as the hand-written keys.cbor
encoder, which stays only for building malformed test vectors (RawCBOR splices, floats
always as float64, infinities included, where cbor2 writes half-precision floats).

FROZEN holds the bytes (hex, or the sha256 of long ones) both encoders gave for PAYLOADS
when the switch was made; a cbor2 upgrade that changes a byte fails here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

import cbor2
import pytest

from keys import cbor as handwritten
from keys.cose import sig_structure, sign1
from keys.samples import CERT_TYPES, sample_dcc
from keys.token import cwt_bytes

DCC_V = {
    "ver": "1.3.0",
    "nam": {"fn": "Иванов", "fnt": "IVANOV", "gn": "Иван", "gnt": "IVAN"},
    "dob": "1980-01-01",
    "v": [
        {
            "tg": "840539006",
            "vp": "J07BX03",
            "mp": "Sputnik-V",
            "ma": "Gamaleya-Research-Institute",
            "dn": 2,
            "sd": 2,
            "dt": "2024-01-30",
            "co": "RU",
            "is": "Министерство здравоохранения Российской Федерации",
            "ci": "URN:UVCI:01:RU:FIXED0000001#Q",
        }
    ],
}
DCC_T = {
    "ver": "1.3.0",
    "nam": {"fn": "Müller-Lüdenscheidt", "fnt": "MUELLER<LUEDENSCHEIDT", "gnt": "ÆSA"},
    "dob": "1975",
    "t": [
        {
            "tg": "840539006",
            "tt": "LP6464-4",
            "nm": "SARS-CoV-2 RT-PCR",
            "sc": "2024-03-01T10:00:00Z",
            "tr": "260415000",
            "tc": "Лаборатория №1",
            "co": "DE",
            "is": "Robert Koch-Institut",
            "ci": "URN:UVCI:01:DE:T/0001#1",
        }
    ],
}
DCC_R = {
    "ver": "1.3.0",
    "nam": {"fnt": "X" * 80},
    "dob": "",
    "r": [
        {
            "tg": "840539006",
            "fr": "2024-01-01",
            "df": "2024-01-12",
            "du": "2024-06-29",
            "co": "RU",
            "is": "x" * 300,
            "ci": "URN:UVCI:01:RU:R" + "7" * 40,
        }
    ],
}


def claims(dcc: dict[str, Any]) -> dict[int, Any]:
    return {1: "RU", 4: 1735689600, 6: 1704067200, -260: {1: dcc}}


def tagged(tag_cls: Any) -> dict[str, Any]:
    cose = [b"\xa2\x01&\x04H\x01\x02\x03\x04\x05\x06\x07\x08", {}, b"payload", b"s" * 64]
    return {
        "tag18": tag_cls(18, cose),
        "tag61_18": tag_cls(61, tag_cls(18, cose)),
        "tag_big": tag_cls(2**32 + 5, "x"),
        "tag_in_map": {1: tag_cls(0, "2024-03-01T00:00:00Z"), "k": [tag_cls(1, 1.5)]},
    }


PAYLOADS: dict[str, Any] = {
    "zero": 0,
    "uint_edges": [23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1],
    "nint_edges": [-1, -24, -25, -256, -257, -65537, -(2**32) - 1, -(2**64)],
    "bools_null": [True, False, None],
    "floats": [0.0, -0.0, 1.5, -2.75, 0.1, 1e300, 5e-324, 65504.0, 1e-7, 3.4028234663852886e38],
    "bytes": [b"", b"\x00", b"x" * 23, b"x" * 24, b"y" * 256, bytearray(b"ba")],
    "text": ["", "a", "ü", "Иванов Иван Иванович", "€𝄞", "z" * 24, "w" * 70000],
    "nested_maps": {1: {2: {3: {"a": {"b": [{}, [], {-1: [None]}]}}}}, "z": {}},
    "key_order": {4: 1, 1: 2, "b": 3, "a": 4, -7: 5},
    "tuple": (1, (2, 3)),
    "deep": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]],
    "dcc_v": claims(DCC_V),
    "dcc_t": claims(DCC_T),
    "dcc_r": claims(DCC_R),
    "sig_structure": ["Signature1", b"\xa1\x01&", b"", b"payload"],
}

FROZEN = {
    "zero": "00",
    "uint_edges": "8917181818ff19010019ffff1a000100001affffffff"
    "1b00000001000000001bffffffffffffffff",
    "nint_edges": "882037381838ff3901003a000100003b00000001000000003bffffffffffffffff",
    "bools_null": "83f5f4f6",
    "floats": "sha256:28a64b027d46cef1534594131abe98f47c07061abf78f7c097d1444862a90831",
    "bytes": "sha256:69bfb6c9bb424c043550e9706ac5575b82912144694ec1c468de7022239b90d6",
    "text": "sha256:b1f1c98c7dfeb90870df1ba4aa03db06c483385093dfb46fd0f9a4686c28a724",
    "nested_maps": "a201a102a103a16161a1616283a080a12081f6617aa0",
    "key_order": "a5040101026162036161042605",
    "tuple": "8201820203",
    "deep": "818181818181818181818181818181818181818101",
    "dcc_v": "sha256:5f314e3c0ba545280593e5ed947d381a1169ee95202742c9f0c389910eb8ce8c",
    "dcc_t": "sha256:e0d3ff0326a2f980a5a7af4bf92760bac32961da86a91ee523a761283c28f632",
    "dcc_r": "sha256:a0a88eaee850a480ebb21862e373aa2664c9c56e27488fb78b7793f2d3dd1bfe",
    "sig_structure": "846a5369676e61747572653143a1012640477061796c6f6164",
    "tag18": "sha256:0d3adbd623cebb720b964ad3093381ba02d197364e46a41b6537030c91de7ada",
    "tag61_18": "sha256:6712d5fe41f6306f8ccf01159d7dfc43409015cbccfb7cc91f59c764a49d9308",
    "tag_big": "db00000001000000056178",
    "tag_in_map": "a201c074323032342d30332d30315430303a30303a30305a616b81c1fb3ff8000000000000",
}


def _frozen(data: bytes) -> str:
    text = data.hex()
    return text if len(text) <= 80 else "sha256:" + hashlib.sha256(data).hexdigest()


def test_every_payload_is_frozen() -> None:
    assert sorted(FROZEN) == sorted([*PAYLOADS, *tagged(cbor2.CBORTag)])


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_cbor2_gives_the_frozen_bytes(name: str) -> None:
    obj = {**PAYLOADS, **tagged(cbor2.CBORTag)}[name]
    assert _frozen(cbor2.dumps(obj)) == FROZEN[name]


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_handwritten_gives_the_same_bytes(name: str) -> None:
    obj = {**PAYLOADS, **tagged(handwritten.Tagged)}[name]
    assert _frozen(handwritten.dumps(obj)) == FROZEN[name]


@pytest.mark.parametrize("cert_type", CERT_TYPES)
@pytest.mark.parametrize("name", ["IVANOV IVAN", "Иванов Иван Иванович", "Ёлкина-Щукина Ая"])
@pytest.mark.parametrize("day", [0, 400, 3000])
def test_issued_claims_are_byte_identical(cert_type: str, name: str, day: int) -> None:
    at = dt.datetime(2021, 6, 1, 8, 30, tzinfo=dt.UTC) + dt.timedelta(days=day, seconds=day)
    dcc = sample_dcc(cert_type, at=at, name=name)
    iat = int(at.timestamp())
    for iss, exp in (("RU", iat + 86400 * 365), (None, None), ("Россия", 2**32 + 1)):
        expected: dict[int, Any] = {}
        if iss is not None:
            expected[1] = iss
        if exp is not None:
            expected[4] = exp
        expected[6] = iat
        expected[-260] = {1: dcc}
        assert cwt_bytes(dcc, iat=iat, exp=exp, iss=iss) == handwritten.dumps(expected)


class _FixedSigner:
    """A deterministic stand-in signer, so that whole COSE messages can be compared."""

    cose_alg = -7

    def sign(self, data: bytes) -> bytes:
        return hashlib.sha512(data).digest()


@pytest.mark.parametrize("form", ["tag18", "untagged", "tag61"])
@pytest.mark.parametrize("placement", ["protected", "unprotected", "both", "none"])
def test_cose_messages_are_byte_identical(form: str, placement: str) -> None:
    payload = handwritten.dumps({1: "RU", -260: {1: DCC_V}})
    kid = bytes(range(8))
    prot: dict[int, Any] = {1: -7}
    unprot: dict[int, Any] = {}
    if placement in ("protected", "both"):
        prot[4] = kid
    if placement in ("unprotected", "both"):
        unprot[4] = kid
    protected = handwritten.dumps(prot)
    to_sign = handwritten.dumps(["Signature1", protected, b"", payload])
    assert sig_structure(protected, payload) == to_sign
    message: Any = [protected, unprot, payload, _FixedSigner().sign(to_sign)]
    if form == "tag18":
        message = handwritten.Tagged(18, message)
    elif form == "tag61":
        message = handwritten.Tagged(61, handwritten.Tagged(18, message))
    got = sign1(
        payload,
        _FixedSigner(),
        kid=kid,
        kid_placement=placement,  # type: ignore[arg-type]
        form=form,
    )  # type: ignore[arg-type]
    assert got == handwritten.dumps(message)


@pytest.mark.parametrize(
    ("value", "cbor2_hex"), [(math.inf, "f97c00"), (-math.inf, "f9fc00"), (math.nan, "f97e00")]
)
def test_non_finite_floats_differ_so_vectors_keep_the_handwritten_encoder(
    value: float, cbor2_hex: str
) -> None:
    """Why keys.cbor stays for test vectors: cbor2 writes non-finite floats as half
    floats, the vectors need them as float64 (issued payloads never hold them)."""
    assert cbor2.dumps(value).hex() == cbor2_hex
    assert handwritten.dumps(value)[:1] == b"\xfb" and len(handwritten.dumps(value)) == 9


def test_issuing_takes_the_vector_builders_values() -> None:
    """Test vectors put keys.cbor.Tagged / RawCBOR into payloads (an sc as tag 0 or 1, a
    half float): issuing encodes them as the hand-written encoder did."""
    dcc = {
        **DCC_T,
        "t": [{**DCC_T["t"][0], "sc": handwritten.Tagged(1, 1709287200)}],
        "x": handwritten.RawCBOR(b"\xf9\x3c\x00"),
        "y": [handwritten.Tagged(0, "2024-03-01T00:00:00Z")],
    }
    got = cwt_bytes(dcc, iat=1, exp=2, iss="RU")
    assert got == handwritten.dumps({1: "RU", 4: 2, 6: 1, -260: {1: dcc}})
    assert cbor2.loads(got)[-260][1]["x"] == 1.0
    with pytest.raises(TypeError):
        handwritten.issue_dumps({1: object()})
