from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys.issuer import Issuer
from keys.registry import MAX_FILE_BYTES, MAX_KEYS, IssuerKey, TrustFileError, TrustRegistry

ARC = "1.3.6.1.4.1.1847.2021.1."
ARC_ALT = "1.3.6.1.4.1.0.1847.2021.1."
START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def spki(key: Any) -> str:
    return b64(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def make_cert(key: Any, oids: list[str] | None = None, country: str = "RU") -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=730))
    )
    if oids is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in oids]), critical=False
        )
    algorithm = (
        None
        if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey))
        else hashes.SHA256()
    )
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pk_entry(key: Any, **extra: Any) -> dict[str, Any]:
    entry = {"public_key": spki(key), "kid": b64(b"kid-0001"), "country": "RU"}
    entry.update(extra)
    return entry


# -- valid input ------------------------------------------------------------------------


def test_certificate_entry(p256: ec.EllipticCurvePrivateKey) -> None:
    der = make_cert(p256, [ARC + "2"])
    registry = TrustRegistry.from_dict({"keys": [{"certificate": b64(der), "country": "RU"}]})
    assert len(registry) == 1
    kid = hashlib.sha256(der).digest()[:8]
    (key,) = registry.candidates(kid)
    assert key.kid == kid
    assert key.country == "RU"
    assert key.types == frozenset({"vaccination"})
    assert key.not_before == int(START.timestamp())
    assert key.not_after == int(START.timestamp()) + 730 * 86400
    assert key.alg == -7
    assert key.certificate_der == der
    assert registry.candidates(b"\x00" * 8) == ()
    assert kid in registry


@pytest.mark.parametrize(
    ("oids", "types"),
    [
        (None, None),
        ([ARC + "1"], {"test"}),
        ([ARC + "1", ARC + "2", ARC + "3"], {"test", "vaccination", "recovery"}),
        ([ARC_ALT + "3"], {"recovery"}),
        ([ARC_ALT + "1", ARC + "2"], {"test", "vaccination"}),
        ([ExtendedKeyUsageOID.SERVER_AUTH.dotted_string], None),  # EKU without EU OIDs -> all
        ([ExtendedKeyUsageOID.CODE_SIGNING.dotted_string, ARC + "3"], {"recovery"}),
        ([ARC + "4"], None),  # unknown suffix on the arc is not a type
    ],
)
def test_eku_types_both_arcs(
    p256: ec.EllipticCurvePrivateKey, oids: list[str] | None, types: set[str] | None
) -> None:
    der = make_cert(p256, oids)
    (key,) = TrustRegistry.from_dict({"keys": [{"certificate": b64(der), "country": "RU"}]})
    assert key.types == (None if types is None else frozenset(types))


def test_public_key_entry(p256: ec.EllipticCurvePrivateKey) -> None:
    entry = pk_entry(
        p256,
        types=["test", "recovery"],
        not_before="2021-01-01T00:00:00Z",
        not_after="2023-01-01T00:00:00.5Z",
    )
    (key,) = TrustRegistry.from_dict({"keys": [entry]})
    assert key.kid == b"kid-0001"
    assert key.types == frozenset({"test", "recovery"})
    assert key.not_before == 1609459200
    assert key.not_after == 1672531200
    assert key.certificate_der is None
    minimal = TrustRegistry.from_dict({"keys": [pk_entry(p256)]}).keys[0]
    assert minimal.types is None and minimal.not_before is None and minimal.not_after is None


def test_kid_collisions_return_all_candidates(p256: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    third = ed25519.Ed25519PrivateKey.generate()
    registry = TrustRegistry.from_dict(
        {
            "keys": [
                pk_entry(p256),
                pk_entry(other, country="DE"),
                pk_entry(third, kid=b64(b"different")),
            ]
        }
    )
    assert len(registry) == 3
    found = registry.candidates(b"kid-0001")
    assert [k.country for k in found] == ["RU", "DE"]
    data = b"to be signed"
    r, s = decode_dss_signature(other.sign(data, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert [k.verify(-7, raw, data) for k in found] == [False, True]


def test_round_trip(issuers: dict[str, Issuer], p256: ec.EllipticCurvePrivateKey) -> None:
    doc = {
        "keys": [
            issuers["ES256"].trust_entry(),
            issuers["PS256"].trust_entry(),
            issuers["EdDSA"].trust_entry(),
            pk_entry(
                p256,
                types=["recovery", "vaccination"],
                not_before="2021-01-01T00:00:00Z",
                not_after="2022-01-01T00:00:00Z",
            ),
            pk_entry(p256, kid=b64(b"\x01" * 8), country="FR"),
        ]
    }
    registry = TrustRegistry.from_dict(doc)
    out = registry.to_dict()
    assert out["keys"][:3] == doc["keys"][:3]
    assert out["keys"][3] == {**doc["keys"][3], "types": ["vaccination", "recovery"]}
    assert out["keys"][4] == doc["keys"][4]
    again = TrustRegistry.from_json(registry.to_json())
    assert again.to_dict() == out
    assert [k.kid for k in again] == [k.kid for k in registry]


def test_from_file_and_json(tmp_path: Path, es256: Issuer) -> None:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"keys": [es256.trust_entry()]}))
    assert len(TrustRegistry.from_file(path)) == 1
    assert len(TrustRegistry.from_json(path.read_bytes())) == 1
    assert len(TrustRegistry.from_json(path.read_text())) == 1
    assert len(TrustRegistry.from_dict({"keys": []})) == 0
    assert len(TrustRegistry.empty()) == 0


