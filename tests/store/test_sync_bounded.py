"""`sync` plans in bounded memory (issue 11): the input is spooled to temporary files by
its first byte and the set is planned and written one bucket at a time against Redis'
chunks. The streaming planner gives exactly what the in-memory one does; its memory
(tracemalloc peak) stays at a few buckets for an input 20 buckets large."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from engine_support import ES, key_of
from memory_support import traced_peak
from redis_support import requires_redis

import verifier.redis.sync as sync_mod
from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from verifier.redis.format import Layout, read_current, read_manifest
from verifier.redis.spool import (
    NPART,
    MemorySpool,
    SortedParts,
    Spool,
    SpooledRevocations,
    as_spool,
    spool_revocations,
)
from verifier.redis.sync import (
    TARGET_BUCKET,
    BlobWriter,
    Guard,
    plan_set,
    plan_set_stream,
    sync_state,
)
from verifier.revocations import load_revocations

L = Layout()
BUCKET_BYTES = TARGET_BUCKET * 16


def rand(n: int) -> bytes:
    return os.urandom(16 * n)


def spool_of(packed: bytes, *, one_by_one: bool = False) -> Spool:
    spool = Spool()
    if one_by_one:
        for i in range(0, len(packed), 16):
            spool += packed[i : i + 16]
    else:
        spool.add_packed(packed)
    return spool.finish()


# -- the spool ---------------------------------------------------------------------------


def test_spool_partitions_sorted_and_unique() -> None:
    data = rand(5000)
    data += data[: 16 * 100]  # duplicates
    for one_by_one in (False, True):
        spool = spool_of(data, one_by_one=one_by_one)
        assert spool.count == 5100
        joined = b"".join(spool.sorted_part(p) for p in range(NPART))
        assert joined == HashSet(data).to_packed()
        for p in range(NPART):
            part = spool.sorted_part(p)
            assert all(part[i] == p for i in range(0, len(part), 16))
        spool.close()
    mem = as_spool(data)  # packed bytes stay in memory: the same partitions
    assert isinstance(mem, MemorySpool) and mem.count == 5100
    assert b"".join(mem.sorted_part(p) for p in range(NPART)) == HashSet(data).to_packed()
    assert as_spool(b"") is not None and SortedParts(as_spool(b"")).count == 0


def test_sorted_parts_take_removals_out() -> None:
    data, gone = rand(3000), rand(10)
    keep_out = data[: 16 * 500]
    parts = SortedParts(spool_of(data + gone), spool_of(keep_out + gone))
    assert parts.count == 2500
    joined = b"".join(parts.load(p) for p in range(NPART))
    assert joined == HashSet(data[16 * 500 :]).to_packed()
    parts.close()


def test_spool_revocations_matches_load_revocations(tmp_path: Path) -> None:
    entries = [base64.b64encode(os.urandom(16)).decode() for _ in range(300)]
    path = tmp_path / "r.jsonl"
    lines = [f'{{"type": "UCI", "hash": "{h}"}}' for h in entries[:200]]
    lines += [f'{{"registry": "{h}"}}' for h in entries[200:250]]
    lines += [f'{{"removed": "{h}"}}' for h in entries[250:]]
    path.write_text("\n".join(lines) + "\n")
    whole = load_revocations(path)
    spooled = spool_revocations(path)
    for name in ("revoked", "registry", "removed"):
        spool = getattr(spooled, name)
        assert spool is not None
        got = b"".join(spool.sorted_part(p) for p in range(NPART))
        assert got == HashSet(getattr(whole, name)).to_packed(), name
    assert spooled.type_counts == whole.type_counts
    spooled.close()
    # the JSON form, and a --remove file (its revoked entries become removals)
    json_path = tmp_path / "r.json"
    json_path.write_text(f'{{"revoked": [{{"type": "SIGNATURE", "hash": "{entries[0]}"}}]}}')
    both = spool_revocations(json_path, remove=path)
    assert both.revoked.count == 1 and both.registry is None
    assert both.removed is not None and both.removed.count == 250  # 200 revoked + 50 removed
    both.close()


# -- the planner: the same result as in memory ------------------------------------------------


def _both(client: Any, old: Any, data: bytes | None, **kw: Any) -> None:
    """plan_set (all in memory) and plan_set_stream agree on the set and its delta."""
    removed = kw.pop("removed", None)
    ref = plan_set(client, L, old, data, removed=removed, **kw)
    writer = BlobWriter(client, L)
    got = plan_set_stream(
        client,
        L,
        old,
        None if data is None else spool_of(data),
        removed=None if removed is None else spool_of(removed),
        writer=writer,
        **kw,
    )
    writer.flush()
    assert got.info == ref.info
    assert got.changed == ref.changed
    assert got.counts() == ref.counts()
    if ref.delta_size is not None and ref.delta_size <= sync_mod.DELTA_MAX_ENTRIES:
        assert (got.added, got.removed) == (ref.added, ref.removed)
    for bid, blob in ref.blobs.items():  # every new chunk is in Redis (pending)
        assert client.get(L.blob(bid)) == blob


@pytest.mark.redis
@requires_redis
def test_stream_planner_matches_in_memory_planner(redis_server: Any) -> None:
    client = redis_server.client()
    base = rand(70_000)
    _both(client, None, base, replace=False)
    _both(client, None, None, replace=False, removed=rand(5), default_empty=True)
    trust = TrustRegistry([key_of(ES)])
    sync_state(client, trust=trust, revocations=SpooledRevocations(spool_of(base)))
    old = read_manifest(client, L, read_current(client, L)).revoked
    assert old.bits == 2
    some_old = base[: 16 * 3000]
    _both(client, old, rand(5000) + base[:1600], replace=False)  # add, with duplicates
    _both(client, old, None, replace=False, removed=some_old + rand(3))  # removals only
    _both(client, old, rand(100), replace=False, removed=some_old)
    _both(client, old, base[16 * 10_000 :] + rand(2000), replace=True)  # replace, overlap
    _both(client, old, base, replace=True)  # the same: nothing changes
    _both(client, old, rand(300_000), replace=False)  # grows: new bucketing (bits 2 -> 4)
    _both(client, old, base[: 16 * 9000], replace=True)  # shrinks: new bucketing
    _both(client, old, None, replace=True, absent_removes=True)


# -- memory ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.redis
@requires_redis
def test_sync_memory_stays_at_a_few_buckets(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input of 20 buckets (655,360 hashes, 10 MiB packed) is synced with a traced
    peak below 8 buckets; the incremental and the replacing syncs that follow too (the
    replacing one also keeps its delta, capped at DELTA_MAX_ENTRIES)."""
    monkeypatch.setattr(sync_mod, "WRITE_BATCH_BYTES", BUCKET_BYTES)  # one bucket a batch
    client = redis_server.client()
    trust = TrustRegistry([key_of(ES)])
    n = 20 * TARGET_BUCKET
    first = spool_of(rand(n))
    result, peak = traced_peak(
        lambda: sync_state(client, trust=trust, revocations=SpooledRevocations(first))
    )
    assert result.revoked == n
    assert peak < 8 * BUCKET_BYTES, f"{peak / BUCKET_BYTES:.1f} buckets"
    more = spool_of(rand(1000))
    result, peak = traced_peak(lambda: sync_state(client, revocations=SpooledRevocations(more)))
    assert result.revoked == n + 1000 and result.revoked_added == 1000
    assert peak < 8 * BUCKET_BYTES, f"{peak / BUCKET_BYTES:.1f} buckets"
    other = spool_of(rand(n))
    result, peak = traced_peak(
        lambda: sync_state(
            client,
            revocations=SpooledRevocations(other),
            replace=True,
            guard=Guard(allow_drop=True),
        )
    )
    assert result.revoked == n and result.revoked_removed == n + 1000
    delta_cap = 2 * 16 * sync_mod.DELTA_MAX_ENTRIES
    assert peak < delta_cap + 8 * BUCKET_BYTES, f"{peak / BUCKET_BYTES:.1f} buckets"
    manifest = read_manifest(client, L, read_current(client, L))
    assert manifest.revoked.count == n and not client.exists(L.delta(manifest.version))


@pytest.mark.slow
def test_spooling_a_json_lines_file_keeps_memory_flat(tmp_path: Path) -> None:
    """Parsing 200,000 lines into the spool peaks at about its flush buffer; reading the
    same file into memory (load_revocations) holds every hash."""
    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        for _ in range(200):
            fh.write(
                b"".join(
                    b'{"type": "UCI", "hash": "%s"}\n' % base64.b64encode(os.urandom(16))
                    for _ in range(1000)
                )
            )
    spooled, peak = traced_peak(lambda: spool_revocations(path))
    assert spooled.revoked.count == 200_000
    spooled.close()
    whole, whole_peak = traced_peak(lambda: load_revocations(path))
    assert whole.revoked_count == 200_000
    assert whole_peak > 200_000 * 16  # the packed list
    assert peak < 3 * 1024 * 1024 < whole_peak
