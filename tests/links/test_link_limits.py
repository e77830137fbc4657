"""The per-client not_found limiter (token bucket, bounded memory)."""

from __future__ import annotations

import pytest

from verifier.link_limits import NotFoundLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_empties_and_refills() -> None:
    clock = Clock()
    lim = NotFoundLimiter(per_minute=6, burst=3, clock=clock)  # one back every 10 s
    for _ in range(3):
        assert lim.retry_after("a") == 0
        lim.note_not_found("a")
    assert lim.retry_after("a") == 10
    assert lim.retry_after("b") == 0  # per client
    clock.now += 4
    assert lim.retry_after("a") == 6
    clock.now += 6
    assert lim.retry_after("a") == 0
    lim.note_not_found("a")
    assert lim.retry_after("a") == 10


def test_memory_is_bounded() -> None:
    lim = NotFoundLimiter(per_minute=1, burst=1, max_clients=100, clock=Clock())
    for i in range(1000):
        lim.note_not_found(f"c{i}")
    assert len(lim) == 100
    assert lim.retry_after("c999") > 0 and lim.retry_after("c0") == 0


@pytest.mark.parametrize("kwargs", [{"per_minute": 0}, {"per_minute": float("nan")},
                                    {"burst": 0}, {"burst": True}, {"max_clients": 0}])
def test_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        NotFoundLimiter(**kwargs)  # type: ignore[arg-type]
