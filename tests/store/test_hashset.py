"""fastpath.HashSet against a Python set model."""

from __future__ import annotations

import copy
import os
import pickle

import pytest
from examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpath._hashset import HashSet, apply_changes

ZERO = bytes(16)
ONES = b"\xff" * 16


def packed(keys):
    return b"".join(keys)


def test_empty():
    s = HashSet()
    assert len(s) == 0 and not s
    assert ZERO not in s and ONES not in s
    assert s.to_packed() == b""
    assert list(s) == []


def test_add_discard_contains_including_zero_and_max_keys():
    s = HashSet()
    assert s.add(ZERO) is True
    assert s.add(ZERO) is False
    assert s.add(ONES) is True
    assert ZERO in s and ONES in s and len(s) == 2
    assert s.to_packed() == ZERO + ONES
    assert s.discard(ZERO) is True
    assert s.discard(ZERO) is False
    assert ZERO not in s and ONES in s and len(s) == 1


@pytest.mark.parametrize("bad", [b"", b"x" * 15, b"x" * 17, b"x" * 32])
def test_wrong_size_key_is_value_error(bad):
    s = HashSet()
    for op in (s.add, s.discard, s.contains, s.__contains__):
        with pytest.raises(ValueError, match="exactly 16 bytes"):
            op(bad)
    with pytest.raises(ValueError):
        s.contains_any(ZERO, bad, ZERO)


def test_wrong_type_is_type_error():
    s = HashSet()
    with pytest.raises(TypeError):
        s.add("0123456789abcdef")
    with pytest.raises(TypeError):
        s.add(12)


def test_bytearray_and_memoryview_keys():
    s = HashSet()
    key = os.urandom(16)
    s.add(bytearray(key))
    assert memoryview(key) in s and key in s


@pytest.mark.parametrize("length", [1, 15, 17, 33])
def test_packed_length_must_be_multiple_of_16(length):
    s = HashSet()
    s.add(ONES)
    with pytest.raises(ValueError, match="multiple of 16"):
        s.add_packed(b"a" * length)
    with pytest.raises(ValueError, match="multiple of 16"):
        s.discard_packed(b"a" * length)
    assert len(s) == 1


def test_bulk_add_and_discard_counts_and_order():
    keys = [os.urandom(16) for _ in range(5000)]
    s = HashSet()
    assert s.add_packed(packed(keys + keys[:100])) == 5000
    assert len(s) == 5000
    assert s.to_packed() == packed(sorted(keys))
    assert s.discard_packed(packed(keys[:2000] + [os.urandom(16)])) == 2000
    assert len(s) == 3000
    assert all(k not in s for k in keys[:2000]) and all(k in s for k in keys[2000:])
    # small batches take the incremental path
    assert s.add_packed(packed(keys[:10])) == 10
    assert s.discard_packed(packed(keys[:5])) == 5
    assert len(s) == 3005


def test_buffer_protocol_inputs():
    keys = [os.urandom(16) for _ in range(100)]
    data = packed(keys)
    for buf in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
        s = HashSet(buf)
        assert len(s) == 100 and keys[42] in s


def test_copy_is_independent_and_equal():
    s = HashSet(os.urandom(16 * 1000))
    c = s.copy()
    assert c == s and c is not s
    c.add(ZERO)
    assert ZERO not in s and c != s
    assert copy.copy(s) == s
    assert pickle.loads(pickle.dumps(s)) == s


def test_growth_by_rehash_keeps_every_key():
    keys = [os.urandom(16) for _ in range(50_000)]
    s = HashSet()
    for k in keys:
        s.add(k)
    assert len(s) == 50_000
    assert s.capacity >= 50_000
    assert all(k in s for k in keys)
    assert s.nbytes / len(s) < 30


def test_memory_is_compact_after_bulk_load():
    s = HashSet(os.urandom(16 * 200_000))
    assert s.nbytes / len(s) <= 24


