"""HashSet placement is keyed (issue 10.2): crafted keys cannot build long probe chains;
read-only views over a written table (the mapped snapshot's building block)."""

from __future__ import annotations

import io
import mmap
import os

import pytest

from fastpath._hashset import HashSet, apply_changes, table_view

PREFIX = b"\x13\x37" * 4


def shared_prefix(n: int) -> bytes:
    """n distinct keys with the same first 8 bytes (the attack of issue 10.2)."""
    return b"".join(PREFIX + i.to_bytes(8, "big") for i in range(n))


def test_shared_prefix_keys_do_not_cluster():
    keys = shared_prefix(200_000)
    s = HashSet(keys)
    assert len(s) == 200_000
    longest, mean = s.probe_stats()
    # Unkeyed placement put all 200,000 on one home slot (longest 199,999). Keyed, the
    # table behaves like one of random keys at ~85 % load.
    assert longest < 200, longest
    assert mean < 6.0, mean
    assert all(PREFIX + i.to_bytes(8, "big") in s for i in range(0, 200_000, 997))
    assert PREFIX + (200_000).to_bytes(8, "big") not in s
    assert s.to_packed() == keys  # still ascending byte order


def test_delta_path_of_colliding_adds_stays_short():
    """5,000 crafted adds to a large set go through the one-by-one insert path (the Redis
    delta path); every insert walks a short cluster, so the probes stay bounded."""
    base = HashSet(os.urandom(16 * 100_000))
    extra = shared_prefix(5_000)
    apply_changes([(base, extra, None)])
    assert len(base) == 105_000
    longest, mean = base.probe_stats()
    assert longest < 200 and mean < 6.0, (longest, mean)
    assert base.missing_packed(extra) == b""


def test_two_sets_use_the_same_process_seed_but_views_bring_their_own():
    keys = os.urandom(16 * 1000)
    a, b = HashSet(keys), HashSet(keys)
    assert a.table_info()["seed"] == b.table_info()["seed"]
    assert len(a.table_info()["seed"]) == 32


def _written(s: HashSet) -> tuple[bytes, dict]:
    buf = io.BytesIO()
    n = s.write_table(buf, block=4096)
    data = buf.getvalue()
    assert n == len(data) == s.nbytes
    return data, s.table_info()


def test_table_view_round_trip_and_read_only(tmp_path):
    keys = os.urandom(16 * 5000) + bytes(16)  # includes the all-zero key
    s = HashSet(keys)
    data, info = _written(s)
    path = tmp_path / "t"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    view = table_view(memoryview(mm), info["cap"], info["count"], info["has_zero"], info["seed"])
    assert view.readonly and len(view) == len(s) == 5001
    assert view == s and view.to_packed() == s.to_packed()
    assert bytes(16) in view and os.urandom(16) not in view
    for bad in (
        lambda: view.add(os.urandom(16)),
        lambda: view.discard(keys[:16]),
        lambda: view.add_packed(os.urandom(32)),
        lambda: apply_changes([(view, os.urandom(16), None)]),
    ):
        with pytest.raises(TypeError):
            bad()
    copy = view.copy()  # writable, same seed
    assert not copy.readonly and copy.add(b"\x01" * 16) and len(copy) == 5002
    assert len(view) == 5001


def test_table_view_refuses_a_damaged_table():
    s = HashSet(os.urandom(16 * 300))
    data, info = _written(s)
    args = (info["cap"], info["count"], info["has_zero"], info["seed"])
    with pytest.raises(ValueError, match="count"):
        table_view(data, info["cap"], info["count"] + 1, info["has_zero"], info["seed"])
    with pytest.raises(ValueError, match="shape"):
        table_view(data[:-16] + b"\x01" * 16, *args)  # closing slot not empty
    with pytest.raises(ValueError, match="shape"):
        table_view(data, len(data) // 16, *args[1:])  # cap beyond the slots
    with pytest.raises(ValueError, match="multiple of 16"):
        table_view(data[:-3], *args)
    with pytest.raises(ValueError, match="seed"):
        table_view(data, info["cap"], info["count"], info["has_zero"], b"short")


def test_view_with_another_seed_finds_nothing():
    keys = os.urandom(16 * 2000)
    s = HashSet(keys)
    data, info = _written(s)
    other = bytes(32) if info["seed"] != bytes(32) else b"\x01" * 32
    wrong = table_view(data, info["cap"], info["count"], info["has_zero"], other)
    found = sum(keys[i : i + 16] in wrong for i in range(0, len(keys), 16))
    assert found < 20
