"""Type stub for the compiled verification engine (fastpath/_engine.pyx)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from fastpath._decode import ValueSets
from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from verifier.rules import Rules
from verifier.verdict import Verdict

class Snapshot(Protocol):
    """One consistent state of a store (verifier.store.Replica or its successors)."""

    @property
    def trust(self) -> TrustRegistry: ...
    @property
    def revoked(self) -> HashSet: ...
    @property
    def registry(self) -> HashSet | None: ...

class SnapshotSource(Protocol):
    """A store as the engine sees it: `replica` is read once per scan."""

    @property
    def replica(self) -> Snapshot: ...

class Engine:
    """The per-scan path of verifier.Verifier (a subclass): one store snapshot per scan,
    re-scan cache, decode, signature, clock, revocation/registry sets, acceptance rules."""

    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...
    @property
    def cache_used(self) -> int:
        """Estimated bytes held by the re-scan cache."""
    def __init__(
        self,
        store: SnapshotSource,
        rules: Rules,
        *,
        leeway: int,
        cache_size: int,
        cache_bytes: int = ...,
        link_origins: Iterable[str] = (),
        valuesets: ValueSets | None = None,
        native: bool = False,
        fixed_valuesets: bool = True,
    ) -> None:
        """`link_origins`: extra register-link origins; `native`: verify signatures through
        libcrypto (fastpath._ossl) where a key allows; `valuesets`: the EU value sets coded
        fields are checked against (None: not checked); `fixed_valuesets` False: a
        snapshot that carries value sets (`snap.valuesets`, from Redis) is checked against
        those instead."""
    @property
    def valuesets(self) -> ValueSets | None:
        """The EU value sets coded fields are checked against (None: not checked)."""
    @property
    def cache_entries(self) -> int: ...
    def clear_cache(self) -> None: ...
    def verify(self, token: str | bytes, at: datetime | float | None = None) -> Verdict:
        """Verify one token at time `at` (default now). Never raises for bad tokens."""
    def verify_many(
        self, tokens: Iterable[str | bytes], at: datetime | float | None = None
    ) -> list[Verdict]:
        """Verify tokens in order, all at the same instant."""
