"""Type stub for the compiled HC1 decoder (fastpath/_decode.pyx)."""

from typing import Any

MAX_TOKEN_CHARS: int
MAX_INFLATED: int
TYPE_NAMES: tuple[str, str, str]

class DecodeError(ValueError):
    """A token that cannot be decoded; `reason` is a contract reason code
    (bad_prefix, bad_base45, bad_compression, too_large, bad_cose, bad_cwt)."""

    reason: str
    def __init__(self, reason: str) -> None: ...

class Decoded:
    """What a token says before its signature is checked. Show nothing from it
    until `signature` over `sig_structure` verified with a key for `kid`."""

    alg: int
    kid: bytes | None
    signature: bytes
    sig_structure: bytes
    iss: str | None
    exp: int
    iat: int
    payload_ok: bool
    """The DCC payload passed the EU DCC 1.3 schema check; the fields below are set."""
    type_index: int
    cert_type: str | None
    fn: str | None
    gn: str | None
    fnt: str | None
    gnt: str | None
    dob: str | None
    ci: str | None
    co: str | None
    dn: int
    sd: int
    dt: int
    fr: int
    df: int
    du: int
    sc: int
    tt: str | None
    tr: str | None
    mp: str | None
    uci_hash: bytes | None
    cuci_hash: bytes | None
    cuci_co_hash: bytes | None
    sig_hash: bytes | None
    @property
    def country(self) -> str | None: ...

def decode(token: str | bytes | bytearray | memoryview, max_inflated: int = ...) -> Decoded:
    """Decode an HC1 token; raise DecodeError for anything malformed."""

def loads_cbor(data: bytes) -> Any:
    """Decode one CBOR item without tags (ValueError if malformed); for tests and tools."""

def sha256_16(data: bytes, prefix: bytes = b"") -> bytes:
    """First 16 bytes of SHA-256(prefix || data), with the built-in C code."""

def ecdsa_der(signature: bytes) -> bytes:
    """Raw COSE ECDSA signature r || s -> DER; ValueError for a bad length."""

def iso_utc(ts: int) -> str:
    """Epoch seconds -> 'YYYY-MM-DDTHH:MM:SSZ'."""

def sha256_backend(name: str | None = None) -> str:
    """'sha-ni' (x86 SHA extensions) or 'portable'; with `name`, switch (for tests)."""

def zlib_backend(name: str | None = None) -> str:
    """'libz' (direct) or 'python'; with `name`, switch (for tests)."""
