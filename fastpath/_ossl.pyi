"""Signature verification through the system libcrypto 3 (loaded with dlopen)."""

from keys.registry import IssuerKey

ALG_ES256: int
ALG_EDDSA: int
ALG_PS256: int
EC_MAX_TABLES: int

def available() -> bool:
    """True when the system libcrypto 3 and every entry point used were found."""

def version() -> str:
    """The loaded libcrypto's version text ('' when unavailable)."""

def ec_available() -> bool:
    """True when the ES256 table path's entry points were found (else ES256 uses EVP)."""

def ec_tables() -> int:
    """How many ES256 keys hold a precomputed table now."""

def set_ec_max_tables(limit: int) -> int:
    """Cap the number of ES256 keys holding a table; returns the previous cap."""

def set_background_tables(on: bool) -> bool:
    """Build ES256 tables on a background thread (True) or in the verifying call (False,
    the default); returns the previous setting."""

def wait_tables(timeout: float = 10.0) -> bool:
    """Wait until no table is being built in the background; True when none is."""

def supported(alg: int) -> bool:
    """True when `alg` (a COSE algorithm number) can be verified natively."""

class NativeKey:
    """One issuer public key (SubjectPublicKeyInfo DER) parsed by libcrypto, for one COSE
    algorithm (ES256 on P-256, PS256 with RSA >= 2048 bits, EdDSA on Ed25519).
    Raises ValueError when the key does not fit the algorithm or libcrypto is missing."""

    alg: int
    def __init__(self, spki: bytes, alg: int, fast: bool = True) -> None: ...
    def verify(self, alg: int, signature: bytes, data: bytes) -> bool:
        """True if the raw COSE signature over data is valid; never raises for bad input."""
    def verify_digest(self, digest: bytes, signature: bytes) -> bool:
        """ES256: True if r || s is valid for the 32-byte SHA-256 digest."""
    @property
    def table(self) -> int:
        """ES256 table path: 1 ready, 0 not built yet, 2 being built in the background,
        -1 this key uses EVP."""

NATIVE_CACHE_MAX: int
"""How many NativeKeys native_key() keeps for the process (least recently used first out)."""

def native_key(issuer_key: IssuerKey) -> NativeKey | None:
    """A NativeKey for an issuer key, or None when it is left to cryptography; the same
    public key and algorithm give the same object (one ES256 table per process)."""

def self_test() -> str | None:
    """None when libcrypto and cryptography agree on every self-test case, else what
    differed (the verifier then stays on cryptography)."""

def speed(key: NativeKey, pairs: list[tuple[bytes, bytes]], rounds: int = 1) -> tuple[float, int]:
    """(seconds, verified count) for verifying every pair `rounds` times in a C loop."""

def checked() -> str | None:
    """self_test(), run once per process: None when libcrypto may be used, else why not."""
