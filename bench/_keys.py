"""Development issuers for the benchmarks, made at run time (bench/ reads no key files).

The fuzzer needs the same kinds of issuer the test vectors have: one per algorithm, a key
that may sign tests only, one whose key usage is on the alternative EU arc, and one that no
trust list names.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keys.issuer import Issuer
from keys.registry import IssuerKey, TrustRegistry

__all__ = ["UNTRUSTED", "dev_issuers", "trust_of"]

ALT_ARC_VACCINATION = "1.3.6.1.4.1.0.1847.2021.1.2"  # CONTRACT section 1a: the other arc
START = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
DAYS = 3650
UNTRUSTED = "untrusted"


def _alt_arc_issuer() -> Issuer:
    """Vaccination only, the key usage written on the alternative EU arc."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
            x509.NameAttribute(NameOID.COMMON_NAME, "qrverify bench alt-arc issuer"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=DAYS))
        .add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(ALT_ARC_VACCINATION)]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Issuer.from_parts(key, cert)


def dev_issuers() -> dict[str, Issuer]:
    """Fresh issuers, valid 2021-2030: es256, ps256, eddsa, test_only, vaccination_alt_arc,
    untrusted (left out of `trust_of`)."""
    return {
        "es256": Issuer.generate("RU", "ES256", None, DAYS, START),
        "eddsa": Issuer.generate("RU", "EdDSA", None, DAYS, START),
        "ps256": Issuer.generate("RU", "PS256", None, DAYS, START),
        "test_only": Issuer.generate("RU", "ES256", ["test"], DAYS, START),
        "vaccination_alt_arc": _alt_arc_issuer(),
        UNTRUSTED: Issuer.generate("RU", "ES256", None, DAYS, START),
    }


def trust_of(issuers: dict[str, Issuer]) -> TrustRegistry:
    """The trust registry of every issuer but the untrusted one."""
    return TrustRegistry.from_keys(
        IssuerKey.from_certificate(issuer.certificate_der, "RU")
        for name, issuer in issuers.items()
        if name != UNTRUSTED
    )
