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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from socket_support import free_port

REDIS_SERVER = shutil.which("redis-server")
requires_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server binary not found (Debian/Ubuntu: apt-get install redis-server)",
)


class RedisServer:
    """One redis-server process under test control."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        directory: str | Path | None = None,
        extra: Sequence[str] = (),
        password: str | None = None,
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra = list(extra)
        self.password = password
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
            str(REDIS_SERVER),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
            "--protected-mode",
            "yes",
            *self.extra,
            *(["--requirepass", self.password] if self.password else []),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        probe = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, password=self.password
        )
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
                    raise RuntimeError(
                        f"redis-server exited with {self.proc.returncode}; "
                        f"see {self.dir / 'redis.log'}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start in time")
                time.sleep(0.02)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise
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
        kwargs.setdefault("password", self.password)
        client = redis.Redis(host="127.0.0.1", port=self.port, **kwargs)
        self._clients.append(client)
        return client

    def flushall(self) -> None:
        with redis.Redis(host="127.0.0.1", port=self.port, password=self.password) as client:
            client.flushall()

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, empty redis-server (no persistence) for one test."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    with RedisServer() as server:
        yield server


def sync_cli(url: str, *args: str | Path) -> int:
    """`qrverify sync --redis URL ARGS...` in this process; its exit status."""
    from verifier.cli import main

    return main(["sync", "--redis", url, *(str(a) for a in args)])


def publish_manifest(client: redis.Redis, manifest: Any) -> None:
    """Write a manifest and flip `current` to it, as a (misbehaving) writer would, without
    any of sync's checks."""
    from verifier.redis.format import Layout

    layout = Layout()
    client.set(layout.manifest(manifest.version), manifest.to_json())
    client.set(layout.current, manifest.version)
    client.publish(layout.channel, manifest.version)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `predicate()` until it is true or `timeout` seconds pass; returns the last value.
    For "eventually" checks with a generous bound, never for timing assertions."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


# ---- fleets: replicas, Redis Cluster, Sentinel ------------------------------------------
#
# All bounded: every wait has a timeout, every process belongs to an object whose close()
# stops it (fixtures and `with` blocks call it), and everything binds 127.0.0.1.

REDIS_CLI = shutil.which("redis-cli")
REDIS_SENTINEL = shutil.which("redis-sentinel")
requires_fleet_tools = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None,
    reason="redis-server / redis-cli not found (apt-get install redis-server redis-tools)",
)


def _info(server: RedisServer, section: str) -> dict[str, Any]:
    with redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5) as client:
        return dict(client.info(section))


def link_up(replica: RedisServer) -> bool:
    """True once `replica` has finished its sync with its primary."""
    try:
        info = _info(replica, "replication")
    except redis.RedisError:
        return False
    return (
        info.get("role") == "slave"
        and info.get("master_link_status") == "up"
        and not info.get("master_sync_in_progress")
    )


def start_replica(primary: RedisServer, timeout: float = 20.0) -> RedisServer:
    """A new replica of `primary`, synced (its own process; close() it)."""
    replica = RedisServer(extra=["--replicaof", "127.0.0.1", str(primary.port)]).start()
    if not wait_until(lambda: link_up(replica), timeout=timeout, interval=0.05):
        replica.close()
        raise RuntimeError("the replica did not sync in time")
    return replica


def replicaof(server: RedisServer, primary: RedisServer | None) -> None:
    """REPLICAOF host port, or REPLICAOF NO ONE (promote) when `primary` is None."""
    with redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5) as client:
        if primary is None:
            client.execute_command("REPLICAOF", "NO", "ONE")
        else:
            client.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))


