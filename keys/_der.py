"""A small, lenient reader of one X.509 extension: the Extended Key Usage OIDs.

Some issuers' signing certificates are valid X.509 but not strict DER (a BasicConstraints
that writes out its DEFAULT `cA FALSE`, for one). `cryptography` loads those but refuses
to parse any of their extensions. The EU key-usage OIDs still decide which certificate
types a key may sign, so this module walks the certificate's TLV structure itself,
accepting BER leniencies (non-minimal lengths, explicit defaults) but nothing ambiguous:
indefinite lengths, high tag numbers, overruns, a missing or repeated EKU value raise
DerError, and the caller then skips the key (never fails open).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["DerError", "eku_oids"]

_SEQUENCE = 0x30
_OID = 0x06
_BOOLEAN = 0x01
_OCTET_STRING = 0x04
_EXTENSIONS = 0xA3  # [3] EXPLICIT in TBSCertificate
_EKU_OID = "2.5.29.37"
_MAX_OIDS = 64
_MAX_OID_BYTES = 64


class DerError(ValueError):
    """The structure cannot be read (message says where)."""


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at `pos`, within `end`."""
    if pos + 2 > end:
        raise DerError("truncated element")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not supported")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        size = first
    elif first == 0x80:
        raise DerError("indefinite length")
    else:
        count = first & 0x7F
        if count > 4 or pos + count > end:
            raise DerError("bad length")
        size = int.from_bytes(buf[pos : pos + count], "big")
        pos += count
    if pos + size > end:
        raise DerError("element overruns its container")
    return tag, pos, pos + size


def _children(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        tag, cs, ce = _tlv(buf, pos, end)
        yield tag, cs, ce
        pos = ce


def _expect(buf: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    got, cs, ce = _tlv(buf, start, end)
    if got != tag:
        raise DerError(f"{what}: unexpected tag 0x{got:02x}")
    return cs, ce


def _oid_text(content: bytes) -> str:
    if not content or len(content) > _MAX_OID_BYTES or content[-1] & 0x80:
        raise DerError("malformed object identifier")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def eku_oids(cert_der: bytes) -> list[str] | None:
    """The KeyPurposeId OIDs of the certificate's Extended Key Usage extension, in order;
    None when the certificate has no such extension. DerError if the certificate's
    structure up to that extension, or the extension itself, cannot be read."""
    buf = bytes(cert_der)
    cs, ce = _expect(buf, 0, len(buf), _SEQUENCE, "certificate")
    tbs_start, tbs_end = _expect(buf, cs, ce, _SEQUENCE, "tbsCertificate")
    ext_field = [(s, e) for tag, s, e in _children(buf, tbs_start, tbs_end) if tag == _EXTENSIONS]
    if not ext_field:
        return None
    if len(ext_field) > 1:
        raise DerError("more than one extensions field")
    list_start, list_end = _expect(buf, *ext_field[0], _SEQUENCE, "extensions")
    found: list[str] | None = None
    for tag, s, e in _children(buf, list_start, list_end):
        if tag != _SEQUENCE:
            raise DerError("extension: unexpected tag")
        parts = list(_children(buf, s, e))
        if not parts or parts[0][0] != _OID:
            raise DerError("extension without an identifier")
        if _oid_text(buf[parts[0][1] : parts[0][2]]) != _EKU_OID:
            continue  # other extensions are not interpreted here
        if found is not None:
            raise DerError("extended key usage appears twice")
        rest = parts[1:]
        if rest and rest[0][0] == _BOOLEAN:
            rest = rest[1:]
        if len(rest) != 1 or rest[0][0] != _OCTET_STRING:
            raise DerError("extended key usage: no value")
        value_start, value_end = rest[0][1], rest[0][2]
        seq_start, seq_end = _expect(buf, value_start, value_end, _SEQUENCE, "extended key usage")
        if seq_end != value_end:
            raise DerError("extended key usage: trailing bytes")
        oids: list[str] = []
        for otag, os_, oe in _children(buf, seq_start, seq_end):
            if otag != _OID:
                raise DerError("extended key usage: not an object identifier")
            oids.append(_oid_text(buf[os_:oe]))
            if len(oids) > _MAX_OIDS:
                raise DerError("extended key usage: too many entries")
        if not oids:
            raise DerError("extended key usage: empty")
        found = oids
    return found
