"""Type stub for the compiled HC1 decoder (fastpath/_decode.pyx)."""

from collections.abc import Iterable, Mapping
from typing import Any

MAX_TOKEN_CHARS: int
MAX_INFLATED: int
TYPE_NAMES: tuple[str, str, str]
VALUESET_FIELDS: tuple[str, ...]

class DecodeError(ValueError):
    """A token that cannot be decoded; `reason` is a contract reason code
    (bad_prefix, bad_base45, bad_compression, too_large, bad_cose, bad_cwt); `detail` is
    None or an English sentence saying what was wrong (no personal data)."""

    reason: str
    detail: str | None
    def __init__(self, reason: str, detail: str | None = None) -> None: ...

class ValueSets:
    """EU value-set codes compiled into one C-level table; names: VALUESET_FIELDS.
    A value set that is not given is not checked."""

    fields: int
    size: int
    source: str
    def __init__(self, sets: Mapping[str, Iterable[str]], source: str = "") -> None: ...
    def contains(self, name: str, code: str) -> bool: ...
    @property
    def loaded(self) -> tuple[str, ...]: ...
    def __len__(self) -> int: ...

def set_default_valuesets(valuesets: ValueSets | None) -> ValueSets | None:
    """Value sets `decode` checks when given none; returns the previous ones."""

def default_valuesets() -> ValueSets | None: ...

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
    payload_field: str | None
    """When payload_ok is False: the first field that failed ("" = the whole payload)."""
    payload_detail: str | None
    """When payload_ok is False: an English sentence naming that field."""
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
    """Vaccine product code (vaccination certificates only)."""
    uci_hash: bytes | None
    cuci_hash: bytes | None
    """SHA-256 prefix of iss (else co) + ci."""
    cuci_co_hash: bytes | None
    """SHA-256 prefix of co + ci; the same object as cuci_hash when iss is absent or
    equals co (check both only when they differ)."""
    sig_hash: bytes | None
    @property
    def country(self) -> str | None: ...
    @property
    def issuer_display(self) -> str | None:
        """iss (else co) as a verdict shows it: display-spoofing characters replaced by
        U+FFFD, at most 80 characters."""

def decode(
    token: str | bytes | bytearray | memoryview,
    max_inflated: int = ...,
    valuesets: ValueSets | None = ...,
) -> Decoded:
    """Decode an HC1 token; raise DecodeError for anything malformed. Coded fields are
    checked against `valuesets` (default: default_valuesets(); None: not checked)."""

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