def test_immutable(es256: Issuer) -> None:
    registry = TrustRegistry.from_dict({"keys": [es256.trust_entry()]})
    key = registry.keys[0]
    with pytest.raises(AttributeError):
        key.kid = b"x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        key.types = None  # type: ignore[misc]
    with pytest.raises(AttributeError):
        registry._keys = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del key.country
    assert isinstance(registry.keys, tuple)


def test_p384_key_verifies_es384_only() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    (ik,) = TrustRegistry.from_dict({"keys": [pk_entry(key)]})
    data = b"payload"
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA384())))
    raw = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    assert ik.alg == -35
    assert ik.verify(-35, raw, data) is True
    assert ik.verify(-7, raw, data) is False
    assert ik.verify(-35, raw[:64], data) is False


def test_from_keys(es256: Issuer) -> None:
    key = IssuerKey.from_certificate(es256.certificate_der, "RU")
    registry = TrustRegistry.from_keys([key, key])
    assert registry.candidates(es256.kid) == (key, key)
    with pytest.raises(TypeError):
        TrustRegistry.from_keys(["not a key"])  # type: ignore[list-item]


# -- invalid input: every case names what is wrong, nothing is partially loaded --------------


def _bad_cases(p256: Any) -> list[tuple[object, str]]:
    good_cert = {"certificate": b64(make_cert(p256)), "country": "RU"}
    rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return [
        ([], "top level must be a JSON object"),
        ({}, 'missing "keys" list'),
        ({"keys": {}}, '"keys" must be a list'),
        ({"keys": [], "version": 1}, "unexpected top-level field(s) 'version'"),
        ({"keys": ["x"]}, "keys[0]: entry must be an object"),
        (
            {"keys": [good_cert, {"country": "RU"}]},
            'keys[1]: needs exactly one of "certificate" or "public_key"',
        ),
        ({"keys": [{**good_cert, "public_key": spki(p256)}]}, "keys[0]: needs exactly one"),
        (
            {"keys": [{**good_cert, "country": "ru"}]},
            "keys[0]: \"country\" must be two upper-case letters, got 'ru'",
        ),
        ({"keys": [{**good_cert, "country": "RUS"}]}, "two upper-case letters"),
        ({"keys": [{**good_cert, "country": 7}]}, "two upper-case letters, got 7"),
        (
            {"keys": [{**good_cert, "certificate": "not base64!"}]},
            'keys[0]: "certificate" is not valid base64',
        ),
        ({"keys": [{**good_cert, "certificate": ""}]}, '"certificate" must be a non-empty'),
        (
            {"keys": [{**good_cert, "certificate": b64(b"\x30\x03\x02\x01\x01")}]},
            'keys[0]: "certificate" is not a DER X.509 certificate',
        ),
        (
            {"keys": [{**good_cert, "kid": "AAAA"}]},
            "keys[0]: unexpected field(s) 'kid' (they come from the certificate)",
        ),
        ({"keys": [{**good_cert, "comment": "x"}]}, "unexpected field(s) 'comment'"),
        (
            {"keys": [{"public_key": spki(p256), "country": "RU"}]},
            'keys[0]: "kid" is required with "public_key"',
        ),
        ({"keys": [pk_entry(p256, kid="")]}, '"kid" must be a non-empty base64 string'),
        ({"keys": [pk_entry(p256, kid="@@@@")]}, '"kid" is not valid base64'),
        ({"keys": [pk_entry(p256, kid=b64(b"k" * 65))]}, '"kid" is longer than 64 bytes'),
        (
            {"keys": [pk_entry(p256, public_key=b64(b"junk"))]},
            '"public_key" is not a DER SubjectPublicKeyInfo',
        ),
        ({"keys": [pk_entry(p256, types="test")]}, '"types" must be a list of strings'),
        ({"keys": [pk_entry(p256, types=[])]}, '"types" must not be empty'),
        (
            {"keys": [pk_entry(p256, types=["test", "vaccine"])]},
            "unknown type 'vaccine' in \"types\"",
        ),
        ({"keys": [pk_entry(p256, types=["test", "test"])]}, 'duplicate type in "types"'),
        (
            {"keys": [pk_entry(p256, not_before="2021-01-01")]},
            '"not_before" must be an ISO 8601 UTC time',
        ),
        (
            {"keys": [pk_entry(p256, not_after="2021-01-01T00:00:00+00:00")]},
            '"not_after" must be an ISO 8601 UTC time',
        ),
        ({"keys": [pk_entry(p256, not_after=1700000000)]}, '"not_after" must be an ISO 8601'),
        (
            {"keys": [pk_entry(p256, not_before="2021-02-30T00:00:00Z")]},
            '"not_before" is not a valid date and time',
        ),
        (
            {
                "keys": [
                    pk_entry(
                        p256, not_before="2022-01-01T00:00:00Z", not_after="2021-01-01T00:00:00Z"
                    )
                ]
            },
            '"not_before" must be earlier than "not_after"',
        ),
        ({"keys": [pk_entry(p256, unknown=1)]}, "unexpected field(s) 'unknown'"),
        ({"keys": [pk_entry(rsa_small)]}, "keys[0]: RSA key too small (1024 bits"),
        ({"keys": [pk_entry(ed448.Ed448PrivateKey.generate())]}, "keys[0]: unsupported key type"),
        (
            {
                "keys": [
                    {
                        "certificate": b64(make_cert(ed448.Ed448PrivateKey.generate())),
                        "country": "RU",
                    }
                ]
            },
            "keys[0]: unsupported key type",
        ),
        (
            {"keys": [good_cert, good_cert, pk_entry(dsa.generate_private_key(2048))]},
            "keys[2]: unsupported key type",
        ),
    ]