def _cluster_port(tries: int = 200) -> int:
    """A free port whose cluster bus port (port + 10000) is free as well and below 65536."""
    for _ in range(tries):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class ClusterNodes:
    """A Redis Cluster of `masters` primaries (no replicas unless add_replica is called),
    created with `redis-cli --cluster create`. All slots covered before start() returns."""

    def __init__(self, masters: int = 3) -> None:
        self.masters: list[RedisServer] = []
        self.replicas: list[RedisServer] = []
        self._count = masters

    @staticmethod
    def _node() -> RedisServer:
        tmp = RedisServer(port=_cluster_port())
        tmp.extra = [
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            "3000",
            "--cluster-config-file",
            str(tmp.dir / "nodes.conf"),
        ]
        return tmp.start()

    def start(self, timeout: float = 60.0) -> ClusterNodes:
        if REDIS_CLI is None:
            raise RuntimeError("redis-cli is not installed")
        try:
            self.masters = [self._node() for _ in range(self._count)]
            subprocess.run(  # noqa: S603 - fixed arguments
                [
                    REDIS_CLI,
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{n.port}" for n in self.masters],
                    "--cluster-yes",
                ],
                check=True,
                timeout=timeout,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if not wait_until(self._ok, timeout=timeout, interval=0.1):
                raise RuntimeError("the cluster did not become ok in time")
        except BaseException:
            self.close()
            raise
        return self

    def _ok(self) -> bool:
        try:
            for node in self.masters + self.replicas:
                with self.client(node) as client:
                    info = client.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text or "cluster_slots_ok:16384" not in text:
                        return False
        except redis.RedisError:
            return False
        return True

    @staticmethod
    def client(node: RedisServer) -> redis.Redis:
        """A plain (non-cluster) client of one node; close it."""
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=10)

    def node_id(self, node: RedisServer) -> str:
        with self.client(node) as client:
            value = client.execute_command("CLUSTER", "MYID")
        return value.decode() if isinstance(value, bytes) else str(value)

    def slot_of(self, key: str) -> int:
        with self.client(self.masters[0]) as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def owner(self, slot: int) -> RedisServer:
        """The primary that owns `slot`, as the nodes' CLUSTER SLOTS say."""
        with self.client(self.masters[0]) as client:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        for item in ranges:
            start, end, primary = int(item[0]), int(item[1]), item[2]
            if start <= slot <= end:
                port = int(primary[1])
                for node in self.masters:
                    if node.port == port:
                        return node
        raise RuntimeError(f"no owner for slot {slot}")

    def add_replica(self, master: RedisServer, timeout: float = 60.0) -> RedisServer:
        """Start a node, join it to the cluster and make it a replica of `master`; wait
        until every node lists it as a replica (clients discover it from any node)."""
        node = self._node()
        self.replicas.append(node)
        master_id = self.node_id(master)
        with self.client(node) as client:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", str(master.port))
            if not wait_until(
                lambda: master_id in _nodes_text(client), timeout=timeout, interval=0.1
            ):
                raise RuntimeError("the new node did not learn the cluster in time")
            client.execute_command("CLUSTER", "REPLICATE", master_id)

        def everyone_sees_it() -> bool:
            for other in self.masters:
                with self.client(other) as c:
                    for item in c.execute_command("CLUSTER", "SLOTS"):
                        if any(int(r[1]) == node.port for r in item[3:]):
                            break
                    else:
                        return False
            return link_up(node)

        if not wait_until(everyone_sees_it, timeout=timeout, interval=0.1):
            raise RuntimeError("the replica was not announced in time")
        return node

    def move_slot(
        self,
        slot: int,
        target: RedisServer,
        timeout: float = 60.0,
        *,
        batch: int = 100,
        midway: Any = None,
    ) -> None:
        """Reshard one slot, with its keys, to `target` (what `redis-cli --cluster
        reshard` does: IMPORTING / MIGRATING, MIGRATE the keys, SETSLOT NODE everywhere).
        `midway()` is called once after the first batch of `batch` keys has moved, while
        the slot is half migrated (clients get ASK redirections then)."""
        source = self.owner(slot)
        if source is target:
            return
        src_id, dst_id = self.node_id(source), self.node_id(target)
        with self.client(target) as dst, self.client(source) as src:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            deadline = time.monotonic() + timeout
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("slot migration did not finish in time")
                src.execute_command(
                    "MIGRATE", "127.0.0.1", target.port, "", 0, 10000, "KEYS", *keys
                )
                if midway is not None:
                    midway, call = None, midway
                    call()
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for node in self.masters:
            if node is not source and node is not target:
                with self.client(node) as other:
                    other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        if not wait_until(
            lambda: self.owner(slot) is target and self._ok(), timeout=timeout, interval=0.1
        ):
            raise RuntimeError("the cluster did not settle after the reshard")

    def close(self) -> None:
        for node in self.replicas + self.masters:
            node.close()
        self.replicas, self.masters = [], []

    def __enter__(self) -> ClusterNodes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _nodes_text(client: redis.Redis) -> str:
    value = client.execute_command("CLUSTER", "NODES")
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelServer:
    """One redis-sentinel process watching `master` as service `name` (quorum 1)."""

    def __init__(self, master: RedisServer, name: str = "qrverify") -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.name = name
        self._tmp = tempfile.TemporaryDirectory(prefix="qrv-sentinel-")
        self.dir = Path(self._tmp.name)
        self._master = master
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.name}"

    def start(self, timeout: float = 20.0) -> SentinelServer:
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self._master.port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 3000\n"
            f"sentinel failover-timeout {self.name} 20000\n"
            f"sentinel parallel-syncs {self.name} 1\n"
        )
        args = (
            [REDIS_SENTINEL, str(conf)]
            if REDIS_SENTINEL
            else [str(REDIS_SERVER), str(conf), "--sentinel"]
        )
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,  # noqa: S603
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(self._pings, timeout=timeout, interval=0.05):
            self.close()
            raise RuntimeError(f"redis-sentinel did not start; see {self.dir}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _pings(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def master_port(self) -> int:
        with self.client() as client:
            addr = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return int(addr[1])

    def knows_replicas(self, count: int = 1) -> bool:
        with self.client() as client:
            replicas = client.execute_command("SENTINEL", "REPLICAS", self.name)
        good = 0
        for item in replicas:
            fields = (
                dict(zip(item[::2], item[1::2], strict=False))
                if isinstance(item, list)
                else dict(item)
            )
            flags = fields.get(b"flags", fields.get("flags", b""))
            flags = flags.decode() if isinstance(flags, bytes) else str(flags)
            if flags == "slave":
                good += 1
        return good >= count

    def failover(self, to: RedisServer, timeout: float = 60.0) -> None:
        """SENTINEL FAILOVER and wait until `to` is the master and serves writes."""
        if not wait_until(self.knows_replicas, timeout=timeout, interval=0.1):
            raise RuntimeError("sentinel does not know the replica")
        with self.client() as client:
            client.execute_command("SENTINEL", "FAILOVER", self.name)

        def promoted() -> bool:
            try:
                return (
                    self.master_port() == to.port
                    and _info(to, "replication").get("role") == "master"
                )
            except redis.RedisError:
                return False

        if not wait_until(promoted, timeout=timeout, interval=0.1):
            raise RuntimeError("the failover did not finish in time")

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._tmp.cleanup()

    def __enter__(self) -> SentinelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
