"""qrverify's compiled fast path (Cython). There is no pure-Python fallback."""

from fastpath._decode import (
    MAX_INFLATED,
    MAX_TOKEN_CHARS,
    TYPE_NAMES,
    Decoded,
    DecodeError,
    decode,
    ecdsa_der,
    iso_utc,
    loads_cbor,
    sha256_16,
    sha256_backend,
    zlib_backend,
)
from fastpath._hashset import HashSet

__all__ = [
    "MAX_INFLATED",
    "MAX_TOKEN_CHARS",
    "TYPE_NAMES",
    "DecodeError",
    "Decoded",
    "HashSet",
    "decode",
    "ecdsa_der",
    "iso_utc",
    "loads_cbor",
    "sha256_16",
    "sha256_backend",
    "zlib_backend",
]
