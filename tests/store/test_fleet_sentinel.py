"""Sentinel: `redis+sentinel://` for sync (the master), a follower and `serve` (a replica),
across a Sentinel failover without re-pointing anything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from redis_support import (
    SentinelServer,
    free_port,
    link_up,
    requires_redis,
    start_replica,
    wait_until,
)

from verifier.cli import main
from verifier.redis_store import RedisStore

pytestmark = [pytest.mark.redis, pytest.mark.slow, requires_redis, pytest.mark.timeout(240)]

ZERO = b"\0" * 16


def sync_cli(*args: str) -> int:
    return main(["sync", *args])


def _calls(server, command: str) -> int:
    stats = server.client().info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def _serve(url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QRVERIFY_")}
    env["QRVERIFY_REQUIRE_INSTALLED"] = os.environ.get("QRVERIFY_REQUIRE_INSTALLED", "")
    env["QRVERIFY_SNAPSHOT_DIR"] = str(tmp)
    err = tmp / "serve.err"
    with open(err, "wb") as fe:
        proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "verifier",
                "serve",
                "--redis",
                url,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=fe,
            env=env,
            cwd=tmp,
        )
    return proc, port, err


def test_sentinel_sync_follow_serve_and_failover(
    redis_server, trust_file, tmp_path, hashes, write_revocations, capsys
):
    primary = redis_server
    replica = start_replica(primary)
    sentinel = SentinelServer(primary)
    store = None
    proc = None
    try:
        sentinel.start()
        url = sentinel.url
        first = hashes(100)
        write_revocations(tmp_path / "r.json", first)
        assert (
            sync_cli(
                "--redis",
                url,
                "--trust",
                str(trust_file),
                "--revocations",
                str(tmp_path / "r.json"),
            )
            == 0
        )
        out = capsys.readouterr().out
        assert re.search(r"published version [0-9]+-", out)
        assert "1 of 1 replica(s) acknowledged" in out
        v1 = primary.client().get("{qrverify}:current")
        assert v1 is not None  # the master

        before = _calls(replica, "mget"), _calls(primary, "mget")
        store = RedisStore.connect(url, snapshot_path=tmp_path / "f.snap", poll_interval=0.1)
        assert store.replica.version == v1.decode()
        assert _calls(replica, "mget") > before[0], "the reader reads a replica"
        assert _calls(primary, "mget") == before[1]

        proc, port, err = _serve(url, tmp_path)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(err.read_text(errors="replace")[-2000:])
            try:
                return httpx.get(base + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(ready, timeout=60, interval=0.2)
        assert httpx.get(base + "/readyz", timeout=5).json()["counts"]["revoked"] == 100

        # Sentinel promotes the replica; nothing is re-pointed.
        sentinel.failover(to=replica)
        assert wait_until(lambda: link_up(primary), timeout=60, interval=0.2)
        late = hashes(1)[0]
        write_revocations(tmp_path / "late.json", [late])
        assert (
            sync_cli(
                "--redis",
                url,
                "--revocations",
                str(tmp_path / "late.json"),
                "--wait-replicas",
                "1",
                "--wait-timeout",
                "10",
            )
            == 0
        )
        out = capsys.readouterr().out
        assert re.search(r"published version [0-9]+-", out)
        assert "1 of 1 replica(s) acknowledged" in out
        assert replica.client().get("{qrverify}:current") not in (None, v1)  # new master
        assert wait_until(lambda: store.is_revoked(late, ZERO, ZERO), timeout=30)

        def served_revoked() -> bool:
            body = httpx.get(base + "/readyz", timeout=5).json()
            return body["counts"]["revoked"] == 101

        assert wait_until(served_revoked, timeout=30, interval=0.2)

        # A wrong service name: one line, exit 2.
        bad = f"redis+sentinel://127.0.0.1:{sentinel.port}/nosuchservice"
        assert sync_cli("--redis", bad, "--trust", str(trust_file)) == 2
        err_line = capsys.readouterr().err
        assert (
            err_line.startswith("qrverify sync: network: Sentinel names no reachable server")
            and err_line.count("\n") == 1
        )
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if store is not None:
            store.close()
        sentinel.close()
        replica.close()
