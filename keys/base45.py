"""Base45 (RFC 9285), strict: any character outside the alphabet, a dangling single
character or a chunk value out of range is an error."""

from __future__ import annotations

__all__ = ["ALPHABET", "decode", "encode"]

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def encode(data: bytes) -> str:
    """Encode bytes as Base45 text."""
    out: list[str] = []
    a = ALPHABET
    n = len(data)
    for i in range(0, n - 1, 2):
        v = (data[i] << 8) | data[i + 1]
        v, c = divmod(v, 45)
        e, d = divmod(v, 45)
        out.append(a[c] + a[d] + a[e])
    if n % 2:
        d, c = divmod(data[-1], 45)
        out.append(a[c] + a[d])
    return "".join(out)


def decode(text: str) -> bytes:
    """Decode Base45 text; raises ValueError on anything that is not canonical Base45."""
    n = len(text)
    if n % 3 == 1:
        raise ValueError("invalid Base45 length")
    idx = _INDEX
    out = bytearray()
    try:
        for i in range(0, n - 2, 3):
            v = idx[text[i]] + idx[text[i + 1]] * 45 + idx[text[i + 2]] * 2025
            if v > 0xFFFF:
                raise ValueError("invalid Base45 triplet")
            out.append(v >> 8)
            out.append(v & 0xFF)
        if n % 3 == 2:
            v = idx[text[-2]] + idx[text[-1]] * 45
            if v > 0xFF:
                raise ValueError("invalid Base45 pair")
            out.append(v)
    except KeyError:
        raise ValueError("invalid Base45 character") from None
    return bytes(out)
