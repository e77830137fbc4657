"""Per-client limit on `not_found` answers (enumeration resistance for register links).

A client that keeps asking for links the register does not have is guessing. Each
client has a token bucket of `burst` not_found answers, refilled at `per_minute`; once it
is empty, the HTTP API answers 429 with Retry-After (seconds until one answer is back)
for that client's next register-link requests, without looking them up. Valid answers
cost nothing. Clients are identified by the API key name or the peer address; at most
`max_clients` buckets are kept (least recently used dropped), so memory is bounded.

Hook for the HTTP layer (verifier/http):

    wait = limiter.retry_after(client)      # before verifying a link
    if wait: answer 429, headers {"Retry-After": str(wait)}
    ...
    if verdict.reason is Reason.NOT_FOUND: limiter.note_not_found(client)

The limiter holds no identifiers, links or record fields, only client names and numbers.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["NotFoundLimiter", "gate", "note", "who"]


class NotFoundLimiter:
    """Token bucket per client of not_found answers (thread-safe)."""

    def __init__(
        self,
        per_minute: float = 30.0,
        burst: int = 20,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (per_minute > 0 and math.isfinite(per_minute)):
            raise ValueError("per_minute must be a positive number")
        if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 1_000_000:
            raise ValueError("burst must be a whole number from 1 to 1,000,000")
        if not 1 <= max_clients <= 10_000_000:
            raise ValueError("max_clients must be from 1 to 10,000,000")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, client: str, now: float) -> float:
        entry = self._buckets.get(client)
        if entry is None:
            return self.burst
        tokens, then = entry
        return min(self.burst, tokens + (now - then) * self.rate)

    def retry_after(self, client: str) -> int:
        """0 when the client may be answered now, else whole seconds to wait (>= 1)."""
        with self._lock:
            now = self._clock()
            level = self._level(client, now)
            if level >= 1.0:
                return 0
            return max(1, math.ceil((1.0 - level) / self.rate))

    def note_not_found(self, client: str) -> None:
        """Count one not_found answer given to the client."""
        with self._lock:
            now = self._clock()
            level = self._level(client, now)
            self._buckets[client] = (max(0.0, level - 1.0), now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def _is_link(token: object) -> bool:
    if isinstance(token, str):
        head = token[:8].lower()
    elif isinstance(token, bytes):
        head = token[:8].lower().decode("latin-1")
    else:
        return False
    return head.startswith(("http://", "https://"))


def who(client: str | None, peer: Any) -> str:
    """The limiter's client: the API key name, else the peer address."""
    if client is not None:
        return "key:" + client
    if isinstance(peer, (tuple, list)) and peer:
        return "ip:" + str(peer[0])
    return "-"


def gate(limiter: NotFoundLimiter | None, tokens: Iterable[object], client: str) -> None:
    """Raise the HTTP API's 429 (ApiError too_many_not_found, Retry-After) when the
    client has run out of not_found answers and asks about a register link."""
    if limiter is None or not any(_is_link(t) for t in tokens):
        return
    wait = limiter.retry_after(client)
    if wait:
        from verifier.http._request import ApiError

        raise ApiError("too_many_not_found", headers=[(b"retry-after", str(wait).encode())])


def note(limiter: NotFoundLimiter | None, verdicts: Iterable[Any], client: str) -> None:
    """Count the not_found answers given to the client."""
    if limiter is None:
        return
    for verdict in verdicts:
        reason = getattr(verdict, "reason", None)
        if reason is not None and str(getattr(reason, "value", reason)) == "not_found":
            limiter.note_not_found(client)
