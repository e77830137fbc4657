"""Store benchmark: one mapped snapshot per machine, measured with real worker processes.

    python bench/bench_store.py [--entries 10000000] [--workers 4] [--probes 1000000]

Starts its own redis-server (no persistence) on a free 127.0.0.1 port, a temporary
snapshot directory, and `--workers` verifier processes (RedisStore over the machine's
snapshot file; one of them is elected builder). Prints one line per measurement:

- HashSet: build time, table bytes per hash, membership cost (C loop and Python call);
- sync of N hashes into an empty Redis;
- per-machine memory: the snapshot file (page cache, shared) plus each worker's private
  (anonymous) memory growth, per hash;
- one revocation: from the end of `sync` to enforced on every worker (max over workers);
- p99 latency of simulated requests (one every millisecond, each 20 lookups, latency from
  its scheduled time, so stalls count) in every worker, quiet and during a full reload of
  N fresh hashes (`sync --replace --allow-drop`).

Timings are single runs on whatever machine this is; say how busy it was when quoting.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:  # prefer the installed build; a developer's checkout without an install works too
    import verifier  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from fastpath._hashset import HashSet  # noqa: E402
from keys.registry import TrustRegistry  # noqa: E402
from verifier.redis.sync import Guard, sync_state  # noqa: E402
from verifier.revocations import Revocations  # noqa: E402

WORKER = r'''
import json, os, sys, threading, time
def anon():
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) * 1024
from verifier.redis.store import RedisStore
import keys.registry  # imported before the baseline
base = anon()
t = time.perf_counter()
store = RedisStore.connect(sys.argv[1], snapshot_path=sys.argv[2], poll_interval=0.05,
                           start_timeout=600)
print(json.dumps({"start_s": time.perf_counter() - t, "anon": anon() - base,
                  "role": store.status()["role"]}), flush=True)
def load(seconds=None, until=None):
    """Requests every 1 ms (20 lookups each); latency from the scheduled time."""
    keys = [os.urandom(16) for _ in range(20)]
    lat, start, i = [], time.perf_counter(), 0
    seen_at = None
    while True:
        due = start + i * 0.001
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        rep = store.replica
        for k in keys:
            rep.revoked.contains(k)
        lat.append(time.perf_counter() - due)
        i += 1
        if seconds is not None and time.perf_counter() - start >= seconds:
            break
        if until is not None:
            if seen_at is None and store.replica.version != until:
                seen_at = time.perf_counter()
            if seen_at is not None and time.perf_counter() - seen_at > 0.5:
                break
            if time.perf_counter() - start > 900:
                break
    lat.sort()
    return {"p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
            "max_ms": lat[-1] * 1e3, "n": len(lat), "role": store.status()["role"]}
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "wait":
        key = bytes.fromhex(arg)
        while not store.is_revoked(key, key, key):
            time.sleep(0.0005)
        out = {"seen": time.time()}
    elif cmd == "quiet":
        out = load(seconds=float(arg))
    elif cmd == "reload":
        out = load(until=arg)
    elif cmd == "status":
        out = {k: v for k, v in store.status().items() if k != "refused"}
        out["anon"] = anon() - base
    else:
        out = {"error": cmd}
    print(json.dumps(out), flush=True)
store.close()
'''


class Worker:
    def __init__(self, url: str, path: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, url, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench_store: a worker exited")
        return dict(json.loads(line))

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def ask(self, cmd: str) -> dict:
        self.send(cmd)
        return self.read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def start_redis(tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench_store: redis-server not found (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
            "--logfile",
            os.path.join(tmp, "redis.log"),
        ]
    )
    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            time.sleep(0.01)
    client.close()
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--probes", type=int, default=1_000_000)
    parser.add_argument("--quiet-seconds", type=float, default=5.0)
    args = parser.parse_args()
    n, p = args.entries, args.probes
    print(f"bench_store: {n:,} hashes, {args.workers} workers, {os.cpu_count()} CPUs")

    raw = os.urandom(16 * n)
    start = time.perf_counter()
    hs = HashSet(raw)
    print(
        f"HashSet build (GIL released): {time.perf_counter() - start:.2f} s; "
        f"table {hs.nbytes / n:.1f} bytes/hash; probes longest/mean {hs.probe_stats()}"
    )
    hits = raw[: 16 * (p // 2)]
    probes = hits + os.urandom(16 * (p - p // 2))
    start = time.perf_counter()
    hs.missing_packed(probes)
    c_ns = (time.perf_counter() - start) / p * 1e9
    keys = [probes[i : i + 16] for i in range(0, min(len(probes), 16 * 200_000), 16)]
    start = time.perf_counter()
    for k in keys:
        k in hs  # noqa: B015
    py_ns = (time.perf_counter() - start) / len(keys) * 1e9
    print(
        f"membership: {c_ns:.0f} ns per lookup in C (half hits), "
        f"{py_ns:.0f} ns per Python `in` call"
    )
    del hs, keys, probes, hits

    tmp = tempfile.mkdtemp(prefix="qrv-bench-")
    proc, port = start_redis(tmp)
    url = f"redis://127.0.0.1:{port}/0"
    snap = os.path.join(tmp, "machine.snap")
    client = redis.Redis(port=port, socket_timeout=600)
    workers: list[Worker] = []
    try:
        from keys.issuer import new_issuer

        issuer = new_issuer(Path(tmp) / "issuer")
        trust = TrustRegistry.from_dict({"keys": [issuer.trust_entry()]})
        start = time.perf_counter()
        sync_state(client, trust=trust, revocations=Revocations(revoked=raw))
        print(f"sync of {n:,} hashes into an empty Redis: {time.perf_counter() - start:.1f} s")
        del raw

        first = Worker(url, snap)
        workers.append(first)
        hello = first.read()
        print(f"first worker: snapshot built from Redis and mapped in {hello['start_s']:.1f} s")
        for _ in range(args.workers - 1):
            workers.append(Worker(url, snap))
        starts = [w.read() for w in workers[1:]]
        if starts:
            print(
                f"other workers: mapped the machine's file in "
                f"{max(s['start_s'] for s in starts):.2f} s (slowest)"
            )
        size = os.path.getsize(snap)
        anon = [w.ask("status")["anon"] for w in workers]
        machine = size + sum(max(0, a) for a in anon)
        print(
            f"memory per machine: snapshot file {size / n:.1f} bytes/hash (shared) + "
            f"private growth {', '.join(f'{a / 2**20:.0f}' for a in anon)} MiB per worker "
            f"= {machine / n:.1f} bytes/hash for {len(workers)} workers"
        )

        delays = []
        for _ in range(5):
            key = os.urandom(16)
            for w in workers:
                w.send(f"wait {key.hex()}")
            sync_state(client, revocations=Revocations(revoked=key))
            ended = time.time()
            seen = [w.read()["seen"] for w in workers]
            delays.append(max(seen) - ended)
        print(
            f"one revocation, end of sync -> enforced on every worker: median "
            f"{statistics.median(delays) * 1e3:.0f} ms, max {max(delays) * 1e3:.0f} ms"
        )

        for w in workers:
            w.send(f"quiet {args.quiet_seconds}")
        quiet = [w.read() for w in workers]
        version = workers[0].ask("status")["version"]
        fresh = os.urandom(16 * n)
        start = time.perf_counter()
        sync_state(
            client,
            revocations=Revocations(revoked=fresh),
            replace=True,
            guard=Guard(allow_drop=True),
        )
        synced = time.perf_counter()
        del fresh
        for w in workers:
            w.send(f"reload {version}")
        loaded = [w.read() for w in workers]
        live = time.perf_counter()
        print(
            f"full reload of {n:,} fresh hashes: sync {synced - start:.1f} s, then live on "
            f"every worker after {live - synced:.1f} s"
        )
        for q, r in zip(quiet, loaded, strict=True):
            print(
                f"  {r['role']:7s} p99 quiet {q['p99_ms']:.2f} ms (max {q['max_ms']:.1f}) "
                f"-> during reload {r['p99_ms']:.2f} ms (max {r['max_ms']:.1f}); "
                f"ratio {r['p99_ms'] / max(q['p99_ms'], 1e-6):.2f}"
            )
        anon = [w.ask("status")["anon"] for w in workers]
        print(
            f"private memory after the reload: "
            f"{', '.join(f'{a / 2**20:.0f}' for a in anon)} MiB per worker"
        )
    finally:
        for w in workers:
            w.close()
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
