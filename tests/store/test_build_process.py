"""The machine's snapshot is built off the request path: in a child process at low
priority (replaced when it dies), and a register records change copies the unchanged
pieces from the mapped file instead of fetching them again (real redis-server)."""

from __future__ import annotations

import os
import signal

import pytest
from redis_support import requires_redis, wait_until

from fastpath._records import RecordTable
from keys.registry import TrustRegistry
from verifier.redis.build import NICE, build_version
from verifier.redis.format import Layout, StoreDataError, read_current, read_manifest
from verifier.redis.snapshot import map_snapshot
from verifier.redis.store import RedisStore
from verifier.redis.sync import Guard, sync_state
from verifier.revocations import Revocations

pytestmark = [pytest.mark.redis, requires_redis]

BASE_ID = 9_160_000_000_000_000


def _record(i: int, revoked: bool = False) -> tuple:
    return (
        f"{BASE_ID + 3 * i}",
        bytes(16),
        i % 4,
        revoked,
        1_625_086_800,
        1_656_622_800,
        "П****** А*** С*******",
        "P****** A*** S*******",
        "1975-03-04",
        "45** ***678",
    )


def test_records_change_copies_unchanged_pieces_from_the_mapped_file(
    redis_server, trust_file, tmp_path, monkeypatch
):
    # the rewrite of the records file (a change past the overlay cap: a rebase)
    monkeypatch.setattr("verifier.redis.build.OVERLAY_MAX_ENTRIES", 0)
    client = redis_server.client()
    layout = Layout("qrverify")
    n = 40_000  # several 1 MiB pieces
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=Revocations(revoked=os.urandom(16 * 10)),
        records=RecordTable.from_records(_record(i) for i in range(n)),
        guard=Guard(bootstrap=True),
    )
    first = read_current(client, layout)
    path = str(tmp_path / "m.snap")
    assert build_version(client, layout, path, first, None) is True
    base = map_snapshot(path)
    old = read_manifest(client, layout, first).records
    assert old is not None and len(old.pieces) >= 3
    assert base.records_pieces == old.pieces

    changed = n // 2
    sync_state(client, records=RecordTable.from_records([_record(changed, revoked=True)]))
    second = read_current(client, layout)
    new = read_manifest(client, layout, second).records
    assert new is not None and new.count == n
    # pieces at the same place with the same content address: to be copied, not fetched
    shared, pos_old, pos_new = set(), {}, 0
    pos = 0
    for bid, size in old.pieces:
        pos_old[(pos, bid, size)] = True
        pos += size
    for bid, size in new.pieces:
        if (pos_new, bid, size) in pos_old:
            shared.add(bid)
        pos_new += size
    assert 1 <= len(shared) < len(new.pieces)
    client.delete(*[layout.blob(b) for b in shared])  # Redis can no longer give them

    # without the mapped base the version cannot be built any more ...
    with pytest.raises(StoreDataError, match="missing"):
        build_version(client, layout, str(tmp_path / "other.snap"), second, None)
    # ... over it, only the changed pieces are fetched
    assert build_version(client, layout, path, second, base) is False  # sets: a delta
    snap = map_snapshot(path)
    table = snap.replica.records
    assert len(table) == n
    assert table.get(f"{BASE_ID + 3 * changed}")["status"] == "revoked"
    assert table.get(f"{BASE_ID + 3 * (changed + 1)}")["status"] == "valid"
    assert snap.records_pieces == new.pieces
    # the old mapping is untouched
    assert base.replica.records.get(f"{BASE_ID + 3 * changed}")["status"] == "valid"


def test_builder_child_runs_at_low_priority_and_is_replaced_when_it_dies(
    redis_server, trust_file, tmp_path
):
    client = redis_server.client()
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=Revocations(revoked=os.urandom(16 * 100)),
        guard=Guard(bootstrap=True),
    )
    store = RedisStore.connect(
        redis_server.url, snapshot_path=tmp_path / "m.snap", poll_interval=0.05
    )
    try:
        assert store.is_builder
        first = store.builder_pid
        assert first is not None and first != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, first) == max(
            NICE, os.getpriority(os.PRIO_PROCESS, 0)
        )

        os.kill(first, signal.SIGKILL)
        key = os.urandom(16)
        sync_state(client, revocations=Revocations(revoked=key))
        assert wait_until(lambda: store.is_revoked(key, key, key), timeout=30)
        second = store.builder_pid
        assert second is not None and second != first
        assert os.getpriority(os.PRIO_PROCESS, second) == max(
            NICE, os.getpriority(os.PRIO_PROCESS, 0)
        )
        assert store.status()["ready"] is True
    finally:
        store.close()
    assert store.builder_pid is None


def test_records_live_in_their_own_file_kept_while_they_do_not_change(
    redis_server, trust_file, tmp_path, monkeypatch
):
    # a records change rewrites the file here (past the overlay cap: tests/store/test_overlay.py
    # has the change that keeps it)
    monkeypatch.setattr("verifier.redis.build.OVERLAY_MAX_ENTRIES", 0)
    client = redis_server.client()
    layout = Layout("qrverify")
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=Revocations(revoked=os.urandom(16 * 10)),
        records=RecordTable.from_records(_record(i) for i in range(3000)),
        guard=Guard(bootstrap=True),
    )
    path = str(tmp_path / "m.snap")
    build_version(client, layout, path, read_current(client, layout), None)
    first = map_snapshot(path)
    ref = first.records_ref
    assert ref is not None and ref["count"] == 3000
    rec_path = tmp_path / ref["file"]
    inode = rec_path.stat().st_ino
    # the snapshot file itself does not hold the records
    assert os.path.getsize(path) < rec_path.stat().st_size

    key = os.urandom(16)
    sync_state(client, revocations=Revocations(revoked=key))
    build_version(client, layout, path, read_current(client, layout), first)
    second = map_snapshot(path)
    assert second.replica.is_revoked(key, key, key)
    assert second.records_ref == ref and rec_path.stat().st_ino == inode  # not rewritten
    assert len(second.replica.records) == 3000

    sync_state(client, records=RecordTable.from_records([_record(5, revoked=True)]))
    held: list[int] = []
    build_version(client, layout, path, read_current(client, layout), second, held)
    third = map_snapshot(path)
    assert third.records_ref is not None and third.records_ref["file"] != ref["file"]
    assert not rec_path.exists() and len(held) == 1  # the old one deleted, held open here
    assert third.replica.records.get(f"{BASE_ID + 15}")["status"] == "revoked"
    # a process still mapping the old records keeps reading them
    assert second.replica.records.get(f"{BASE_ID + 15}")["status"] == "valid"
    for fd in held:
        os.close(fd)
    leftovers = [p.name for p in tmp_path.iterdir() if ".rec-" in p.name]
    assert leftovers == [third.records_ref["file"]]
