"""X.509 helpers shared by the issuer and the trust registry: kid, validity, EU key usage."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from keys._der import eku_oids

__all__ = ["CERT_TYPES", "TYPE_OIDS", "cert_kid", "eku_types", "type_oid", "validity"]

#: The three DCC certificate types, in canonical order.
CERT_TYPES: tuple[str, ...] = ("vaccination", "recovery", "test")

_ARC_SUFFIX = {"1": "test", "2": "vaccination", "3": "recovery"}
_ARCS = ("1.3.6.1.4.1.1847.2021.1.", "1.3.6.1.4.1.0.1847.2021.1.")

#: OID (as dotted string) -> type, both arcs (the second one was used by some issuers).
TYPE_OIDS: dict[str, str] = {arc + n: t for arc in _ARCS for n, t in _ARC_SUFFIX.items()}


def type_oid(cert_type: str) -> x509.ObjectIdentifier:
    """The EU key-usage OID (primary arc) for a certificate type."""
    for n, t in _ARC_SUFFIX.items():
        if t == cert_type:
            return x509.ObjectIdentifier(_ARCS[0] + n)
    raise ValueError(f"unknown certificate type {cert_type!r}")


def cert_kid(der: bytes) -> bytes:
    """HCERT kid of a certificate: the first 8 bytes of SHA-256 over its DER encoding."""
    return hashlib.sha256(der).digest()[:8]


def validity(cert: x509.Certificate) -> tuple[int, int]:
    """(not_before, not_after) as epoch seconds."""
    return (int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp()))


def eku_types(cert: x509.Certificate, der: bytes | None = None) -> frozenset[str] | None:
    """Types this certificate may sign, from its Extended Key Usage.

    None means all types: no EKU extension, or an EKU with none of the EU DCC OIDs
    (HCERT spec: such a key may sign every type). When `cryptography` cannot parse the
    certificate's extensions (a certificate that is not strict DER) and `der` is given,
    the EKU is read by the lenient reader of keys/_der.py. Raises ValueError when the
    EKU cannot be read either way.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        if der is None:
            raise
        oids = eku_oids(der)  # DerError is a ValueError
        return _types_of(oids or ())
    value = ext.value
    if not isinstance(value, x509.ExtendedKeyUsage):  # pragma: no cover - defensive
        raise ValueError("malformed extended key usage")
    return _types_of(oid.dotted_string for oid in value)


def _types_of(oids: Iterable[str]) -> frozenset[str] | None:
    found = {TYPE_OIDS[o] for o in oids if o in TYPE_OIDS}
    return frozenset(found) if found else None