def test_missing_packed():
    keys = [os.urandom(16) for _ in range(300)]
    s = HashSet(packed(keys[:200]))
    assert s.missing_packed(packed(keys)) == packed(keys[200:])
    assert s.missing_packed(b"") == b""


def test_shrinks_after_mass_discard():
    keys = os.urandom(16 * 100_000)
    s = HashSet(keys)
    big = s.nbytes
    s.discard_packed(keys[: 16 * 99_000])
    assert len(s) == 1000 and s.nbytes < big // 10


def test_clustered_keys_same_prefix():
    # Adversarial input: every key shares its first 8 bytes (one home slot).
    keys = [b"\x42" * 8 + i.to_bytes(8, "big") for i in range(3000)]
    s = HashSet(packed(keys))
    assert len(s) == 3000 and all(k in s for k in keys)
    for k in keys[::2]:
        assert s.discard(k)
    assert all((k in s) == (i % 2 == 1) for i, k in enumerate(keys))
    t = HashSet()
    for k in reversed(keys):
        t.add(k)
    assert t.to_packed() == packed(keys)


def test_apply_changes_is_all_or_nothing_on_bad_buffer():
    a, b = HashSet(), HashSet()
    k1, k2 = os.urandom(16), os.urandom(16)
    with pytest.raises(ValueError):
        apply_changes([(a, k1, None), (b, b"bad", None)])
    assert len(a) == 0 and len(b) == 0
    apply_changes([(a, k1 + k2, None), (b, k2, None)])
    apply_changes([(a, None, k1)])
    assert k1 not in a and k2 in a and k2 in b


# Keys from a small alphabet so that adds, discards and lookups collide often; include
# the all-zero key and keys sharing the hash prefix.
_key = st.sampled_from(
    [ZERO, ONES]
    + [bytes([i]) * 16 for i in range(1, 8)]
    + [b"\x01" * 8 + bytes([i]) * 8 for i in range(8)]
) | st.binary(min_size=16, max_size=16)
_op = st.tuples(
    st.sampled_from(["add", "discard", "contains", "add_packed", "discard_packed", "copy"]),
    st.lists(_key, max_size=40),
)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(_op, max_size=40))
def test_matches_python_set_model(ops):
    s, model = HashSet(), set()
    for name, keys in ops:
        if name == "add":
            for k in keys:
                assert s.add(k) == (k not in model)
                model.add(k)
        elif name == "discard":
            for k in keys:
                assert s.discard(k) == (k in model)
                model.discard(k)
        elif name == "contains":
            for k in keys:
                assert (k in s) == (k in model)
        elif name == "add_packed":
            assert s.add_packed(packed(keys)) == len(set(keys) - model)
            model |= set(keys)
        elif name == "discard_packed":
            assert s.discard_packed(packed(keys)) == len(set(keys) & model)
            model -= set(keys)
        else:
            s = s.copy()
        assert len(s) == len(model)
    assert s.to_packed() == packed(sorted(model))
    assert list(s) == sorted(model)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.binary(min_size=16, max_size=16), max_size=3000),
    st.lists(st.binary(min_size=16, max_size=16), max_size=3000),
)
def test_bulk_merge_matches_model(first, second):
    s = HashSet(packed(first))
    s.add_packed(packed(second))
    model = set(first) | set(second)
    assert s.to_packed() == packed(sorted(model))
    s.discard_packed(packed(second[::2]))
    model -= set(second[::2])
    assert s.to_packed() == packed(sorted(model))


def test_sorted_union_and_difference():
    from fastpath._hashset import difference_sorted, union_sorted

    a = sorted(os.urandom(16) for _ in range(500))
    b = sorted(set(a[::3]) | {os.urandom(16) for _ in range(200)})
    assert union_sorted(packed(a), packed(b)) == packed(sorted(set(a) | set(b)))
    assert difference_sorted(packed(a), packed(b)) == packed(sorted(set(a) - set(b)))
    with pytest.raises(ValueError, match="sorted"):
        union_sorted(packed(a[::-1]), b"")
