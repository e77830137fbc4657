"""RedisStore against a real redis-server: load, follow, outages, flushes, snapshots."""

from __future__ import annotations

import os

import pytest
from redis_support import RedisServer, free_port, requires_redis, wait_until

from keys.registry import TrustRegistry
from verifier.redis.store import RedisStore
from verifier.redis.sync import Guard, sync_state
from verifier.revocations import load_revocations
from verifier.store import StoreUnavailable

pytestmark = [pytest.mark.redis, requires_redis]


def sync(
    server, trust_path=None, rev_path=None, replace=False, *, bootstrap=True, allow_drop=False
):
    """sync_state with files; bootstrap by default (these tests start from trust alone),
    the guard's own tests are in test_guard.py."""
    client = server.client()
    return sync_state(
        client,
        trust=TrustRegistry.from_file(trust_path) if trust_path else None,
        revocations=load_revocations(rev_path) if rev_path else None,
        replace=replace,
        guard=Guard(bootstrap=bootstrap, allow_drop=allow_drop),
    )


@pytest.fixture
def store_factory():
    stores = []

    def make(url, **kw):
        kw.setdefault("poll_interval", 0.1)
        store = RedisStore.connect(url, **kw)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def test_snapshot_load(
    redis_server, trust_file, tmp_path, hashes, write_revocations, store_factory, issuers
):
    revoked, registry = hashes(5000), hashes(300)
    write_revocations(tmp_path / "r.json", revoked, registry)
    result = sync(redis_server, trust_file, tmp_path / "r.json")
    store = store_factory(redis_server.url, follow=False)
    assert store.replica.version == result.version
    status = store.status()
    assert status["ready"] is True and status["reason"] is None
    assert status["counts"] == {"keys": 1, "revoked": 5000, "registry": 300, "skipped_keys": 0}
    assert all(store.is_revoked(h, b"\0" * 16, b"\0" * 16) for h in revoked[:200])
    assert not store.is_revoked(*hashes(3))
    assert store.in_registry(registry[7]) is True and store.in_registry(revoked[0]) is False
    assert len(store.trust.candidates(issuers[0].kid)) == 1


def test_live_update_reaches_running_store(
    redis_server, trust_file, tmp_path, hashes, write_revocations, store_factory
):
    base = hashes(20000)
    write_revocations(tmp_path / "r.json", base)
    sync(redis_server, trust_file, tmp_path / "r.json")
    store = store_factory(redis_server.url)
    trust_before = store.trust
    new = hashes(1)[0]
    write_revocations(tmp_path / "one.json", [new], kind="SIGNATURE")
    sync(redis_server, rev_path=tmp_path / "one.json")
    # Enforced within one second in practice (pub/sub); the bound here is generous.
    assert wait_until(lambda: store.is_revoked(b"\1" * 16, b"\1" * 16, new), timeout=5)
    assert store.full_loads == 0, "a one-hash change must arrive as a delta"
    assert store.status()["counts"]["revoked"] == 20001
    assert store.trust is trust_before, "unchanged keys keep the same TrustRegistry object"


def test_trust_change_gives_new_registry_object(
    redis_server, trust_file, trust_file_b, store_factory, issuers
):
    sync(redis_server, trust_file)
    store = store_factory(redis_server.url)
    before = store.trust
    sync(redis_server, trust_file_b)  # add mode: union of keys
    assert wait_until(lambda: store.trust is not before, timeout=5)
    assert len(store.trust) == 2
    assert store.trust.candidates(issuers[1].kid)
    sync(redis_server, trust_file_b, replace=True)
    assert wait_until(lambda: len(store.trust) == 1, timeout=5)
    assert not store.trust.candidates(issuers[0].kid)


def test_trust_override(redis_server, trust_file, trust_file_b, store_factory, issuers):
    sync(redis_server, trust_file)
    override = TrustRegistry.from_file(trust_file_b)
    store = store_factory(redis_server.url, trust_override=override, follow=False)
    assert store.trust is override
    assert store.status()["counts"]["keys"] == 1


