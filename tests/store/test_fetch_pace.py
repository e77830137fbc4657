"""A full load while the machine serves spreads its fetches out: about 1 MiB of blobs per
round trip and a pause after each (verifier.redis.format.fetch_blobs `pace`), through the
builder child's job line; the first build of a machine runs at full speed (real
redis-server; MGET round trips counted by the server's own command statistics)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from redis_support import requires_redis

import verifier.redis.format as fmt
from fastpath._records import RecordTable
from keys.registry import TrustRegistry
from verifier.redis.build import BuildProcess
from verifier.redis.format import (
    CHUNK_ENTRIES,
    Layout,
    StoreDataError,
    fetch_blobs,
    fetch_set,
    read_current,
    read_manifest,
)
from verifier.redis.snapshot import map_snapshot
from verifier.redis.store import FETCH_PACE, RedisStore
from verifier.redis.sync import Guard, sync_state
from verifier.revocations import Revocations

pytestmark = [pytest.mark.redis, requires_redis]

L = Layout("qrverify")
MIB = 5  # the set's size in MiB of packed hashes


def round_trips(info, limit: int) -> int:
    """MGETs for the set's chunks in batches closed once they reach `limit` bytes."""
    trips, budget = 0, 0
    for _, _, entries in info.chunks:
        budget += 16 * entries
        if budget >= limit:
            trips, budget = trips + 1, 0
    return trips + (budget > 0)


def mget_calls(client) -> int:
    stats = client.info("commandstats").get("cmdstat_mget")
    return 0 if stats is None else int(stats["calls"])


@pytest.fixture
def five_chunks(redis_server, trust_file):
    """Redis with a revoked set of MIB MiB: (client, its SetInfo, the packed hashes)."""
    client = redis_server.client()
    packed = os.urandom(16 * CHUNK_ENTRIES * MIB)
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=Revocations(revoked=packed),
        guard=Guard(bootstrap=True),
    )
    info = read_manifest(client, L, read_current(client, L)).revoked
    # paced: about one round trip per MiB; at full speed: one for the whole set
    assert 2 < round_trips(info, fmt.PACED_BATCH_BYTES) < len(info.chunks)
    return client, info, packed


def test_a_paced_fetch_takes_about_a_mib_per_round_trip_and_pauses_after_each(
    five_chunks, monkeypatch
):
    client, info, packed = five_chunks
    before = mget_calls(client)
    fast = fetch_set(client, L, info)
    assert mget_calls(client) - before == 1  # 5 MiB: one round trip
    paced_trips = round_trips(info, fmt.PACED_BATCH_BYTES)

    pauses: list[float] = []
    monkeypatch.setattr(fmt.time, "sleep", pauses.append)
    before = mget_calls(client)
    paced = fetch_set(client, L, info, pace=1.0)
    assert mget_calls(client) - before == paced_trips
    assert len(pauses) == paced_trips and all(p >= 0 for p in pauses)
    assert paced == fast and sorted(paced[i : i + 16] for i in range(0, len(paced), 16)) == sorted(
        packed[i : i + 16] for i in range(0, len(packed), 16)
    )
    # twice the pace, twice the pause for the same round trip: the pause is pace x its time
    monkeypatch.setattr(fmt.time, "perf_counter", iter(range(0, 100, 5)).__next__)
    pauses.clear()
    fetch_blobs(client, L, info.blob_ids()[:1], pace=2.0)
    assert pauses == [10]


def test_a_paced_fetch_still_checks_every_blob(five_chunks, monkeypatch):
    client, info, _ = five_chunks
    monkeypatch.setattr(fmt.time, "sleep", lambda _s: None)
    victim = info.blob_ids()[-2]
    client.set(L.blob(victim), b"\0" * 16)
    with pytest.raises(StoreDataError, match="content address"):
        fetch_set(client, L, info, pace=1.0)
    client.delete(L.blob(victim))
    with pytest.raises(StoreDataError, match="missing"):
        fetch_set(client, L, info, pace=1.0)


