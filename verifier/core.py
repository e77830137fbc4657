"""The Verifier: the Python API over the compiled verification engine.

A scan decodes the token (fastpath._decode), verifies its signature with the issuer's key
(the system libcrypto through fastpath._ossl once its start-up self-test agreed with
cryptography, else cryptography; `signatures=` chooses), then applies the clock, the
store's revocation and registry sets and the acceptance rules (fastpath._engine, whose
Engine this class extends). No I/O happens here: the store keeps an in-process replica
and owns all network work; each scan reads that replica once.

A re-scan of the same token skips decoding and the signature: what was proven about that
exact verified token (its times, revocation hashes, rule window, holder and certificate;
no signed content) is cached, bounded by entries and by bytes, LRU, keyed on the cleaned
token and on the trust registry object it was proven against. Tokens that fail before
their signature holds are never cached. The signing key's validity, revocations, the
registry, time and the rules are applied on every scan.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from fastpath import _ossl
from fastpath._engine import Engine
from verifier import rules as _rules
from verifier.errors import QrverifyError
from verifier.store import MemoryStore, Store
from verifier.valuesets import ValueSetError, ValueSets, load_valuesets, packaged_valuesets

DEFAULT_LEEWAY = 300  # seconds of clock skew tolerated for iat / exp
DEFAULT_CACHE_SIZE = 20000
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024  # estimated bytes of the re-scan cache, at most


class ConfigError(QrverifyError, ValueError):
    """The verifier cannot be set up: missing or malformed files, bad rules."""


def _valuesets_arg(arg: str | os.PathLike[str] | ValueSets | None) -> ValueSets:
    if arg is None:
        return packaged_valuesets()
    if isinstance(arg, ValueSets):
        return arg
    return load_valuesets(arg)


SIGNATURE_BACKENDS = ("auto", "libcrypto", "cryptography")
_log = logging.getLogger("qrverify")


def _signature_backend(choice: str) -> str:
    """The backend a verifier uses: libcrypto (fastpath._ossl) when it passed its
    start-up self-test against cryptography, else cryptography. `libcrypto` insists."""
    if choice not in SIGNATURE_BACKENDS:
        raise ConfigError(f"signatures must be one of {', '.join(SIGNATURE_BACKENDS)}")
    if choice == "cryptography":
        return choice
    why = _ossl.checked()
    if why is None:
        return "libcrypto"
    if choice == "libcrypto":
        raise ConfigError(f"libcrypto signature backend unavailable: {why}")
    _log.warning("signatures: using cryptography, libcrypto unavailable (%s)", why)
    return "cryptography"


class Verifier(Engine):
    """Verifies HC1 tokens against a store (trust keys, revocations, registry).

    `verify` and `verify_many` are the compiled engine's own methods (no Python frame per
    scan): see fastpath/_engine.pyi for their signatures.
    """

    def __init__(
        self,
        store: Store,
        rules: str | os.PathLike[str] | _rules.Rules = "venue",
        *,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        link_origins: Iterable[str] = (),
        valuesets: str | os.PathLike[str] | ValueSets | None = None,
        signatures: str = "auto",
    ) -> None:
        if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= 86400:
            raise ConfigError("leeway must be a whole number of seconds from 0 to 86400")
        if (
            isinstance(cache_size, bool)
            or not isinstance(cache_size, int)
            or not 0 <= cache_size <= 10_000_000
        ):
            raise ConfigError("cache_size must be a whole number from 0 to 10,000,000")
        if (
            isinstance(cache_bytes, bool)
            or not isinstance(cache_bytes, int)
            or not 0 <= cache_bytes <= 1 << 40
        ):
            raise ConfigError("cache_bytes must be a whole number from 0 to 2**40")
        try:
            self.rules = _rules.load(rules)
        except _rules.RulesError as exc:
            raise ConfigError(str(exc)) from None
        try:  # None: the EU value sets shipped as package data; a directory replaces them
            vs = _valuesets_arg(valuesets)
        except ValueSetError as exc:
            raise ConfigError(str(exc)) from None
        self.store = store
        self.leeway = leeway
        self._cache_size = cache_size
        self.signatures = _signature_backend(signatures)
        try:
            super().__init__(
                store,
                self.rules,
                leeway=leeway,
                cache_size=cache_size,
                cache_bytes=cache_bytes,
                link_origins=tuple(link_origins),
                valuesets=vs,
                native=self.signatures == "libcrypto",
                # given value sets win; else a Redis version's own (snap.valuesets) apply
                fixed_valuesets=valuesets is not None,
            )
        except ValueError as exc:  # a malformed --link-origin
            raise ConfigError(str(exc)) from None

    @classmethod
    def from_files(
        cls,
        trust: str | os.PathLike[str] | None = None,
        revocations: str | os.PathLike[str] | None = None,
        rules: str | os.PathLike[str] | _rules.Rules = "venue",
        *,
        records: str | os.PathLike[str] | None = None,
        drl: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Verifier:
        """A verifier on the embedded store, loaded from the contract's files (`records`:
        the register's records, JSON Lines or CSV, for register links; `drl`: the EU
        revocation list, kid-scoped)."""
        try:
            store = MemoryStore.from_files(trust, revocations, records, drl)
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        return cls(store, rules, **kwargs)

    @property
    def cache_hits(self) -> int:
        return int(self.hits)

    @property
    def cache_misses(self) -> int:
        return int(self.misses)

    def status(self) -> dict[str, Any]:
        out = dict(self.store.status())
        out["rules"] = self.rules.name
        out["signatures"] = self.signatures
        out["cache"] = {
            "entries": self.cache_entries,
            "capacity": self._cache_size,
            "bytes": self.cache_used,
            "hits": self.cache_hits,
            "misses": self.cache_misses,
        }
        return out

    def close(self) -> None:
        self.store.close()
