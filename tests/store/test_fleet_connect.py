"""verifier.redis.connect: URLs, one-line categorised errors, WAIT after a sync.

Quick tier: URL parsing needs no server; the rest uses one real redis-server.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import redis
import redis.exceptions as rex
from redis.sentinel import MasterNotFoundError
from redis_support import RedisServer, free_port, requires_redis, start_replica

from verifier.cli import main
from verifier.redis.connect import (
    RedisFailure,
    connect,
    describe,
    parse_url,
    redact_url,
    wait_for_replicas,
)
from verifier.redis_store import RedisStore, StoreUnavailable


def sync_cli(*args: str) -> int:
    return main(["sync", *args])


# ---- URLs (no server) --------------------------------------------------------------------


def test_sentinel_url_parsed():
    target = parse_url(
        "redis+sentinel://u:secret@10.0.0.1:26379,[::1]:26380,s3/svc.a/3?sentinel_password=spw"
    )
    assert target.kind == "sentinel"
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("s3", 26379))
    assert target.service == "svc.a" and target.db == 3
    opts = dict(target.options)
    assert opts == {"username": "u", "password": "secret", "sentinel_password": "spw"}
    assert "secret" not in target.safe and "spw" not in target.safe
    assert target.safe.startswith("redis+sentinel://u:***@10.0.0.1:26379,")


@pytest.mark.parametrize(
    "url, kind, db",
    [
        ("redis://h:6379/0", "auto", 0),
        ("redis://h:6379/2", "auto", 2),
        ("rediss://h:6379?cluster=1", "cluster", 0),
        ("redis://h?cluster=0", "single", 0),
        ("unix:///run/redis.sock?db=1", "single", 1),
    ],
)
def test_plain_and_cluster_urls(url, kind, db):
    target = parse_url(url)
    assert (target.kind, target.db) == (kind, db)
    assert "cluster=" not in target.url


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://h:6379", "scheme"),
        ("redis://h:6379/1?cluster=1", "only database 0"),
        ("redis://h:port/0", "port"),
        ("redis://h/zero", "database must be a number"),
        ("redis://h?cluster=maybe", "cluster="),
        ("redis+sentinel://h:26379", "/service_name"),
        ("redis+sentinel://h:x/svc", "host:port"),
        ("redis+sentinel://h:1/svc/0/extra", "/service_name"),
        ("redis+sentinel://h:1/svc?cluster=1", "does not apply"),
        ("redis+sentinel://h:1/svc?bogus=1", "unknown option"),
        ("redis://h?sentinel_password=x", "only applies"),
        ("unix:///s.sock?cluster=1", "unix socket"),
    ],
)
def test_bad_urls_are_configuration_errors(url, words):
    with pytest.raises(RedisFailure) as info:
        connect(url)
    assert info.value.category == "configuration"
    assert words in str(info.value)
    assert str(info.value).startswith("configuration: ")
    assert "\n" not in str(info.value)


def test_redaction():
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert redact_url("redis://user@h:1/0") == "redis://user@h:1/0"
    assert "pw" not in redact_url("unix:///s.sock?password=pw&db=1")
    with pytest.raises(RedisFailure) as info:
        connect("redis://:hunter2@h:notaport/0")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "exc, category, words",
    [
        (rex.MovedError("1406 127.0.0.1:37459"), "server", "another Redis Cluster node"),
        (rex.AskError("1406 127.0.0.1:37459"), "server", "reshard in progress"),
        (
            rex.ResponseError("SELECT is not allowed in cluster mode"),
            "configuration",
            "only database 0",
        ),
        (
            rex.ReadOnlyError("You can't write against a read only replica."),
            "configuration",
            "read-only replica",
        ),
        (rex.AuthenticationError("invalid username-password pair"), "auth", "credentials"),
        (rex.ResponseError("NOAUTH Authentication required."), "auth", "credentials"),
        (rex.NoPermissionError("NOPERM this user has no permissions"), "auth", "permissions"),
        (
            rex.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
            "network",
            "cannot reach Redis",
        ),
        (rex.TimeoutError("Timeout reading from socket"), "network", "did not answer"),
        (MasterNotFoundError("No master found for 'q'"), "network", "Sentinel"),
        (rex.ClusterDownError("CLUSTERDOWN The cluster is down"), "server", "cannot serve"),
        (
            rex.RedisClusterException(
                "Redis Cluster cannot be connected. Please provide at least one reachable node: ..."
            ),
            "network",
            "any Redis",
        ),
        (rex.ResponseError("ERR unknown command 'X'"), "server", "refused a command"),
        (
            rex.ResponseError("ERR This instance has cluster support disabled"),
            "configuration",
            "not a Redis Cluster",
        ),
    ],
)
def test_describe_categories(exc, category, words):
    failure = RedisFailure.from_exception(exc, "redis://h:1/0")
    assert failure.category == category
    line = describe(exc, "redis://h:1/0")
    assert line == str(failure)
    assert line.startswith(category + ": ") and words in line
    assert "\n" not in line and "Traceback" not in line
    assert line.endswith("(Redis at redis://h:1/0)")


def test_describe_is_one_short_line():
    line = describe(rex.ResponseError("ERR " + "x\n" * 500))
    assert "\n" not in line and len(line) <= 320


# ---- one real server ---------------------------------------------------------------------


@pytest.mark.redis
@requires_redis
def test_auto_detects_single_server_and_db(redis_server):
    client = connect(f"redis://127.0.0.1:{redis_server.port}/3", role="writer")
    try:
        client.set("{qrverify}:x", b"1")
        assert redis_server.client(db=3).get("{qrverify}:x") == b"1"
        assert redis_server.client(db=0).get("{qrverify}:x") is None
    finally:
        client.close()


@pytest.mark.redis
@requires_redis
def test_unreachable_is_lazy_then_network(capsys):
    url = f"redis://:pw123@127.0.0.1:{free_port()}/0"
    client = connect(url)  # no I/O yet
    with pytest.raises(redis.ConnectionError) as info:
        client.get("{qrverify}:current")
    line = describe(info.value, redact_url(url))
    assert line.startswith("network: ") and "pw123" not in line
    client.close()


@pytest.mark.redis
@requires_redis
def test_cluster_flag_on_single_server_is_configuration(redis_server):
    client = connect(f"redis://127.0.0.1:{redis_server.port}?cluster=1")
    with pytest.raises(RedisFailure) as info:
        client.get("{qrverify}:current")
    assert info.value.category == "configuration"
    client.close()


@pytest.mark.redis
@requires_redis
def test_wrong_password_is_auth_for_sync_store_and_verify(tmp_path, trust_file, capsys):
    with RedisServer(password="right-pw") as server:
        url = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        assert sync_cli("--redis", url, "--trust", str(trust_file)) == 2
        err = capsys.readouterr().err
        assert err.startswith("qrverify sync: auth: ") and err.count("\n") == 1
        assert "wrong-pw" not in err and "right-pw" not in err
        with pytest.raises(StoreUnavailable, match="^auth: "):
            RedisStore.connect(url, follow=False)
        assert main(["verify", "--redis", url, "HC1:x"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("qrverify verify: auth: ") and err.count("\n") == 1
        good = f"redis://:right-pw@127.0.0.1:{server.port}/0"
        assert sync_cli("--redis", good, "--trust", str(trust_file), "--bootstrap") == 0
        out = capsys.readouterr().out
        assert re.search(r"published version [0-9]+-", out) and "no replicas connected" in out


@pytest.mark.redis
@requires_redis
def test_sync_unreachable_exits_2_one_line(trust_file):
    url = f"redis://:pw123@127.0.0.1:{free_port()}/0"
    proc = subprocess.run(
        [sys.executable, "-m", "verifier", "sync", "--redis", url, "--trust", str(trust_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("qrverify sync: network: cannot reach Redis")
    assert proc.stderr.count("\n") == 1 and "pw123" not in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.redis
@requires_redis
def test_sync_writer_pointed_at_replica(redis_server, trust_file, capsys):
    replica = start_replica(redis_server)
    try:
        assert (
            sync_cli(
                "--redis",
                f"redis://127.0.0.1:{replica.port}/0",
                "--trust",
                str(trust_file),
                "--bootstrap",
            )
            == 2
        )
        err = capsys.readouterr().err
        assert err.startswith("qrverify sync: configuration: the server is a read-only replica")
    finally:
        replica.close()


@pytest.mark.redis
@requires_redis
def test_wait_for_replicas_counts(redis_server):
    client = connect(redis_server.url, role="writer")
    try:
        acks = wait_for_replicas(client, None, 1.0)
        assert (acks.acknowledged, acks.required, acks.connected, acks.ok) == (0, 0, 0, True)
        replica = start_replica(redis_server)
        try:
            client.set("{qrverify}:probe", b"x")
            acks = wait_for_replicas(client, None, 5.0, marker="v1")
            assert (acks.acknowledged, acks.required, acks.connected) == (1, 1, 1)
            assert replica.client().get("{qrverify}:wait") == b"v1"
            assert replica.client().get("{qrverify}:probe") == b"x"
            # two required, one exists: WAIT gives up after the timeout with 1
            acks = wait_for_replicas(client, 2, 0.3)
            assert (acks.acknowledged, acks.required, acks.ok) == (1, 2, False)
        finally:
            replica.close()
    finally:
        client.close()
    with pytest.raises(ValueError):
        wait_for_replicas(client, -1, 1.0)


@pytest.mark.redis
@requires_redis
def test_sync_fails_when_too_few_replicas_acknowledge(redis_server, trust_file, capsys):
    assert (
        sync_cli(
            "--redis",
            redis_server.url,
            "--trust",
            str(trust_file),
            "--bootstrap",
            "--wait-replicas",
            "1",
            "--wait-timeout",
            "0.3",
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "0 of 1 replica(s) acknowledged" in captured.out
    assert "a failover now would lose it; rerun the sync" in captured.err
    assert captured.err.count("\n") == 1
    assert (
        sync_cli(
            "--redis",
            redis_server.url,
            "--trust",
            str(trust_file),
            "--bootstrap",
            "--wait-replicas",
            "none",
        )
        == 2
    )


@pytest.mark.redis
@requires_redis
def test_serve_startup_redis_errors_exit_2_one_line(tmp_path):
    with RedisServer(password="right-pw") as server:
        for url, category in [
            (f"redis://:wrong-pw@127.0.0.1:{server.port}/0", "auth: "),
            (f"redis+sentinel://127.0.0.1:{free_port()}/svc", "network: "),
            ("redis://127.0.0.1:6379/0?cluster=1&db=2", "configuration: "),
        ]:
            proc = subprocess.run(
                [sys.executable, "-m", "verifier", "serve", "--redis", url, "--port", "1"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin", "QRVERIFY_SNAPSHOT_DIR": str(tmp_path)},
            )
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.startswith("qrverify serve: ") and category in proc.stderr
            assert proc.stderr.count("\n") == 1, proc.stderr
            assert "wrong-pw" not in proc.stderr and "Traceback" not in proc.stderr
