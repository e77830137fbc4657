"""The workers of one `qrverify serve --workers N`: a listening socket of their own each,
and the metrics and snapshot versions they share.

**Listening sockets.** uvicorn's supervisor binds one socket and hands it to every worker:
they all accept from one queue, and whichever wakes first takes every pending connection,
so a few busy keep-alive connections (a load generator, a gate's tablets behind one proxy)
can all end up on one worker while the other idles. Here, where the system has
SO_REUSEPORT (Linux), each worker binds its own socket to the same address with
SO_REUSEPORT and the kernel spreads new connections over the workers' sockets (by a hash
of the connection's addresses). The supervisor passes each worker a `ReusePortListener`
instead of a socket: unpickled in the new worker process (uvicorn starts workers with
`spawn`), it binds that worker's socket, so a worker that the supervisor restarts binds
again by itself. The supervisor keeps a socket bound to the address (not listening: the
kernel gives connections only to listening sockets), so that the port stays reserved for
this server's user and a bind error is reported before any worker starts. The kernel
allows SO_REUSEPORT binds to the same address only to the same user.

**Metrics.**

Each worker keeps counting in its own plain dicts (no locks, no shared writes on the
request path) and publishes them once a second, from the event loop, as one small JSON
file in a directory that the server's supervisor made for this run (`<pid>.json`, written
to a temporary name and renamed, so a reader never sees half a file). A scrape of
`/metrics` on any worker adds its live counters to the files of the others, so counters
are summed across workers (a worker's numbers are at most `INTERVAL` old; a worker that
died keeps its last published counts, as Prometheus counters should). The file also holds
the store snapshot version the worker serves, which `/readyz` and `/metrics` list per
live worker. The supervisor removes the directory when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from verifier.http.metrics import Metrics

INTERVAL = 1.0
MAX_FILE_BYTES = 4 * 1024 * 1024
DIR_ENV = "QRVERIFY_METRICS_DIR"
STARTUP_FAILURE = 3  # uvicorn's exit status for "cannot start": the supervisor gives up

HAVE_REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reserve_address(host: str, port: int) -> socket.socket:
    """The supervisor's socket: bound with SO_REUSEPORT, never listening (OSError when the
    address is taken). Its port is the workers' port (port 0: the one the system chose)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_worker_socket(host: str, port: int) -> socket.socket:
    """A worker's own socket on the shared address (uvicorn makes it listen). A worker that
    cannot bind exits with uvicorn's startup-failure status, which stops the server."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        logging.getLogger("uvicorn.error").error("worker cannot bind %s:%d: %s", host, port, exc)
        sys.exit(STARTUP_FAILURE)
    return sock


class ReusePortListener:
    """What the supervisor hands each worker in place of a socket: pickled to the new worker
    process, where unpickling binds the worker's own SO_REUSEPORT socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (bind_worker_socket, (self.host, self.port))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SharedMetrics(Metrics):
    """`Metrics` that publish to, and sum over, one directory per server."""

    def __init__(
        self, directory: str | os.PathLike[str], *, interval: float = INTERVAL, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.directory = Path(directory)
        self.interval = interval
        self.pid = os.getpid()
        self.status_fn: Callable[[], Mapping[str, Any]] | None = None
        self._handle: asyncio.TimerHandle | None = None

    # -- publishing ---------------------------------------------------------------------

    def _worker_status(self) -> dict[str, Any]:
        status: Mapping[str, Any] = {}
        if self.status_fn is not None:
            with contextlib.suppress(Exception):
                status = self.status_fn()
        return {
            "worker": self.pid,
            "version": status.get("version"),
            "source": status.get("source"),
            "ready": bool(status.get("ready")),
        }

    def publish(self) -> None:
        data = orjson.dumps(
            {
                "pid": self.pid,
                "time": time.time(),
                "worker": self._worker_status(),
                "counters": self.state(),
            }
        )
        path = self.directory / f"{self.pid}.json"
        tmp = self.directory / f".{self.pid}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            pass  # the directory went away (server stopping): nothing to share any more

    def _tick(self) -> None:
        self.publish()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.interval, self._tick)

    def start(self) -> None:
        self._tick()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.publish()

    # -- reading ------------------------------------------------------------------------

    def _others(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return out
        for path in paths:
            if path.stem == str(self.pid):
                continue
            try:
                with open(path, "rb") as fh:
                    raw = fh.read(MAX_FILE_BYTES + 1)
                if len(raw) > MAX_FILE_BYTES:
                    continue
                obj = orjson.loads(raw)
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(obj, dict) and isinstance(obj.get("pid"), int):
                out.append(obj)
        return out

    def totals(self) -> Metrics:
        total = Metrics(self.buckets, self.version)
        total.add_state(self.state())
        for other in self._others():
            counters = other.get("counters")
            if isinstance(counters, dict):
                total.add_state(counters)
        return total

    def workers(self, store_status: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        mine = self._worker_status()
        if store_status is not None:
            mine.update(
                version=store_status.get("version"),
                source=store_status.get("source"),
                ready=bool(store_status.get("ready")),
            )
        out = [mine]
        for other in self._others():
            worker = other.get("worker")
            if isinstance(worker, dict) and _alive(int(other["pid"])):
                out.append(
                    {
                        "worker": int(other["pid"]),
                        "version": worker.get("version"),
                        "source": worker.get("source"),
                        "ready": bool(worker.get("ready")),
                    }
                )
        return sorted(out, key=lambda w: int(w["worker"]))
