"""The re-scan cache holds verified scans only, bounded by entries and by bytes."""

from __future__ import annotations

import tracemalloc

import pytest
from engine_support import AT, DAY, ES, NOW, assemble, key_of, token, verifier_for

from keys.cbor import dumps
from keys.samples import sample_dcc
from verifier import ConfigError, Reason

PAYLOAD = dumps(
    {
        1: "RU",
        4: NOW + 300 * DAY,
        6: NOW - 3600,
        -260: {1: sample_dcc("vaccination", at=NOW)},
        99: "a" * 12000,
    }
)


def _unknown_kid(i: int) -> str:
    protected = dumps({1: -7, 4: b"kid-%06d" % i})
    return assemble(protected, PAYLOAD, b"\x01" * 64)


def _bad_signature(i: int) -> str:
    protected = dumps({1: -7, 4: ES.kid})
    return assemble(protected, PAYLOAD, i.to_bytes(4, "big") * 16)


def _flood(count: int) -> None:
    v = verifier_for([key_of(ES)], cache_size=100_000)
    for i in range(count):
        verdict = v.verify(_unknown_kid(i) if i % 50 else _bad_signature(i), at=AT)
        assert verdict.reason in (Reason.UNKNOWN_KEY, Reason.BAD_SIGNATURE)
        assert verdict.holder is None
    status = v.status()["cache"]
    assert status["entries"] == 0 and status["bytes"] == 0
    assert v.cache_misses == count and v.cache_hits == 0


def test_unverifiable_tokens_never_enter_the_cache() -> None:
    """Distinct tokens that decode (a 12 KB claim each) but do not verify."""
    _flood(2_000)


@pytest.mark.slow
def test_20000_unverifiable_tokens_leave_the_cache_empty() -> None:
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        _flood(20_000)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 2_000_000  # nothing of 20,000 x 12 KB claims is kept


def test_a_verified_entry_keeps_no_signed_content() -> None:
    v = verifier_for([key_of(ES)])
    big = token(extra={99: "a" * 12000})  # compresses to a short token
    assert len(big) < 1000
    assert v.verify(big, at=AT).valid
    status = v.status()["cache"]
    assert status["entries"] == 1
    assert 0 < status["bytes"] < 3000  # key + fixed fields + names, not the 12 KB claim


def test_cache_is_bounded_by_bytes() -> None:
    tokens = [token(iat=NOW - 3600 - i) for i in range(40)]
    v = verifier_for([key_of(ES)], cache_bytes=20_000)
    for t in tokens:
        assert v.verify(t, at=AT).valid
    status = v.status()["cache"]
    assert 0 < status["bytes"] <= 20_000
    assert 5 < status["entries"] < 40
    assert v.verify(tokens[-1], at=AT).valid and v.cache_hits == 1  # most recent kept
    v.clear_cache()
    assert v.status()["cache"]["entries"] == 0 and v.status()["cache"]["bytes"] == 0


def test_entries_larger_than_the_byte_bound_are_not_cached() -> None:
    v = verifier_for([key_of(ES)], cache_bytes=100)
    assert v.verify(token(), at=AT).valid
    assert v.status()["cache"]["entries"] == 0


@pytest.mark.parametrize("bad", [-1, True, 1.5, 1 << 41])
def test_cache_bytes_is_validated(bad: object) -> None:
    with pytest.raises(ConfigError):
        verifier_for([key_of(ES)], cache_bytes=bad)


def test_rescan_of_same_token_is_one_entry() -> None:
    v = verifier_for([key_of(ES)])
    t = token()
    for _ in range(5):
        assert v.verify(t, at=AT).valid
    status = v.status()["cache"]
    assert status["entries"] == 1 and v.cache_hits == 4
    one = status["bytes"]
    v.verify(t + "\n", at=AT)  # cleaned to the same key: no second entry
    assert v.status()["cache"] == {**status, "hits": 5}
    assert one == v.cache_used
