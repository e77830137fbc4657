from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from keys.issuer import Issuer, IssuerError, load_issuer, new_issuer

EU_OIDS = {
    "test": "1.3.6.1.4.1.1847.2021.1.1",
    "vaccination": "1.3.6.1.4.1.1847.2021.1.2",
    "recovery": "1.3.6.1.4.1.1847.2021.1.3",
}


def test_new_issuer_writes_files(tmp_path: Path) -> None:
    out = tmp_path / "iss"
    issuer = new_issuer(out, country="DE", types=["test", "vaccination"], days=10)
    key_file, cert_file = out / "issuer.key", out / "issuer.crt"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key_pem, cert_pem = key_file.read_bytes(), cert_file.read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
    assert (
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "qrverify development issuer DE"
    )
    assert cert.issuer == cert.subject
    eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    assert {oid.dotted_string for oid in eku} == {EU_OIDS["test"], EU_OIDS["vaccination"]}
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=10)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert issuer.kid == hashlib.sha256(der).digest()[:8]
    assert issuer.types == frozenset({"test", "vaccination"})
    assert issuer.country == "DE" and issuer.alg == "ES256"

    loaded = load_issuer(out)
    assert loaded.kid == issuer.kid
    assert loaded.alg == "ES256" and loaded.country == "DE"
    assert loaded.not_after == issuer.not_after


def test_no_eku_when_types_is_none() -> None:
    issuer = Issuer.generate("RU")
    with pytest.raises(x509.ExtensionNotFound):
        issuer.certificate.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    assert issuer.types is None


@pytest.mark.parametrize(
    ("alg", "key_type", "cose"),
    [
        ("ES256", ec.EllipticCurvePrivateKey, -7),
        ("PS256", rsa.RSAPrivateKey, -37),
        ("EdDSA", ed25519.Ed25519PrivateKey, -8),
    ],
)
def test_key_types(tmp_path: Path, alg: str, key_type: type, cose: int) -> None:
    issuer = new_issuer(tmp_path, alg=alg, days=1)
    assert isinstance(issuer.private_key, key_type)
    assert issuer.cose_alg == cose
    if alg == "ES256":
        assert isinstance(issuer.private_key, ec.EllipticCurvePrivateKey)
        assert issuer.private_key.curve.name == "secp256r1"
    if alg == "PS256":
        assert isinstance(issuer.private_key, rsa.RSAPrivateKey)
        assert issuer.private_key.key_size >= 2048
    assert load_issuer(tmp_path).alg == alg


def test_not_before(tmp_path: Path) -> None:
    start = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)
    issuer = Issuer.generate("RU", not_before=start, days=365)
    assert issuer.not_before == int(start.timestamp())
    assert issuer.not_after == int(start.timestamp()) + 365 * 86400
    assert Issuer.generate("RU", not_before=int(start.timestamp())).not_before == issuer.not_before


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    new_issuer(tmp_path)
    before = (tmp_path / "issuer.key").read_bytes()
    with pytest.raises(IssuerError, match="already exists"):
        new_issuer(tmp_path)
    assert (tmp_path / "issuer.key").read_bytes() == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"country": "ru"}, "two upper-case letters"),
        ({"country": "RUS"}, "two upper-case letters"),
        ({"alg": "ES384"}, "unknown algorithm"),
        ({"types": ["vaccine"]}, "unknown certificate type"),
        ({"types": []}, "must not be empty"),
        ({"types": "test"}, "not a string"),
        ({"days": 0}, "days"),
        ({"days": 100000}, "days"),
    ],
)
def test_generate_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(IssuerError, match=message):
        Issuer.generate(**kwargs)  # type: ignore[arg-type]


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(IssuerError, match="issuer directory not found"):
        load_issuer(tmp_path / "nope")
    with pytest.raises(IssuerError, match="issuer key not found"):
        load_issuer(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    new_issuer(a)
    new_issuer(b)
    (a / "issuer.crt").unlink()
    with pytest.raises(IssuerError, match="issuer certificate not found"):
        load_issuer(a)
    (a / "issuer.crt").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(IssuerError, match="not a valid PEM X.509 certificate"):
        load_issuer(a)
    (a / "issuer.crt").write_bytes((b / "issuer.crt").read_bytes())
    with pytest.raises(IssuerError, match="does not match the certificate"):
        load_issuer(a)
    (b / "issuer.key").write_text("garbage")
    with pytest.raises(IssuerError, match="not a valid PEM private key"):
        load_issuer(b)


def test_load_rejects_encrypted_key(tmp_path: Path) -> None:
    issuer = new_issuer(tmp_path)
    pem = issuer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    (tmp_path / "issuer.key").write_bytes(pem)
    with pytest.raises(IssuerError, match="encrypted"):
        load_issuer(tmp_path)


def test_es256_signature_is_raw_64_bytes(es256: Issuer) -> None:
    sigs = {es256.sign(b"data") for _ in range(5)}
    assert all(len(s) == 64 for s in sigs)
    assert len(sigs) == 5  # ECDSA is randomised


def test_trust_entry(es256: Issuer) -> None:
    import base64

    entry = es256.trust_entry()
    assert entry == {
        "certificate": base64.b64encode(es256.certificate_der).decode(),
        "country": "RU",
    }
