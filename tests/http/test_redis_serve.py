"""`qrverify serve --redis`: a real uvicorn process reading a real redis-server."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

redis_support = pytest.importorskip("redis_support", reason="tests/redis_support.py missing")
RedisServer = redis_support.RedisServer
wait_until = redis_support.wait_until

pytestmark = [pytest.mark.redis, pytest.mark.slow, redis_support.requires_redis]


def _sync(url: str, *args: str) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "verifier", "sync", "--redis", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr


def _uci_hash(ci: str) -> str:
    return base64.b64encode(hashlib.sha256(ci.encode()).digest()[:16]).decode()


def test_serve_from_redis_follows_revocations(
    serve: Any, demo: Any, tokens: Any, tmp_path: Path
) -> None:
    with RedisServer() as redis:
        # keys only, on purpose: an empty store takes a partial first version only so
        _sync(redis.url, "--trust", str(demo.trust_path), "--bootstrap")
        server = serve(["--redis", redis.url, "--workers", "2", "--max-age", "3"])
        with httpx.Client(base_url=server.url, timeout=10) as c:
            ready = c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["counts"]["keys"] == 1
            assert c.post("/v1/verify", json={"token": tokens.valid}).json()["status"] == "valid"

            revocations = tmp_path / "revoked.json"
            revocations.write_text(
                json.dumps({"revoked": [{"type": "UCI", "hash": _uci_hash(tokens.ci)}]})
            )
            _sync(redis.url, "--revocations", str(revocations))

            def revoked_everywhere() -> bool:  # both workers, fresh connections
                reasons = {
                    c.post(
                        "/v1/verify", json={"token": tokens.valid}, headers={"connection": "close"}
                    ).json()["reason"]
                    for _ in range(6)
                }
                return reasons == {"revoked"}

            assert wait_until(revoked_everywhere, timeout=15)
            assert c.post("/v1/verify", json={"token": tokens.test}).json()["status"] == "valid"

            # Redis goes away: the replica keeps verifying, readiness turns 503 once stale
            redis.stop()
            assert wait_until(lambda: c.get("/readyz").status_code == 503, timeout=20)
            assert c.get("/readyz").json()["ready"] is False
            assert c.post("/v1/verify", json={"token": tokens.valid}).json()["reason"] == "revoked"
            assert c.get("/healthz").status_code == 200
        assert server.stop() == 0


def test_serve_redis_unreachable_exits_2(demo: Any) -> None:
    with RedisServer() as redis:
        url = redis.url
    p = subprocess.run(
        [sys.executable, "-m", "verifier", "serve", "--redis", url, "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert p.stderr.startswith("qrverify serve: ")
