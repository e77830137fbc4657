"""The guarded sync (issue 11.1) against a real redis-server: an empty store does not
take a partial state as the truth, and verifiers refuse versions that would un-revoke
tokens or remove every key, keeping the last good one and saying so in status()."""

from __future__ import annotations

import dataclasses
import secrets
import time

import pytest
from redis_support import publish_manifest, requires_redis, sync_cli, wait_until

from keys.registry import TrustRegistry
from verifier.redis.format import Layout, blob_id, read_current, read_manifest
from verifier.redis.store import RedisStore
from verifier.redis.sync import Guard, SyncError, sync_state
from verifier.revocations import load_revocations

pytestmark = [pytest.mark.redis, requires_redis]
L = Layout()


@pytest.fixture
def running(redis_server, trust_file, tmp_path, hashes, write_revocations):
    """Redis with trust + 100 revocations, and a following store."""
    revoked = hashes(100)
    write_revocations(tmp_path / "all.json", revoked)
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            str(trust_file),
            "--revocations",
            str(tmp_path / "all.json"),
        )
        == 0
    )
    store = RedisStore.connect(redis_server.url, poll_interval=0.05)
    yield store, revoked
    store.close()


def test_flushall_then_incremental_sync_is_refused(
    redis_server, running, trust_file, tmp_path, hashes, write_revocations, capsys
):
    store, revoked = running
    good = store.replica.version
    redis_server.flushall()
    # the documented incremental sync of today's revocations
    today = hashes(1)
    write_revocations(tmp_path / "today.json", today)
    capsys.readouterr()
    assert sync_cli(redis_server.url, "--revocations", str(tmp_path / "today.json")) == 1
    err = capsys.readouterr().err
    assert "holds no qrverify data" in err and "--bootstrap" in err
    assert redis_server.client().dbsize() == 0, "nothing written"
    # trust alone is not a complete state either
    assert sync_cli(redis_server.url, "--trust", str(trust_file)) == 1
    assert redis_server.client().dbsize() == 0
    # --bootstrap with revocations only would publish a version without keys: refused
    assert (
        sync_cli(
            redis_server.url,
            "--revocations",
            str(tmp_path / "today.json"),
            "--bootstrap",
        )
        == 1
    )
    assert "no issuer keys" in capsys.readouterr().err
    assert redis_server.client().dbsize() == 0
    # meanwhile every verifier keeps the last good version: keys, all 100 revocations
    assert store.replica.version == good
    assert all(store.is_revoked(h, h, h) for h in revoked)
    assert store.status()["counts"] == {"keys": 1, "revoked": 100, "registry": 0, "skipped_keys": 0}
    # the complete state brings Redis back; the verifier follows it
    write_revocations(tmp_path / "full.json", [*revoked, *today])
    assert (
        sync_cli(
            redis_server.url,
            "--trust",
            str(trust_file),
            "--revocations",
            str(tmp_path / "full.json"),
        )
        == 0
    )
    assert wait_until(lambda: store.status()["counts"]["revoked"] == 101, timeout=5)
    assert store.is_revoked(today[0], today[0], today[0])
    assert store.is_revoked(revoked[0], revoked[0], revoked[0])
    status = store.status()
    assert status["ready"] and status["refused"] is None


def test_bootstrap_flag_allows_a_partial_first_version(redis_server, trust_file):
    with pytest.raises(SyncError, match="first version needs both"):
        sync_state(redis_server.client(), trust=TrustRegistry.from_file(trust_file))
    r = sync_state(
        redis_server.client(),
        trust=TrustRegistry.from_file(trust_file),
        guard=Guard(bootstrap=True),
    )
    assert r.changed and r.keys == 1 and r.revoked == 0


def test_verifier_refuses_lower_seq_no_keys_and_big_drops(
    redis_server, running, tmp_path, hashes, write_revocations
):
    store, revoked = running
    client = redis_server.client()
    good = read_manifest(client, L, read_current(client, L))
    assert store.replica.seq == good.seq

    def refused_version():
        return (store.status()["refused"] or {}).get("version")

    # 1. a lower sequence number (a failover to a replica that missed the last sync)
    older = dataclasses.replace(
        good, version=f"{good.seq - 5}-{secrets.token_hex(8)}", seq=good.seq - 5
    )
    publish_manifest(client, older)
    assert wait_until(lambda: refused_version() == older.version, timeout=5)
    assert "sequence number" in store.status()["refused"]["reason"]
    assert store.replica.version == good.version and store.status()["ready"]

    # 2. a version with no issuer keys
    empty = bytes(TrustRegistry.empty().to_json())
    client.set(L.blob(blob_id(empty)), empty)
    keyless = dataclasses.replace(
        good,
        version=f"{good.seq + 1}-{secrets.token_hex(8)}",
        seq=good.seq + 1,
        trust_blob=blob_id(empty),
        trust_keys=0,
    )
    publish_manifest(client, keyless)
    assert wait_until(lambda: refused_version() == keyless.version, timeout=5)
    assert "no issuer keys" in store.status()["refused"]["reason"]
    assert len(store.trust) == 1

    # 3. a drop of more than half of the revocations, unconfirmed, then confirmed
    client.set(L.current, good.version)  # back to the good state
    write_revocations(tmp_path / "few.json", revoked[:10])
    with pytest.raises(SyncError, match="allow-drop"):
        sync_state(client, revocations=load_revocations(tmp_path / "few.json"), replace=True)
    assert store.status()["counts"]["revoked"] == 100
    r = sync_state(
        client,
        revocations=load_revocations(tmp_path / "few.json"),
        replace=True,
        guard=Guard(allow_drop=True),
    )
    assert wait_until(lambda: store.replica.version == r.version, timeout=5)
    assert store.status()["counts"]["revoked"] == 10 and store.status()["refused"] is None


def test_sequence_numbers_survive_a_data_loss(
    redis_server, trust_file, tmp_path, hashes, write_revocations
):
    write_revocations(tmp_path / "r.json", hashes(5))
    client = redis_server.client()
    first = sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=load_revocations(tmp_path / "r.json"),
    )
    redis_server.flushall()
    time.sleep(0.01)
    again = sync_state(
        client,
        trust=TrustRegistry.from_file(trust_file),
        revocations=load_revocations(tmp_path / "r.json"),
    )
    seq = int(again.version.split("-")[0])
    assert seq > int(first.version.split("-")[0])