def test_unrevoke_and_registry_removal_with_replace(
    redis_server, trust_file, tmp_path, hashes, write_revocations, store_factory
):
    revoked, registry = hashes(1000), hashes(10)
    write_revocations(tmp_path / "r.json", revoked, registry)
    sync(redis_server, trust_file, tmp_path / "r.json")
    store = store_factory(redis_server.url)
    gone = revoked[0]
    write_revocations(tmp_path / "r2.json", revoked[1:], registry)
    result = sync(redis_server, rev_path=tmp_path / "r2.json", replace=True)
    assert (result.revoked_added, result.revoked_removed) == (0, 1)
    assert wait_until(lambda: not store.is_revoked(gone, gone, gone), timeout=5)
    assert store.is_revoked(revoked[1], revoked[1], revoked[1])
    assert store.status()["counts"]["revoked"] == 999
    # --replace with a file lacking "registry": the registry set goes away
    write_revocations(tmp_path / "r3.json", revoked[1:])
    sync(redis_server, rev_path=tmp_path / "r3.json", replace=True)
    assert wait_until(lambda: store.in_registry(registry[0]) is None, timeout=5)


def test_mass_replace_reloads_in_full(
    redis_server, trust_file, tmp_path, hashes, write_revocations, store_factory
):
    write_revocations(tmp_path / "r.json", hashes(300_000))
    sync(redis_server, trust_file, tmp_path / "r.json")
    store = store_factory(redis_server.url)
    fresh = hashes(300_000)
    write_revocations(tmp_path / "r2.json", fresh)
    sync(redis_server, rev_path=tmp_path / "r2.json", replace=True)
    assert wait_until(lambda: store.is_revoked(fresh[5], fresh[5], fresh[5]), timeout=10)
    assert store.full_loads == 1
    assert store.status()["counts"]["revoked"] == 300_000


def test_start_with_redis_down(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable, match="cannot reach Redis"):
        RedisStore.connect(url, follow=False)
    with pytest.raises(StoreUnavailable, match="no usable snapshot"):
        RedisStore.connect(url, follow=False, snapshot_path=tmp_path / "snap.bin")


def test_start_with_empty_redis(redis_server):
    with pytest.raises(StoreUnavailable, match="holds no qrverify data"):
        RedisStore.connect(redis_server.url, follow=False)


def test_password_not_in_messages():
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreUnavailable) as info:
        RedisStore.connect(url, follow=False)
    assert "s3cret" not in str(info.value)


