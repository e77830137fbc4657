"""qrverify's compiled fast path (Cython). There is no pure-Python fallback."""

from fastpath._decode import (
    MAX_INFLATED,
    MAX_TOKEN_CHARS,
    TYPE_NAMES,
    DecodeError,
    Decoded,
    decode,
    loads_cbor,
)

__all__ = [
    "MAX_INFLATED",
    "MAX_TOKEN_CHARS",
    "TYPE_NAMES",
    "DecodeError",
    "Decoded",
    "decode",
    "loads_cbor",
]
