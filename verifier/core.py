"""The Verifier: decode (fastpath), verify the signature (cryptography), apply
revocations, the registry and the acceptance rules. No I/O happens here.

A re-scan of the same token skips decoding and the signature: what was proven about
that exact token (the decoded fields and the key that verified it) is cached, keyed on
the whole token and on the trust registry object it was proven against. Revocations,
the registry, time and the rules are applied on every scan.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import fastpath
from verifier import rules as _rules
from verifier.reasons import Reason
from verifier.store import MemoryStore, Store
from verifier.verdict import Verdict

DEFAULT_LEEWAY = 300  # seconds of clock skew tolerated for iat / exp
DEFAULT_CACHE_SIZE = 20000

_DECODE_REASONS = {r.value: r for r in Reason}
_iso_utc = fastpath.iso_utc


class ConfigError(ValueError):
    """The verifier cannot be set up: missing or malformed files, bad rules."""


class _Proof:
    """What one token proved against one trust registry; immutable once built."""

    __slots__ = ("trust", "decoded", "failure", "holder", "type", "issuer", "_iso")

    def __init__(
        self, trust: Any, decoded: Any, failure: Reason | None, verified: bool = False
    ) -> None:
        self.trust = trust
        self.decoded = decoded
        self.failure = failure
        self.holder: tuple[str, str, str] | None = None
        self._iso: tuple[int, str] = (0, "")
        if verified:  # signature checked and payload well-formed: safe to show
            self.holder = _holder(decoded)
            self.type = decoded.cert_type
            self.issuer = decoded.country

    def iso(self, ts: int) -> str:
        cached = self._iso
        if cached[0] == ts and cached[1]:
            return cached[1]
        text = _iso_utc(ts)
        self._iso = (ts, text)
        return text


def _holder(d: Any) -> tuple[str, str, str]:
    fn, gn, fnt, gnt = d.fn, d.gn, d.fnt, d.gnt
    name = f"{fn} {gn}" if fn and gn else fn or gn or ""
    latin = f"{fnt}<{gnt}" if fnt and gnt else fnt or gnt or ""
    return (name or latin.replace("<", " "), latin, d.dob)


def _epoch(at: datetime | float | None) -> int:
    if at is None:
        return int(time.time())
    if isinstance(at, datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return int(at.timestamp())
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return int(at)
    raise TypeError("at must be a datetime, epoch seconds or None")


class Verifier:
    """Verifies HC1 tokens against a store (trust keys, revocations, registry)."""

    def __init__(
        self,
        store: Store,
        rules: str | os.PathLike[str] | _rules.Rules = "venue",
        *,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not 0 <= leeway <= 86400:
            raise ConfigError("leeway must be between 0 and 86400 seconds")
        if not 0 <= cache_size <= 10_000_000:
            raise ConfigError("cache_size must be between 0 and 10,000,000")
        try:
            self.rules = _rules.load(rules)
        except _rules.RulesError as exc:
            raise ConfigError(str(exc)) from None
        self.store = store
        self.leeway = leeway
        self._cache: OrderedDict[Any, _Proof] = OrderedDict()
        self._cache_size = cache_size
        self.cache_hits = 0
        self.cache_misses = 0

    @classmethod
    def from_files(
        cls,
        trust: str | os.PathLike[str] | None = None,
        revocations: str | os.PathLike[str] | None = None,
        rules: str | os.PathLike[str] | _rules.Rules = "venue",
        **kwargs: Any,
    ) -> Verifier:
        """A verifier on the embedded store, loaded from the contract's files."""
        try:
            store = MemoryStore.from_files(trust, revocations)
        except (OSError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        return cls(store, rules, **kwargs)

    # -- verification -----------------------------------------------------------------

    def verify(self, token: Any, at: datetime | float | None = None) -> Verdict:
        """Verify one token at time `at` (default now). Never raises for bad tokens."""
        now = _epoch(at)
        trust = self.store.trust
        cache = self._cache
        try:
            proof = cache.get(token)
        except TypeError:  # unhashable input (bytearray, memoryview, junk)
            proof = None
            token = _hashable(token)
        if proof is None or proof.trust is not trust:
            self.cache_misses += 1
            proof = self._prove(token, trust)
            if proof.decoded is not None and self._cache_size:
                cache[token] = proof
                if len(cache) > self._cache_size:
                    cache.popitem(last=False)
        else:
            self.cache_hits += 1
            try:
                cache.move_to_end(token)
            except KeyError:  # evicted meanwhile by another thread
                pass
        return self._judge(proof, now)

    def verify_many(
        self, tokens: Iterable[Any], at: datetime | float | None = None
    ) -> list[Verdict]:
        """Verify tokens in order, all at the same instant."""
        now = _epoch(at)
        verify = self.verify
        return [verify(t, now) for t in tokens]

    def _prove(self, token: Any, trust: Any) -> _Proof:
        try:
            d = fastpath.decode(token)
        except fastpath.DecodeError as exc:
            return _Proof(trust, None, _DECODE_REASONS[exc.reason])
        except Exception:  # noqa: BLE001 - fail closed on anything unforeseen
            return _Proof(trust, None, Reason.BAD_COSE)
        if d.kid is None:
            return _Proof(trust, d, Reason.UNKNOWN_KEY)
        candidates = trust.candidates(d.kid)
        if not candidates:
            return _Proof(trust, d, Reason.UNKNOWN_KEY)
        alg, sig, data = d.alg, d.signature, d.sig_structure
        for key in candidates:
            if key.verify(alg, sig, data):
                break
        else:
            return _Proof(trust, d, Reason.BAD_SIGNATURE)
        if not d.payload_ok:
            return _Proof(trust, d, Reason.BAD_PAYLOAD)
        if key.types is not None and d.cert_type not in key.types:
            return _Proof(trust, d, Reason.KEY_USAGE, verified=True)
        nb, na = key.not_before, key.not_after
        if (nb is not None and d.iat < nb) or (na is not None and d.exp > na):
            return _Proof(trust, d, Reason.KEY_EXPIRED, verified=True)
        return _Proof(trust, d, None, verified=True)

    def _judge(self, proof: _Proof, now: int) -> Verdict:
        holder = proof.holder
        if proof.failure is not None:
            if holder is None:
                return Verdict(proof.failure)
            until = proof.iso(proof.decoded.exp)
            return Verdict(proof.failure, holder, (proof.type, proof.issuer, until))
        d = proof.decoded
        leeway = self.leeway
        reason: Reason | None
        if now > d.exp + leeway:
            reason, until = Reason.TOKEN_EXPIRED, d.exp
        elif d.iat > now + leeway:
            reason, until = Reason.TOKEN_NOT_YET_VALID, d.exp
        else:
            store = self.store
            rules = self.rules
            if store.is_revoked(d.uci_hash, d.cuci_hash, d.sig_hash):
                reason, until = Reason.REVOKED, d.exp
            elif proof.type in rules.registry_types and store.in_registry(d.uci_hash) is False:
                reason, until = Reason.NOT_IN_REGISTRY, d.exp
            else:
                reason, until = rules.evaluate(d, now)
        return Verdict(reason, holder, (proof.type, proof.issuer, proof.iso(until)))

    # -- operations -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        out = dict(self.store.status())
        out["rules"] = self.rules.name
        out["cache"] = {
            "entries": len(self._cache),
            "capacity": self._cache_size,
            "hits": self.cache_hits,
            "misses": self.cache_misses,
        }
        return out

    def clear_cache(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self.store.close()


def _hashable(token: Any) -> Any:
    if isinstance(token, (bytearray, memoryview)):
        return bytes(token)
    return token