@pytest.mark.parametrize("pace", [-0.5, math.nan, math.inf, fmt.MAX_PACE + 1])
def test_a_pace_out_of_range_is_refused(five_chunks, pace):
    client, info, _ = five_chunks
    with pytest.raises(ValueError, match="pace"):
        fetch_blobs(client, L, info.blob_ids(), pace=pace)


def test_the_child_takes_the_pace_from_its_job_line_and_refuses_a_bad_one(
    redis_server, five_chunks, tmp_path
):
    client, _, packed = five_chunks
    version = read_current(client, L)
    path = str(tmp_path / "m.snap")
    setup = {"url": redis_server.url, "namespace": "qrverify", "path": path}
    jobs = [
        {"version": version, "base": None, "pace": "fast"},
        {"version": version, "base": None, "pace": True},
        {"version": version, "base": None, "pace": -1},
        {"version": version, "base": None, "pace": 1.0},
    ]
    before = mget_calls(client)
    proc = subprocess.run(  # noqa: S603
        [sys.executable, "-P", "-m", "verifier.redis.build"],
        input="".join(json.dumps(line) + "\n" for line in [setup, *jobs]).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    replies = [json.loads(line) for line in proc.stdout.splitlines()]
    bad = {"ok": False, "kind": "data", "error": "bad job line"}
    assert replies == [bad, bad, bad, {"ok": True, "full": True}]
    # the trust blob in one round trip, then the set about a MiB at a time
    info = read_manifest(client, L, version).revoked
    assert mget_calls(client) - before == 1 + round_trips(info, fmt.PACED_BATCH_BYTES)
    snap = map_snapshot(path)
    assert len(snap.replica.revoked) == MIB * CHUNK_ENTRIES
    key = packed[16 * 7 : 16 * 8]
    assert snap.replica.is_revoked(key, key, key)


def test_build_process_passes_the_pace_on(redis_server, five_chunks, tmp_path):
    client, _, _ = five_chunks
    version = read_current(client, L)
    builder = BuildProcess(redis_server.url, "qrverify", str(tmp_path / "m.snap"))
    try:
        before = mget_calls(client)
        assert builder.build(version, None, 120.0) is True
        assert mget_calls(client) - before == 2  # the trust blob, then the whole set
        before = mget_calls(client)
        assert builder.build(version, None, 120.0, pace=0.5) is True
        info = read_manifest(client, L, version).revoked
        assert mget_calls(client) - before == 1 + round_trips(info, fmt.PACED_BATCH_BYTES)
    finally:
        builder.close()


def test_the_builder_paces_a_full_load_only_while_serving(
    redis_server, trust_file, tmp_path, monkeypatch
):
    import verifier.redis.store as store_module

    client = redis_server.client()
    records = RecordTable.from_records(
        (
            f"{9_160_000_000_000_000 + 3 * i}",
            bytes(16),
            0,
            False,
            1_625_086_800,
            1_656_622_800,
            "И",
            "I",
            "1975-03-04",
            "45** ***678",
        )
        for i in range(10)
    )
    sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=Revocations(revoked=os.urandom(16 * 100)),
        records=records,
        guard=Guard(bootstrap=True),
    )
    paces: list[float] = []
    real = store_module.build_version

    def spy(*args, **kwargs):
        paces.append(kwargs["pace"])
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "build_version", spy)
    store = RedisStore.connect(
        redis_server.url, snapshot_path=tmp_path / "m.snap", follow=False, build_in_child=False
    )
    try:
        assert paces == [0.0]  # the machine's first build: nothing served yet
        fresh = os.urandom(16 * 50)
        sync_state(
            client,
            revocations=Revocations(revoked=fresh),
            replace=True,
            guard=Guard(allow_drop=True),
        )
        store.refresh()
        assert paces == [0.0, FETCH_PACE] and FETCH_PACE > 0
        assert store.status()["counts"]["revoked"] == 50
        assert store.is_revoked(fresh[:16], fresh[:16], fresh[:16])
        assert len(store.replica.records) == 10
    finally:
        store.close()
