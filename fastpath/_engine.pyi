"""Type stub for the compiled verification engine (fastpath/_engine.pyx)."""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

class Engine:
    """The per-scan path of verifier.Verifier, which builds it: re-scan cache, decode,
    signature, clock, revocation/registry sets of the store's replica, acceptance rules."""

    hits: int
    misses: int
    def __init__(
        self,
        store: Any,
        rules: Any,
        *,
        leeway: int,
        cache_size: int,
        verdict: Callable[..., Any],
        reasons: Mapping[str, Any],
        to_epoch: Callable[[Any], int],
        links: Any = None,
    ) -> None: ...
    @property
    def cache_entries(self) -> int: ...
    def clear_cache(self) -> None: ...
    def verify(self, token: str | bytes, at: datetime | float | None = None) -> Any:
        """Verify one token at `at` (None = now, a datetime, or epoch seconds)."""
    def verify_many(
        self, tokens: Iterable[str | bytes], at: datetime | float | None = None
    ) -> list[Any]:
        """Verify tokens in order, all at the same instant."""
