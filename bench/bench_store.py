"""Store benchmark: replica memory, membership cost, snapshot load, sync, propagation delay.

    python bench/bench_store.py [--entries 10000000] [--probes 1000000] [--no-pyset]

Starts its own redis-server (no persistence) on a free 127.0.0.1 port and stops it at the
end. Needs the built extension (python setup.py build_ext --inplace) and redis-server.
Prints one line per measurement; timings are single runs on whatever machine this is.
"""

from __future__ import annotations

import argparse
import gc
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
from verifier.redis.store import RedisStore  # noqa: E402
from verifier.redis.sync import sync_state  # noqa: E402
from verifier.revocations import Revocations  # noqa: E402


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def start_redis(tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench_store: redis-server not found (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", tmp, "--logfile",
                             os.path.join(tmp, "redis.log")])
    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            time.sleep(0.01)
    client.close()
    return proc, port


def ns_per(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--probes", type=int, default=1_000_000)
    parser.add_argument("--no-pyset", action="store_true", help="skip the Python set baseline")
    args = parser.parse_args()
    n, p = args.entries, args.probes
    print(f"store benchmark: {n:,} revoked hashes, {p:,} membership probes (50 % hits)")

    raw = os.urandom(16 * n)
    hits = [raw[i * 16:(i + 1) * 16] for i in range(0, n, max(1, n // (p // 2)))][: p // 2]
    probes = hits + [os.urandom(16) for _ in range(p - len(hits))]
    probe_packed = b"".join(probes)

    # -- replica memory and membership ------------------------------------------------
    packed_sorted = HashSet(raw).to_packed()
    gc.collect()
    before = rss()
    hs = HashSet(packed_sorted)
    after = rss()
    print(f"replica memory: {(after - before) / n:.1f} resident bytes/entry "
          f"(table {hs.nbytes / n:.1f} bytes/entry, load {len(hs) / hs.capacity:.2f})")
    print(f"HashSet membership, Python `in`: "
          f"{ns_per(lambda hs=hs: [k in hs for k in probes], p):.0f} ns")
    print(f"HashSet membership, C level (contains_ptr loop): "
          f"{ns_per(lambda hs=hs: hs.missing_packed(probe_packed), p):.0f} ns")
    is_rev = hs.contains_any
    print(f"revocation check (3 lookups, one call): "
          f"{ns_per(lambda: [is_rev(k, k, k) for k in probes], p):.0f} ns")
    del hs
    if not args.no_pyset:
        gc.collect()
        before = rss()
        pyset = {raw[i:i + 16] for i in range(0, len(raw), 16)}
        after = rss()
        print(f"Python set of bytes: {(after - before) / n:.1f} resident bytes/entry, "
              f"membership {ns_per(lambda: [k in pyset for k in probes], p):.0f} ns")
        del pyset
        gc.collect()

    # -- Redis: sync, load, propagation -----------------------------------------------
    tmp = tempfile.mkdtemp(prefix="qrv-bench-")
    proc, port = start_redis(tmp)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis(port=port, socket_timeout=120)
    try:
        from keys.issuer import new_issuer

        issuer = new_issuer(Path(tmp) / "issuer")
        trust = TrustRegistry.from_dict({"keys": [issuer.trust_entry()]})
        start = time.perf_counter()
        sync_state(client, trust=trust, revocations=Revocations(revoked=raw))
        print(f"sync writing {n:,} hashes to an empty Redis: {time.perf_counter() - start:.2f} s")
        used = client.info("memory")["used_memory"] - 1_000_000
        print(f"Redis memory: {used / n:.1f} bytes/entry")
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            store = RedisStore.connect(url, follow=False)
            loads.append(time.perf_counter() - start)
            store.close()
            del store
            gc.collect()
        print(f"snapshot load from Redis into the replica: {min(loads):.2f} s "
              f"(best of 3; runs {', '.join(f'{t:.2f}' for t in loads)})")

        store = RedisStore.connect(url, poll_interval=0.25)
        delays, flips = [], []
        for _ in range(5):
            key = os.urandom(16)
            start = time.perf_counter()
            sync_state(client, revocations=Revocations(revoked=key))
            synced = time.perf_counter()
            while not store.is_revoked(key, key, key):
                if time.perf_counter() - start > 10:
                    raise SystemExit("revocation not enforced within 10 s")
                time.sleep(0.0005)
            done = time.perf_counter()
            delays.append(done - start)
            flips.append(synced - start)
        store.close()
        print(f"one revocation, sync start -> enforced in a running store: median "
              f"{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms "
              f"(of which sync itself: median {statistics.median(flips) * 1000:.0f} ms)")
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
