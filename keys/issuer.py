"""Development issuers: a private key, a self-signed certificate, and signing.

On disk an issuer is a directory with ``issuer.key`` (PEM PKCS#8, mode 0600) and
``issuer.crt`` (PEM X.509). These are development keys, not a certificate authority.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from keys._files import read_capped
from keys._x509 import CERT_TYPES, cert_kid, eku_types, type_oid, validity
from keys.cose import ALG_IDS
from verifier.errors import QrverifyError

__all__ = [
    "ALGORITHMS",
    "CERT_FILE",
    "KEY_FILE",
    "Issuer",
    "IssuerError",
    "PrivateKey",
    "load_issuer",
    "new_issuer",
]

KEY_FILE = "issuer.key"
CERT_FILE = "issuer.crt"
ALGORITHMS: tuple[str, ...] = ("ES256", "PS256", "EdDSA")
MAX_DAYS = 36500
_MAX_PEM = 1 << 20
_COUNTRY = re.compile(r"[A-Z]{2}")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class IssuerError(QrverifyError, ValueError):
    """An issuer cannot be created or loaded; the message says why."""


def _check_country(country: str) -> str:
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise IssuerError(f"country must be two upper-case letters (ISO 3166), got {country!r}")
    return country


def _check_types(types: Iterable[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    if isinstance(types, str):
        raise IssuerError("types must be a list of type names, not a string")
    found = frozenset(types)
    if not found:
        raise IssuerError("types must not be empty (leave it out to allow all types)")
    unknown = sorted(found - set(CERT_TYPES))
    if unknown:
        raise IssuerError(
            f"unknown certificate type(s) {', '.join(unknown)}; expected {', '.join(CERT_TYPES)}"
        )
    return found


def _alg_of(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise IssuerError(f"unsupported EC curve {key.curve.name} (ES256 needs P-256)")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise IssuerError(f"RSA key too small ({key.key_size} bits, need >= 2048)")
        return "PS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise IssuerError(f"unsupported private key type {type(key).__name__}")


def _generate_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "PS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise IssuerError(f"unknown algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}")


def _to_datetime(value: dt.datetime | int | float | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise IssuerError("not_before must be timezone-aware")
        return value.astimezone(dt.UTC).replace(microsecond=0)
    return dt.datetime.fromtimestamp(int(value), dt.UTC)


@dataclass(frozen=True, slots=True)
class Issuer:
    """A signing key with its certificate. ``kid`` is derived from the certificate."""

    private_key: PrivateKey
    certificate: x509.Certificate
    kid: bytes
    alg: str
    country: str

    @classmethod
    def from_parts(cls, private_key: PrivateKey, certificate: x509.Certificate) -> Issuer:
        """Pair a key with its certificate, checking that they match."""
        alg = _alg_of(private_key)
        pub = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if private_key.public_key().public_bytes(*pub) != certificate.public_key().public_bytes(
            *pub
        ):
            raise IssuerError("the private key does not match the certificate")
        countries = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
        if len(countries) != 1:
            raise IssuerError("the certificate subject must have exactly one country (C=)")
        country = _check_country(str(countries[0].value))
        try:
            eku_types(certificate)
        except ValueError as exc:
            raise IssuerError(f"bad certificate extensions: {exc}") from exc
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(private_key, certificate, cert_kid(der), alg, country)

    @classmethod
    def generate(
        cls,
        country: str = "RU",
        alg: str = "ES256",
        types: Iterable[str] | None = None,
        days: int = 365,
        not_before: dt.datetime | int | None = None,
    ) -> Issuer:
        """A fresh in-memory issuer with a self-signed certificate."""
        _check_country(country)
        type_set = _check_types(types)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise IssuerError(f"days must be an integer from 1 to {MAX_DAYS}, got {days!r}")
        key = _generate_key(alg)
        start = _to_datetime(not_before)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                x509.NameAttribute(NameOID.COMMON_NAME, f"qrverify development issuer {country}"),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
        )
        if type_set is not None:
            oids = [type_oid(t) for t in CERT_TYPES if t in type_set]
            builder = builder.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
        algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        cert = builder.sign(key, algorithm)
        return cls.from_parts(key, cert)

    # -- signing (keys.cose.Signer) -------------------------------------------------

    @property
    def cose_alg(self) -> int:
        """COSE algorithm id: ES256 -7, PS256 -37, EdDSA -8."""
        return ALG_IDS[self.alg]

    def sign(self, data: bytes) -> bytes:
        """Raw COSE signature over ``data`` (ES256: r||s, 32 bytes each)."""
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(data, _ECDSA_SHA256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, _PSS, hashes.SHA256())
        return key.sign(data)

    # -- certificate facts ----------------------------------------------------------

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def not_before(self) -> int:
        """Certificate validity start, epoch seconds."""
        return validity(self.certificate)[0]

    @property
    def not_after(self) -> int:
        """Certificate validity end, epoch seconds."""
        return validity(self.certificate)[1]

    @property
    def types(self) -> frozenset[str] | None:
        """Types the certificate may sign (None: all)."""
        return eku_types(self.certificate)

    def trust_entry(self) -> dict[str, str]:
        """This issuer's entry for a trust registry file."""
        return {
            "certificate": base64.b64encode(self.certificate_der).decode("ascii"),
            "country": self.country,
        }

    def save(self, out_dir: str | os.PathLike[str]) -> None:
        """Write issuer.key (0600) and issuer.crt; refuses to overwrite either."""
        directory = Path(out_dir)
        key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
        for path in (key_path, cert_path):
            if path.exists():
                raise IssuerError(f"{path} already exists; refusing to overwrite it")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IssuerError(f"cannot create {directory}: {exc.strerror}") from exc
        key_pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        _write_new(key_path, key_pem, 0o600)
        _write_new(cert_path, cert_pem, 0o644)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise IssuerError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise IssuerError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)  # the umask may have narrowed or (for 0600) nothing else to do


def new_issuer(
    out_dir: str | os.PathLike[str],
    country: str = "RU",
    alg: str = "ES256",
    types: Iterable[str] | None = None,
    days: int = 365,
    not_before: dt.datetime | int | None = None,
) -> Issuer:
    """Create an issuer and write it to ``out_dir`` (issuer.key + issuer.crt)."""
    directory = Path(out_dir)
    for name in (KEY_FILE, CERT_FILE):
        if (directory / name).exists():
            raise IssuerError(f"{directory / name} already exists; refusing to overwrite it")
    issuer = Issuer.generate(country, alg, types, days, not_before)
    issuer.save(directory)
    return issuer


def _read_capped(path: Path, what: str) -> bytes:
    return read_capped(path, _MAX_PEM, what, IssuerError)


def load_issuer(directory: str | os.PathLike[str]) -> Issuer:
    """Load an issuer directory written by :func:`new_issuer` (or ``qrverify keys new``)."""
    base = Path(directory)
    if not base.is_dir():
        raise IssuerError(f"issuer directory not found: {base}")
    key_pem = _read_capped(base / KEY_FILE, "issuer key")
    cert_pem = _read_capped(base / CERT_FILE, "issuer certificate")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise IssuerError(f"{base / KEY_FILE} is encrypted; an unencrypted key is needed") from None
    except (ValueError, UnsupportedAlgorithm):
        raise IssuerError(f"{base / KEY_FILE} is not a valid PEM private key") from None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise IssuerError(f"{base / CERT_FILE} is not a valid PEM X.509 certificate") from None
    if not isinstance(
        key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)
    ):
        raise IssuerError(f"unsupported private key type in {base / KEY_FILE}")
    return Issuer.from_parts(key, cert)
