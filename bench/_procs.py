"""Processes the benchmarks start: free loopback ports, redis-server, `qrverify serve`.

bench/ stands alone: these helpers serve every benchmark, and nothing here (or anywhere in
bench/) reads tests/. Every process is started in its own process group and stopped by its
pid (`Procs.stop_all`); servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BenchError",
    "Procs",
    "child_env",
    "free_port",
    "http_request",
    "start_redis",
    "start_server",
    "wait_ready",
]

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
READY_TIMEOUT = 60.0


class BenchError(RuntimeError):
    """The benchmark could not run (a process did not start, a tool is missing)."""


def child_env() -> dict[str, str]:
    """Environment for the Python processes this runner starts.

    They need the `bench` package from this checkout, but qrverify itself as installed:
    the source tree's fastpath/ has no compiled module. So the interpreter's own
    site-packages come first on the path, this checkout after them (in a developer's
    checkout without an install, the source tree is what there is), and children run in
    their work directory, never the checkout (`-m` and uvicorn put the cwd first).
    """
    env = dict(os.environ)
    parts = [*site.getsitepackages(), str(ROOT)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("QRVERIFY_SERVE_CONFIG", None)
    return env


@dataclass
class Procs:
    """Every process this run started; `stop_all` ends them (process groups, by pid)."""

    running: list[subprocess.Popen[Any]] = field(default_factory=list)

    def start(
        self, argv: list[str], log: Path, *, own_session: bool = True, **kw: Any
    ) -> subprocess.Popen[Any]:
        """Start `argv` in `log`'s directory (never the checkout), stderr (and stdout
        unless given) appended to `log`; `stdin`/`stdout` may be pipes. The process
        leads a process group of its own, in a session of its own unless `own_session`
        is false (then it stays in this runner's session, as the workers of one `serve`
        stay in their supervisor's: with autogroups the kernel shares the CPU between
        sessions first)."""
        if own_session:
            kw["start_new_session"] = True
        else:
            kw["process_group"] = 0
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                argv,
                cwd=log.parent,
                env=child_env(),
                stdin=kw.pop("stdin", subprocess.DEVNULL),
                stderr=fh,
                stdout=kw.pop("stdout", fh),
                **kw,
            )
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)  # the group of a process we started
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:  # its children (uvicorn workers) may outlive it
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc, timeout=5.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[Any], port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode}; see {log}")
        try:
            status, _ = http_request(port, "GET", "/readyz", timeout=2.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{what} not ready within {READY_TIMEOUT:g} s; see {log}")


def start_redis(procs: Procs, work: Path) -> tuple[subprocess.Popen[Any], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise BenchError("redis-server not found (Debian: apt-get install redis-server)")
    port = free_port()
    rdir = work / f"redis-{port}"
    rdir.mkdir()
    proc = procs.start(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(rdir),
            "--protected-mode",
            "yes",
        ],
        work / "redis.log",
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    deadline = time.monotonic() + 20.0
    try:
        while True:
            if proc.poll() is not None:
                raise BenchError(f"redis-server exited ({proc.returncode}); see {work}/redis.log")
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("redis-server did not answer PING")
            time.sleep(0.05)
    finally:
        client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def start_server(
    procs: Procs,
    args: list[str],
    log: Path,
    *,
    what: str = "qrverify serve",
    port: int | None = None,
) -> tuple[subprocess.Popen[Any], int]:
    """`python -m verifier serve ARGS` on a free 127.0.0.1 port; returns once /readyz is 200."""
    port = port or free_port()
    argv = [PY, "-m", "verifier", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = procs.start(argv, log)
    wait_ready(proc, port, what, log)
    return proc, port
