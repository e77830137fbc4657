"""A real 3-master Redis Cluster: sync and a follower seeded with a node that does not own
the `{qrverify}` slot, reads from the owner's replica, a reshard followed, `/N` refused."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from redis_support import (
    ClusterNodes,
    RedisServer,
    requires_fleet_tools,
    requires_redis,
    wait_until,
)

from verifier.cli import main
from verifier.redis.connect import connect, is_cluster, wait_for_replicas
from verifier.redis_store import RedisStore, StoreUnavailable

pytestmark = [
    pytest.mark.redis,
    pytest.mark.slow,
    requires_redis,
    requires_fleet_tools,
    pytest.mark.timeout(240),
]


def sync_cli(*args: str) -> int:
    return main(["sync", *args])


@pytest.fixture
def cluster() -> Iterator[ClusterNodes]:
    with ClusterNodes(3) as nodes:
        yield nodes


def _calls(node: RedisServer, command: str) -> int:
    stats = node.client().info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_cluster_sync_follow_and_reshard(
    cluster, trust_file, tmp_path, hashes, write_revocations, capsys
):
    slot = cluster.slot_of("{qrverify}")
    owner = cluster.owner(slot)
    seed, spare = (n for n in cluster.masters if n is not owner)
    url = f"redis://127.0.0.1:{seed.port}"  # not the owner; cluster mode detected
    replica = cluster.add_replica(owner)

    revoked = hashes(300)
    write_revocations(tmp_path / "r.json", revoked)
    assert (
        sync_cli(
            "--redis", url, "--trust", str(trust_file), "--revocations", str(tmp_path / "r.json")
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"published version [0-9]+-", out)
    assert "1 of 1 replica(s) acknowledged" in out, out  # WAIT ran on the slot's owner
    with cluster.client(owner) as c:
        v1 = c.get("{qrverify}:current").decode()
    with cluster.client(seed) as c:
        assert c.dbsize() == 0  # nothing landed on the seed node

    # The follower: seeded with the same non-owner, reads from the owner's replica.
    mget_primary, mget_replica = _calls(owner, "mget"), _calls(replica, "mget")
    store = RedisStore.connect(url, poll_interval=0.1)
    try:
        assert store.replica.version == v1
        assert all(store.is_revoked(h, b"\0" * 16, b"\0" * 16) for h in revoked[:50])
        assert _calls(replica, "mget") > mget_replica
        assert _calls(owner, "mget") == mget_primary, "the reader must use the replica"

        # A database number in a cluster URL is a clear configuration error.
        assert sync_cli("--redis", url + "/1", "--trust", str(trust_file)) == 2
        err = capsys.readouterr().err
        assert err.startswith("qrverify sync: configuration: ") and "database 0" in err
        assert err.count("\n") == 1
        with pytest.raises(StoreUnavailable, match="only database 0"):
            RedisStore.connect(url + "/1", follow=False)
        # ?cluster=0 on a cluster node: the MOVED reply becomes one line, not "1406 ..."
        assert sync_cli("--redis", url + "?cluster=0", "--trust", str(trust_file)) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith(
                "qrverify sync: server: another Redis Cluster node serves the qrverify slot"
            )
            and err.count("\n") == 1
        )

        # Reshard: the slot moves (with its keys) to a master without replicas. Half-way
        # (ASK redirections; multi-key commands get TRYAGAIN while their keys are split)
        # a sync either succeeds or fails with one categorised line, never a traceback,
        # and the follower keeps serving.
        half = hashes(1)[0]
        write_revocations(tmp_path / "half.json", [half])
        outcome: list[int] = []

        def during_migration() -> None:
            outcome.append(
                sync_cli(
                    "--redis",
                    url,
                    "--revocations",
                    str(tmp_path / "half.json"),
                    "--wait-timeout",
                    "2",
                )
            )
            assert store.status()["ready"] is True

        cluster.move_slot(slot, spare, batch=2, midway=during_migration)
        assert outcome and outcome[0] in (0, 2), outcome
        captured = capsys.readouterr()
        if outcome[0] == 2:
            assert captured.err.startswith("qrverify sync: server: ") or captured.err.startswith(
                "qrverify sync: network: "
            ), captured.err
            assert captured.err.count("\n") == 1
        else:
            assert re.search(r"published version [0-9]+-", captured.out)
        rev_after = 302 if outcome[0] == 0 else 301
        with cluster.client(spare) as c:
            assert c.get("{qrverify}:current").decode() == v1
        new = hashes(1)[0]
        write_revocations(tmp_path / "one.json", [new])
        # the old owner's address as the seed: now it does not own the slot either
        assert (
            sync_cli(
                "--redis",
                f"redis://127.0.0.1:{owner.port}",
                "--revocations",
                str(tmp_path / "one.json"),
                "--wait-timeout",
                "5",
            )
            == 0
        )
        out = capsys.readouterr().out
        published = re.search(r"published version ([0-9]+-[0-9a-f]+)", out)
        assert published and "no replicas connected" in out
        assert wait_until(lambda: store.is_revoked(new, b"\0" * 16, b"\0" * 16), timeout=30)
        assert store.replica.version == published.group(1)
        status = store.status()
        assert status["ready"] is True, status
        assert status["counts"]["revoked"] == rev_after
    finally:
        store.close()


def test_cluster_writer_wait_targets_the_slot_owner(cluster):
    slot = cluster.slot_of("{qrverify}")
    owner = cluster.owner(slot)
    other = next(n for n in cluster.masters if n is not owner)
    client = connect(f"redis://127.0.0.1:{other.port}?cluster=1", role="writer")
    try:
        assert is_cluster(client)
        client.set("{qrverify}:probe", b"1")
        acks = wait_for_replicas(client, None, 2.0)
        assert (acks.acknowledged, acks.required, acks.connected) == (0, 0, 0)
        with cluster.client(owner) as c:
            assert c.get("{qrverify}:wait") == b"1"
        replica = cluster.add_replica(owner)
        acks = wait_for_replicas(client, 1, 10.0, marker="m")
        assert (acks.acknowledged, acks.required, acks.connected) == (1, 1, 1)
        with cluster.client(replica) as c:
            c.execute_command("READONLY")
            assert c.get("{qrverify}:wait") == b"m"
    finally:
        client.close()
