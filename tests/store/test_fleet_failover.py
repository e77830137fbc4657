"""A primary and a replica with a failover: sync reports and enforces replica
acknowledgements, and a follower never silently rolls back to the older version the
promoted replica holds."""

from __future__ import annotations

import logging

import pytest
from redis_support import (
    RedisServer,
    link_up,
    replicaof,
    requires_redis,
    start_replica,
    wait_until,
)

from verifier.cli import main
from verifier.redis_store import RedisStore

pytestmark = [pytest.mark.redis, pytest.mark.slow, requires_redis, pytest.mark.timeout(180)]

ZERO = b"\0" * 16


def sync_cli(*args: str) -> int:
    return main(["sync", *args])


def _current(server: RedisServer) -> str | None:
    value = server.client().get("{qrverify}:current")
    return None if value is None else value.decode()


def test_failover_to_a_replica_that_missed_a_sync(
    redis_server, trust_file, tmp_path, hashes, write_revocations, capsys, caplog
):
    primary = redis_server
    replica = start_replica(primary)
    store = None
    try:
        base = hashes(200)
        write_revocations(tmp_path / "base.json", base)
        assert (
            sync_cli(
                "--redis",
                primary.url,
                "--trust",
                str(trust_file),
                "--revocations",
                str(tmp_path / "base.json"),
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "1 of 1 replica(s) acknowledged (1 connected)" in out, out
        v1 = _current(primary)
        assert v1 is not None and _current(replica) == v1  # WAIT returned: it is there

        store = RedisStore.connect(
            primary.url, snapshot_path=tmp_path / "follower.snap", poll_interval=0.1
        )
        if "refused" not in store.status():
            pytest.skip("the follower's sequence guard (store helper) has not landed yet")
        assert store.replica.version == v1

        # The replica is cut off (and will be promoted): the next sync is only on the
        # primary. With --wait-replicas 1 the sync says so and exits 1.
        replicaof(replica, None)
        late = hashes(1)[0]
        write_revocations(tmp_path / "late.json", [late])
        assert (
            sync_cli(
                "--redis",
                primary.url,
                "--revocations",
                str(tmp_path / "late.json"),
                "--wait-replicas",
                "1",
                "--wait-timeout",
                "1",
            )
            == 1
        )
        captured = capsys.readouterr()
        assert "0 of 1 replica(s) acknowledged" in captured.out
        assert "a failover now would lose it; rerun the sync" in captured.err
        v2 = _current(primary)
        assert v2 is not None and _current(replica) == v1
        assert int(v2.split("-")[0]) > int(v1.split("-")[0])
        assert wait_until(lambda: store.is_revoked(late, ZERO, ZERO), timeout=20)
        assert store.replica.version == v2

        # Failover: the old primary becomes a replica of the promoted one and with that
        # loses version 2. The follower (still reading the old primary's address) sees
        # sequence 1 again: it must refuse it, keep enforcing `late`, and warn.
        caplog.set_level(logging.WARNING, logger="qrverify")
        replicaof(primary, replica)
        assert wait_until(lambda: link_up(primary) and _current(primary) == v1, timeout=30)
        assert wait_until(lambda: store.status().get("refused") is not None, timeout=30)
        refused = store.status()["refused"]
        assert refused["version"] == v1 and "sequence" in refused["reason"]
        assert store.replica.version == v2
        assert store.is_revoked(late, ZERO, ZERO), "a failover must not un-revoke"
        warnings = [
            r for r in caplog.records if r.levelno >= logging.WARNING and v1 in r.getMessage()
        ]
        assert warnings, "the refusal must be logged at warning level"

        # The operator reruns the sync against the new primary: it carries `late` again,
        # at a higher sequence than the follower's, and the follower moves on.
        assert (
            sync_cli(
                "--redis",
                replica.url,
                "--trust",
                str(trust_file),
                "--revocations",
                str(tmp_path / "late.json"),
                "--wait-replicas",
                "1",
                "--wait-timeout",
                "10",
            )
            == 0
        )
        assert "1 of 1 replica(s) acknowledged" in capsys.readouterr().out
        v3 = _current(replica)
        if v3 is not None and int(v3.split("-")[0]) <= int(v2.split("-")[0]):
            # same sequence as the lost version: one more sync moves past it
            write_revocations(tmp_path / "more.json", hashes(1))
            assert (
                sync_cli("--redis", replica.url, "--revocations", str(tmp_path / "more.json")) == 0
            )
            v3 = _current(replica)
        assert wait_until(lambda: store.replica.version == v3, timeout=30)
        assert store.is_revoked(late, ZERO, ZERO)
        assert all(store.is_revoked(h, ZERO, ZERO) for h in base[:20])
    finally:
        if store is not None:
            store.close()
        replica.close()
