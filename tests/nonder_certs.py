"""Issuer certificates that are valid X.509 but not strict DER, built byte by byte.

Real issuers produced such certificates (Finland: a BasicConstraints extension that
encodes its DEFAULT `cA FALSE`, which DER forbids). `cryptography` loads them but refuses
to parse their extensions; the trust registry must still load the key and read the EU
key-usage OIDs. The certificates are made here (a small DER writer, signed with a fresh
key), not copied from anywhere.

    python tests/nonder_certs.py OUT_DIR   # writes a few .der files for inspection
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

EU_VACCINATION = "1.3.6.1.4.1.1847.2021.1.2"
EU_TEST = "1.3.6.1.4.1.1847.2021.1.1"
EU_RECOVERY = "1.3.6.1.4.1.1847.2021.1.3"
OID_BASIC_CONSTRAINTS = "2.5.29.19"
OID_EKU = "2.5.29.37"
OID_KEY_USAGE = "2.5.29.15"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_COUNTRY = "2.5.4.6"
OID_CN = "2.5.4.3"


# ---- a minimal DER writer -------------------------------------------------------------


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + length(len(content)) + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return tlv(0x02, body)


def boolean(value: bool) -> bytes:
    return tlv(0x01, b"\xff" if value else b"\x00")


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def utc_time(when: dt.datetime) -> bytes:
    return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))


def name(country: str | None, common_name: str) -> bytes:
    rdns = []
    if country is not None:
        rdns.append(tlv(0x31, seq(oid(OID_COUNTRY), tlv(0x13, country.encode()))))
    rdns.append(tlv(0x31, seq(oid(OID_CN), tlv(0x0C, common_name.encode()))))
    return seq(*rdns)


def extension(ext_oid: str, value: bytes, critical: bool | None = None) -> bytes:
    parts = [oid(ext_oid)]
    if critical is not None:
        parts.append(boolean(critical))
    parts.append(octets(value))
    return seq(*parts)


# ---- certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    der: bytes
    key: ec.EllipticCurvePrivateKey
    not_before: int
    not_after: int


def basic_constraints_explicit_false() -> bytes:
    """BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... } with the default
    written out: not DER."""
    return extension(OID_BASIC_CONSTRAINTS, seq(boolean(False)), critical=True)


def eku(*oids: str) -> bytes:
    return extension(OID_EKU, seq(*(oid(o) for o in oids)))


def certificate(
    extensions: list[bytes] | None,
    *,
    country: str | None = "FI",
    days: int = 365,
    start: dt.datetime | None = None,
    tbs_hook: bytes | None = None,
) -> Made:
    """A self-signed ES256 certificate with these raw extensions (None: no extensions
    field at all). `tbs_hook` replaces the whole extensions field with raw bytes."""
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    start = start or dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=days)
    alg = seq(oid(OID_ECDSA_SHA256))
    subject = name(country, "DSC test issuer")
    parts = [
        tlv(0xA0, integer(2)),  # version v3
        integer(0x1234567890),
        alg,
        subject,
        seq(utc_time(start), utc_time(end)),
        subject,
        spki,
    ]
    if tbs_hook is not None:
        parts.append(tbs_hook)
    elif extensions is not None:
        parts.append(tlv(0xA3, seq(*extensions)))
    tbs = seq(*parts)
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = seq(tbs, alg, tlv(0x03, b"\x00" + signature))
    return Made(der, key, int(start.timestamp()), int(end.timestamp()))


def finnish_style(*types: str) -> Made:
    """BasicConstraints with an explicit cA FALSE, then an EKU with the given EU OIDs."""
    return certificate([basic_constraints_explicit_false(), eku(*types)])


def main(out: str) -> None:
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    samples = {
        "bc-false-eku-vaccination.der": finnish_style(EU_VACCINATION),
        "bc-false-no-eku.der": certificate([basic_constraints_explicit_false()]),
        "no-country.der": certificate([basic_constraints_explicit_false()], country=None),
    }
    for file, made in samples.items():
        (directory / file).write_bytes(made.der)
        print(directory / file)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
