"""The per-client not_found limiter (token bucket, bounded memory)."""

from __future__ import annotations

from typing import Any

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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_minute": 0},
        {"per_minute": float("nan")},
        {"burst": 0},
        {"burst": True},
        {"max_clients": 0},
    ],
)
def test_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        NotFoundLimiter(**kwargs)  # type: ignore[arg-type]


def test_http_answers_429_after_too_many_not_found(records_file: Any) -> None:
    """Through the real app (fast path and router, single, batch): a guessing client is
    stopped with 429 and Retry-After; another client and HC1 tokens are not affected."""
    from links.link_support import LINK, UNRZ
    from starlette.testclient import TestClient

    from verifier import Verifier
    from verifier.http import create_app

    wrong = LINK.replace(UNRZ, "9160000099999999")
    for fast in (True, False):
        v = Verifier.from_files(None, records=records_file)
        lim = NotFoundLimiter(per_minute=1, burst=3)
        with TestClient(create_app(v, link_limiter=lim, fast_path=fast)) as client:
            for _ in range(3):
                r = client.post("/v1/verify", json={"token": wrong})
                assert r.status_code == 200 and r.json()["reason"] == "not_found"
            r = client.post("/v1/verify", json={"token": wrong})
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "too_many_not_found"
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert UNRZ not in r.text and "9160000099999999" not in r.text
            r = client.post("/v1/verify/batch", json={"tokens": [wrong]})
            assert r.status_code == 429
            r = client.post("/v1/verify", json={"token": "HC1:XYZ"})  # not a link
            assert r.status_code == 200
        with TestClient(
            create_app(v, link_limiter=lim, fast_path=fast), client=("203.0.113.9", 5000)
        ) as other:
            assert other.post("/v1/verify", json={"token": wrong}).status_code == 200
