"""One verifier worker process for bench_store.py: maps the machine's snapshot through
RedisStore (one process of the machine becomes the builder) and answers one command per
stdin line with one JSON line on stdout:

    status                 store.status() plus this process' private memory growth and
                           the builder child's private memory (if this is the builder)
    wait HEX               returns once the hash is revoked here ({"seen": wall time})
    quiet SECONDS          requests for SECONDS: latency percentiles
    reload VERSION         requests until 0.5 s after the served version is not VERSION
    records N              returns once N register records are served
    record ID STATUS       returns once the record ID has STATUS ("valid" or "revoked")
    lookup N               C-level lookups of N present and N absent record keys (ns each)

A request is 20 revocation lookups, one every millisecond; its latency counts from its
scheduled time, so a stall of the process shows in every request it delays. With
QRVERIFY_BENCH_TRACE=1 the store logs with timestamps to stderr and `quiet`/`reload`
also return the worst stalls (wall time, ms).

Run by bench_store.py with the interpreter and environment of the benchmark, in a work
directory outside the checkout, so the installed qrverify is what runs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from typing import Any


def anon(pid: int | str = "self") -> int:
    """Private (anonymous) memory of a process, bytes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    trace = os.environ.get("QRVERIFY_BENCH_TRACE") == "1"
    if trace:
        logging.basicConfig(
            level=logging.INFO,
            format=f"%(created).3f {os.getpid()} %(name)s %(message)s",
            stream=sys.stderr,
        )
        logging.getLogger("qrverify.store").setLevel(logging.DEBUG)
    import keys.registry  # noqa: F401 - imported before the memory baseline
    from verifier.redis.store import RedisStore
    from verifier.sched import request_slice

    base = anon()
    t = time.perf_counter()
    store = RedisStore.connect(
        sys.argv[1], snapshot_path=sys.argv[2], poll_interval=0.05, start_timeout=900
    )
    hello: dict[str, Any] = {"start_s": time.perf_counter() - t, "anon": anon() - base}
    # as `serve` does on a worker's request thread (after the store's follower started)
    hello["slice"] = request_slice()
    hello["role"] = store.status()["role"]
    print(json.dumps(hello), flush=True)

    def load(seconds: float | None = None, until: str | None = None) -> dict[str, Any]:
        probe = [os.urandom(16) for _ in range(20)]
        lat: list[float] = []
        stalls: list[tuple[float, float]] = []
        start, i, seen_at = time.perf_counter(), 0, None
        wall0 = time.time() - start
        while True:
            due = start + i * 0.001
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            rep = store.replica
            for k in probe:
                rep.revoked.contains(k)
            late = time.perf_counter() - due
            lat.append(late)
            if trace and late > 0.005 and (not stalls or due - stalls[-1][0] > 0.05):
                stalls.append((due, late))
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
        out: dict[str, Any] = {
            "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
            "max_ms": lat[-1] * 1e3,
            "n": len(lat),
            "role": store.status()["role"],
            "lat_us": [round(x * 1e6, 1) for x in lat],  # sorted: the runner pools runs
        }
        if trace:
            worst = sorted(stalls, key=lambda s: -s[1])[:8]
            out["stalls"] = [(round(wall0 + d, 3), round(s * 1e3, 1)) for d, s in worst]
        return out

    def lookups(n: int) -> dict[str, Any]:
        from bench_records import BASE_ID

        table = store.replica.records
        count = len(table)
        rng = random.Random(3)
        present = b"".join(
            bytes(8) + (BASE_ID + rng.randrange(count) * 3).to_bytes(8, "big") for _ in range(n)
        )
        absent = b"".join(
            bytes(8) + (BASE_ID + rng.randrange(count) * 3 + 1).to_bytes(8, "big") for _ in range(n)
        )
        out: dict[str, Any] = {}
        for label in ("first", "warm"):
            t0 = time.perf_counter()
            hits = table.count_present(present)
            out[f"present_ns_{label}"] = (time.perf_counter() - t0) / n * 1e9
            t0 = time.perf_counter()
            misses = table.count_present(absent)
            out[f"absent_ns_{label}"] = (time.perf_counter() - t0) / n * 1e9
        out["ok"] = hits == n and misses == 0
        return out

    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        out: dict[str, Any]
        if cmd == "wait":
            key = bytes.fromhex(arg)
            while not store.is_revoked(key, key, key):
                time.sleep(0.0005)
            out = {"seen": time.time()}
        elif cmd == "quiet":
            out = load(seconds=float(arg))
        elif cmd == "reload":
            out = load(until=arg)
        elif cmd == "records":
            want = int(arg)
            while True:
                table = store.replica.records
                if table is not None and len(table) == want:
                    break
                time.sleep(0.0005)
            out = {"seen": time.time()}
        elif cmd == "record":
            ident, _, status = arg.partition(" ")
            while True:
                table = store.replica.records
                rec = None if table is None else table.get(ident)
                if rec is not None and rec["status"] == status:
                    break
                time.sleep(0.0005)
            out = {"seen": time.time()}
        elif cmd == "lookup":
            out = lookups(int(arg))
        elif cmd == "status":
            out = {k: v for k, v in store.status().items() if k != "refused"}
            out["anon"] = anon() - base
            child = store.builder_pid
            out["child_anon"] = None if child is None else anon(child)
        else:
            out = {"error": cmd}
        print(json.dumps(out), flush=True)
    store.close()


if __name__ == "__main__":
    main()
