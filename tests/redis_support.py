"""A real, throwaway redis-server for tests (no mocks).

    from redis_support import RedisServer, requires_redis, redis_server  # noqa: F401

    @requires_redis
    def test_x(redis_server):             # function-scoped fixture, empty server
        client = redis_server.client()
        ...

`RedisServer` binds 127.0.0.1 on a free port, without persistence unless
`appendonly=True` (AOF in its own temporary directory), and can be stopped, restarted on
the same port and flushed. Tests that need it are skipped, with the reason, only when the
redis-server binary is missing (Debian: apt-get install redis-server).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")
requires_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server binary not found (Debian/Ubuntu: apt-get install redis-server)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process under test control."""

    def __init__(self, *, appendonly: bool = False, port: int | None = None,
                 directory: str | Path | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.port = port or free_port()
        self.appendonly = appendonly
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="qrv-redis-")
        self.dir = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.proc is not None:
            return self
        args = [
            str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--dir", str(self.dir), "--daemonize", "no",
            "--logfile", str(self.dir / "redis.log"), "--protected-mode", "yes",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if probe.ping():
                        # with AOF, wait until the data set is loaded
                        if probe.info("persistence").get("loading", 0) == 0:
                            return self
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}; "
                                       f"see {self.dir / 'redis.log'}")
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start in time")
                time.sleep(0.02)
        finally:
            probe.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM; with AOF the data set survives a restart)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs: Any) -> redis.Redis:
        client = redis.Redis(host="127.0.0.1", port=self.port, **kwargs)
        self._clients.append(client)
        return client

    def flushall(self) -> None:
        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            client.flushall()

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty redis-server (no persistence) for one test."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    with RedisServer() as server:
        yield server


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds pass; returns the last value.
    For "eventually" checks with a generous bound, never for timing assertions."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)
