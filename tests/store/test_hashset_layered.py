"""fastpath layered_view: a read-only table with added and removed keys layered over it
answers for (table - removed) | added, checked against a Python set model."""

from __future__ import annotations

import io
import os
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastpath._hashset import HashSet, layered_view, table_view

KEYS = st.binary(min_size=16, max_size=16)


def view_of(keys) -> HashSet:
    """A read-only table_view over the written table of `keys` (as a mapped file is)."""
    plain = HashSet(b"".join(keys))
    out = io.BytesIO()
    plain.write_table(out)
    info = plain.table_info()
    data = bytearray(out.getvalue())  # 8-byte aligned (a bytearray's buffer is malloc'd)
    return table_view(memoryview(data), info["cap"], info["count"], info["has_zero"], info["seed"])


def model(table, added, removed) -> set[bytes]:
    return (set(table) - set(removed)) | set(added)


@given(
    st.lists(KEYS, max_size=80, unique=True),
    st.lists(KEYS, max_size=20, unique=True),
    st.data(),
)
def test_layered_matches_the_set_model(table, fresh, data):
    removed = data.draw(st.lists(st.sampled_from(table), unique=True)) if table else []
    # overlays may also name keys the table holds (added) or does not (removed)
    added = (
        fresh + data.draw(st.lists(st.sampled_from(table), unique=True, max_size=3))
        if table
        else fresh
    )
    removed = list(dict.fromkeys(removed + fresh[:2]))
    added = list(dict.fromkeys(added))
    layered = layered_view(view_of(table), b"".join(added), b"".join(removed))
    want = model(table, added, removed)
    assert len(layered) == len(want) and bool(layered) == bool(want)
    assert layered.to_packed() == b"".join(sorted(want))
    assert list(layered) == sorted(want)
    for key in set(table) | set(added) | set(removed):
        assert (key in layered) is (key in want)
        assert layered.contains(key) is (key in want)
    copied = layered.copy()
    assert not copied.readonly and not copied.layered and copied.layers() is None
    assert copied.to_packed() == layered.to_packed() and copied == layered
    assert pickle.loads(pickle.dumps(layered)).to_packed() == layered.to_packed()


def test_layered_lookups_len_and_read_only():
    table = sorted(os.urandom(16) for _ in range(2000))
    gone, new, absent = table[:5], [os.urandom(16) for _ in range(7)], os.urandom(16)
    base = view_of(table)
    layered = layered_view(base, b"".join(new), b"".join(gone), count=2002)
    assert len(layered) == 2002 and layered.readonly and layered.layered and not base.layered
    assert all(k in layered for k in new) and not any(k in layered for k in gone)
    assert table[100] in layered and absent not in layered
    assert layered.contains_any(gone[0], absent, new[3])
    assert layered.contains_any(gone[0], gone[1], table[7])
    assert not layered.contains_any(gone[0], gone[1], absent)
    assert layered.missing_packed(gone[0] + new[0] + table[9]) == gone[0]
    got = layered.layers()
    assert got is not None and got[0] is base
    assert got[1].to_packed() == b"".join(sorted(new)) and got[2].to_packed() == b"".join(
        sorted(gone)
    )
    for mutate in (
        lambda: layered.add(absent),
        lambda: layered.discard(table[9]),
        lambda: layered.add_packed(absent),
        lambda: layered.discard_packed(table[9]),
        layered.table_info,
        lambda: layered.write_table(io.BytesIO()),
        layered.probe_stats,
    ):
        with pytest.raises(TypeError):
            mutate()
    assert table[9] in layered and absent not in layered and len(layered) == 2002
    # the base is unchanged: it answers for the table alone
    assert len(base) == 2000 and gone[0] in base and new[0] not in base


def test_a_key_removed_then_added_again_and_undone_changes():
    table = sorted(os.urandom(16) for _ in range(50))
    k = table[3]
    both = layered_view(view_of(table), k, k)  # removed, then revoked again: a member
    assert k in both and len(both) == 50
    # overlays naming only what the table already says change nothing
    same = layered_view(view_of(table), table[4], os.urandom(16))
    assert len(same) == 50 and same.to_packed() == b"".join(table)


def test_layered_refuses_bad_input():
    table = [os.urandom(16) for _ in range(30)]
    base = view_of(table)
    new = os.urandom(16)
    with pytest.raises(ValueError, match="merged count"):
        layered_view(base, new, b"", count=30)
    with pytest.raises(ValueError, match="twice"):
        layered_view(base, new + new, b"")
    with pytest.raises(ValueError, match="multiple of 16"):
        layered_view(base, new[:15], b"")
    with pytest.raises(TypeError, match="read-only view"):
        layered_view(HashSet(b"".join(table)), new, b"")  # a writable table could move
    with pytest.raises(TypeError, match="read-only view"):
        layered_view(layered_view(base, new, b""), b"", b"")  # no layers over layers
    with pytest.raises(TypeError):
        layered_view(b"not a set", new, b"")  # type: ignore[arg-type]


def test_engine_lookup_reads_the_layers():
    """The C-level lookup the engine uses (contains_ptr through contains_any and
    missing_packed) answers for the merged set also for a large table."""
    table = [os.urandom(16) for _ in range(100_000)]
    layered = layered_view(view_of(table), os.urandom(16), b"".join(table[:1000]))
    assert len(layered) == 99_001
    assert layered.missing_packed(b"".join(table[:2000])) == b"".join(table[:1000])