def test_local_snapshot_start_when_redis_down(
    trust_file, tmp_path, hashes, write_revocations, store_factory
):
    snap = tmp_path / "replica.snap"
    revoked = hashes(2000)
    write_revocations(tmp_path / "r.json", revoked, hashes(5))
    server = RedisServer(port=free_port()).start()
    try:
        sync(server, trust_file, tmp_path / "r.json")
        first = RedisStore.connect(server.url, snapshot_path=snap, follow=False)
        first.close()
        assert snap.exists()
        server.stop()
        store = store_factory(server.url, snapshot_path=snap, max_age=3600)
        assert store.is_revoked(revoked[3], revoked[3], revoked[3])
        status = store.status()
        assert status["counts"] == {"keys": 1, "revoked": 2000, "registry": 5, "skipped_keys": 0}
        assert status["connected"] is False and status["ready"] is True
        # a corrupt snapshot is refused, not half-loaded
        data = snap.read_bytes()
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 1
        for i, damaged in enumerate((data[: len(data) // 2], bytes(flipped))):
            bad = tmp_path / f"bad{i}.snap"
            bad.write_bytes(damaged)
            with pytest.raises(StoreUnavailable, match="no usable snapshot"):
                RedisStore.connect(server.url, snapshot_path=bad, follow=False)
        # Redis comes back (empty: no persistence): the store reconnects and follows the
        # complete state a sync writes again
        server.start()
        assert wait_until(lambda: store.status()["connected"], timeout=15)
        extra = hashes(1)[0]
        write_revocations(tmp_path / "x.json", [*revoked, extra])
        sync(server, trust_file, tmp_path / "x.json", bootstrap=False)
        assert wait_until(lambda: store.is_revoked(extra, extra, extra), timeout=5)
    finally:
        server.close()


def test_redis_stopped_and_restarted_under_running_store(
    trust_file, tmp_path, hashes, write_revocations, store_factory
):
    revoked = hashes(1000)
    write_revocations(tmp_path / "r.json", revoked)
    with RedisServer(appendonly=True) as server:
        sync(server, trust_file, tmp_path / "r.json")
        store = store_factory(server.url, max_age=1.5)
        assert store.status()["ready"] is True
        server.stop()
        assert wait_until(lambda: not store.status()["connected"], timeout=10)
        # still verifying from the replica, and its age grows
        assert store.is_revoked(revoked[0], revoked[0], revoked[0])
        assert wait_until(lambda: store.status()["age_seconds"] > 0.5, timeout=10)
        # past max_age: not ready, with the reason
        assert wait_until(lambda: not store.status()["ready"], timeout=10)
        reason = store.status()["reason"]
        assert "old" in reason and "cannot reach Redis" in reason
        server.start()  # AOF: the data survived
        assert wait_until(lambda: store.status()["ready"], timeout=15)
        assert store.status()["connected"] is True
        assert store.status()["age_seconds"] < 1.5
        extra = hashes(1)[0]
        write_revocations(tmp_path / "x.json", [extra])
        sync(server, rev_path=tmp_path / "x.json")
        assert wait_until(lambda: store.is_revoked(extra, extra, extra), timeout=5)


def test_redis_flushed_under_running_store(
    redis_server, trust_file, tmp_path, hashes, write_revocations, store_factory
):
    revoked = hashes(1000)
    write_revocations(tmp_path / "r.json", revoked)
    sync(redis_server, trust_file, tmp_path / "r.json")
    store = store_factory(redis_server.url)
    old_version = store.replica.version
    redis_server.flushall()
    assert wait_until(lambda: not store.status()["ready"], timeout=5)
    status = store.status()
    assert "flushed" in status["reason"] and status["connected"] is True
    # never "nothing is revoked": the last good replica stays
    assert store.is_revoked(revoked[9], revoked[9], revoked[9])
    assert store.replica.version == old_version
    assert status["counts"]["revoked"] == 1000
    # a new sync of a complete state: 1000 -> 10 revocations is a drop verifiers refuse
    # unless the operator confirms it; the refused version is reported, the old one kept
    fresh = hashes(10)
    write_revocations(tmp_path / "r2.json", fresh)
    refused = sync(redis_server, trust_file, tmp_path / "r2.json", bootstrap=False)
    assert wait_until(
        lambda: (store.status()["refused"] or {}).get("version") == refused.version, timeout=5
    )
    assert "drops revocations" in store.status()["refused"]["reason"]
    assert store.replica.version == old_version
    assert store.is_revoked(revoked[9], revoked[9], revoked[9])
    sync(
        redis_server,
        trust_file,
        tmp_path / "r2.json",
        replace=True,
        bootstrap=False,
        allow_drop=True,
    )
    assert wait_until(lambda: store.status()["counts"]["revoked"] == 10, timeout=5)
    assert store.status()["ready"] and store.status()["refused"] is None
    assert store.is_revoked(fresh[0], fresh[0], fresh[0])
    assert not store.is_revoked(revoked[9], revoked[9], revoked[9])
    assert store.status()["counts"]["revoked"] == 10


def test_many_followers_agree(
    redis_server, trust_file, tmp_path, hashes, write_revocations, store_factory
):
    write_revocations(tmp_path / "r.json", hashes(100))
    sync(redis_server, trust_file, tmp_path / "r.json")
    stores = [store_factory(redis_server.url) for _ in range(4)]
    new = hashes(3)
    for i, h in enumerate(new):
        write_revocations(tmp_path / f"n{i}.json", [h])
        sync(redis_server, rev_path=tmp_path / f"n{i}.json")
    for store in stores:
        assert wait_until(lambda s=store: all(s.is_revoked(h, h, h) for h in new), timeout=5)
        assert store.status()["counts"]["revoked"] == 103
    assert len({s.replica.version for s in stores}) == 1


def test_hot_path_needs_no_network(redis_server, trust_file, tmp_path, hashes, write_revocations):
    revoked = hashes(10)
    write_revocations(tmp_path / "r.json", revoked)
    sync(redis_server, trust_file, tmp_path / "r.json")
    store = RedisStore.connect(redis_server.url, follow=False)
    try:
        redis_server.stop()
        assert store.is_revoked(revoked[0], revoked[0], revoked[0])
        assert store.in_registry(revoked[0]) is None
        assert len(store.trust) == 1
    finally:
        store.close()


def test_one_million_entries_load(redis_server, trust_file, tmp_path, store_factory):
    raw = os.urandom(16 * 1_000_000)
    from verifier.revocations import Revocations

    client = redis_server.client()
    result = sync_state(
        client, trust=TrustRegistry.from_file(trust_file), revocations=Revocations(revoked=raw)
    )
    assert result.revoked == 1_000_000
    store = store_factory(redis_server.url, follow=False)
    assert store.status()["counts"]["revoked"] == 1_000_000
    probe = raw[16 * 123_456 : 16 * 123_457]
    assert store.is_revoked(probe, probe, probe)