def test_bad_documents(p256: ec.EllipticCurvePrivateKey) -> None:
    for doc, message in _bad_cases(p256):
        with pytest.raises(TrustFileError) as info:
            TrustRegistry.from_dict(doc, strict=True)
        assert message in str(info.value), (doc, str(info.value))
        entries = doc.get("keys") if isinstance(doc, dict) else None
        if isinstance(entries, list) and len(entries) > 1:
            # lenient (the default): the unusable entry is skipped, the others load
            lenient = TrustRegistry.from_dict(doc)
            assert len(lenient) == len(entries) - 1
            assert len(lenient.skipped) == 1 and message in lenient.skipped[0]
        else:  # nothing usable left: the whole file is refused either way
            with pytest.raises(TrustFileError) as info:
                TrustRegistry.from_dict(doc)
            assert message in str(info.value), (doc, str(info.value))
        assert str(info.value).startswith("trust file: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "invalid JSON at line 1 column 2"),
        (b'{"keys": [], "keys": []}', "duplicate field 'keys'"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b"null", "top level must be a JSON object"),
    ],
)
def test_bad_json(data: bytes, message: str) -> None:
    with pytest.raises(TrustFileError, match=message.replace("(", r"\(")):
        TrustRegistry.from_json(data)


def test_size_caps(tmp_path: Path) -> None:
    big = b'{"keys": []}' + b" " * MAX_FILE_BYTES
    with pytest.raises(TrustFileError, match="larger than"):
        TrustRegistry.from_json(big)
    with pytest.raises(TrustFileError, match="larger than"):  # counted in UTF-8 bytes
        TrustRegistry.from_json('{"keys": [], "x": "' + "é" * (MAX_FILE_BYTES // 2) + '"}')
    path = tmp_path / "big.json"
    path.write_bytes(big)
    with pytest.raises(TrustFileError, match="larger than"):
        TrustRegistry.from_file(path)
    with pytest.raises(TrustFileError, match=f"too many keys \\({MAX_KEYS + 1} > {MAX_KEYS}\\)"):
        TrustRegistry.from_dict({"keys": [{}] * (MAX_KEYS + 1)})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TrustFileError, match="trust file not found"):
        TrustRegistry.from_file(tmp_path / "missing.json")
    with pytest.raises(TrustFileError, match="is a directory"):
        TrustRegistry.from_file(tmp_path)


def test_issuer_key_constructor_validation(p256: ec.EllipticCurvePrivateKey) -> None:
    pub = p256.public_key()
    with pytest.raises(ValueError, match="kid"):
        IssuerKey(pub, b"")
    with pytest.raises(ValueError, match="unknown types"):
        IssuerKey(pub, b"k", types=["vax"])
    with pytest.raises(ValueError, match="not_before is after not_after"):
        IssuerKey(pub, b"k", not_before=2, not_after=1)
    with pytest.raises(ValueError, match="unsupported EC curve"):
        IssuerKey(ec.generate_private_key(ec.SECP256K1()).public_key(), b"k")
