"""Store benchmark: one mapped snapshot per machine, measured with real worker processes.

    python bench/bench_store.py [--entries 10000000] [--workers 4] [--records 10000000]

Starts its own redis-server (no persistence) on a free 127.0.0.1 port, a temporary work
directory holding the machine's snapshot file, and `--workers` verifier processes
(bench/_store_worker.py: a RedisStore over the snapshot file; the machine's builder
process is started by the store). The workers run with this interpreter, in the work
directory: the installed qrverify is what is measured, from any virtualenv. They stay in
this runner's session, as the workers of one `qrverify serve` stay in their supervisor's
(with `kernel.sched_autogroup_enabled` the kernel shares the CPU between sessions first);
redis-server and the builder's child process have sessions of their own.

Prints one line per measurement:

- HashSet: build time, table bytes per hash, membership cost (C loop and Python call);
- sync of N hashes into an empty Redis; first build and map, the others' map;
- per-machine memory: the snapshot file (page cache, shared) plus each worker's private
  (anonymous) memory growth, per hash;
- one revocation: from the end of `sync` to enforced on every worker (median, max);
- p99 latency of simulated requests (one every millisecond, each 20 lookups, latency from
  its scheduled time, so stalls count) in every worker, quiet and during a full reload of
  N fresh hashes (`sync --replace --allow-drop`), `--reloads` times (default 3), each
  after a quiet window: one line per reload with each process' ratio (and the CPU time
  the hypervisor stole in the quiet window and in the reload, from /proc/stat), then each
  process' p99 over all reloads against its p99 over all quiet windows (a p99 near
  0.1 ms from one window of ~2,500 requests moves by tens of percent between windows
  on a shared machine; pooling the windows is what makes the ratio repeatable);
- register records (`--records N`, 0 to skip): sync, full load live on every worker,
  bytes per record per machine, C-level lookup time, and one changed record from the end
  of `sync` to live on every worker (median, max).

Timings are single runs on whatever machine this is; say how busy it was when quoting.
`--trace` logs the store's steps with timestamps (work directory, kept) and prints each
worker's worst stalls during the reload.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `python -m bench.bench_store` as well as the script
    sys.path.insert(0, str(HERE))

try:  # the installed build; a developer's checkout without an install works too
    import verifier  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.append(str(HERE.parent))

import redis  # noqa: E402
from _procs import PY, Procs, start_redis  # noqa: E402

from fastpath._hashset import HashSet  # noqa: E402
from keys.registry import TrustRegistry  # noqa: E402
from verifier.redis.sync import Guard, sync_state  # noqa: E402
from verifier.revocations import Revocations  # noqa: E402


class Worker:
    """A _store_worker.py process: one command line in, one JSON line out."""

    def __init__(self, procs: Procs, url: str, path: str, log: Path) -> None:
        self.log = log
        self.proc = procs.start(
            [PY, str(HERE / "_store_worker.py"), url, path],
            log,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            own_session=False,  # one session for the machine's workers, as `serve` has
        )

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench_store: a worker exited; see {self.log}")
        return dict(json.loads(line))

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def ask(self, cmd: str) -> dict[str, Any]:
        self.send(cmd)
        return self.read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def ask_all(workers: list[Worker], cmd: str) -> list[dict[str, Any]]:
    for w in workers:
        w.send(cmd)
    return [w.read() for w in workers]


def delay_row(what: str, delays: list[float]) -> str:
    return (
        f"{what}, end of sync -> live on every worker: median "
        f"{statistics.median(delays) * 1e3:.0f} ms, max {max(delays) * 1e3:.0f} ms "
        f"({len(delays)} runs)"
    )


def steal_ms() -> float:
    """CPU time the hypervisor gave to others while this machine's CPUs wanted it, summed
    over the CPUs since boot (/proc/stat "steal"; 0 where the kernel does not say), in ms:
    the difference over a window tells whether a slow window was the host's."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def child_row(status: list[dict[str, Any]]) -> str:
    sizes = [w["child_anon"] for w in status if w.get("child_anon") is not None]
    return f"{sizes[0] / 2**20:.0f} MiB private (idle)" if sizes else "not running"


def bench_hashset(n: int, p: int, raw: bytes) -> None:
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


def snapshot_sections(path: str) -> dict[str, Any]:
    from verifier.redis.snapshot import read_header

    return dict(read_header(path)["sections"])


def sets_files(snap: str) -> dict[str, int]:
    """The hash-set files beside the snapshot (the revoked and registry tables): name ->
    inode."""
    return {p.name: p.stat().st_ino for p in Path(snap).parent.glob(Path(snap).name + ".sets-*")}


def record_files(snap: str) -> dict[str, int]:
    """The records files beside the snapshot: name -> inode."""
    return {p.name: p.stat().st_ino for p in Path(snap).parent.glob(Path(snap).name + ".rec-*")}


def bench_records(client: Any, workers: list[Worker], snap: str, n: int, changes: int) -> None:
    from bench_records import records

    from fastpath._records import RecordTable

    before = [w["anon"] for w in ask_all(workers, "status")]
    start = time.perf_counter()
    table = RecordTable.from_records(records(n))
    built = time.perf_counter() - start
    start = time.perf_counter()
    sync_state(client, records=table)
    synced = time.perf_counter()
    ask_all(workers, f"records {n}")
    live = time.perf_counter()
    print(
        f"records: {n:,} built in {built:.1f} s; sync into Redis {synced - start:.1f} s; "
        f"full load, end of sync -> live on every worker {live - synced:.1f} s"
    )
    size = snapshot_sections(snap)["records"]["length"]
    grown = [w["anon"] - b for w, b in zip(ask_all(workers, "status"), before, strict=True)]
    machine = size + sum(max(0, g) for g in grown)
    print(
        f"records memory per machine: {size / n:.1f} bytes/record in the shared file, "
        f"{machine / n:.1f} with the workers' private growth "
        f"({', '.join(f'{g / 2**20:.0f}' for g in grown)} MiB)"
    )
    look = workers[-1].ask("lookup 200000")
    print(
        f"records lookup (C level, mapped file, in a worker): present "
        f"{look['present_ns_warm']:.0f} ns, absent {look['absent_ns_warm']:.0f} ns "
        f"(first touch {look['present_ns_first']:.0f} / {look['absent_ns_first']:.0f} ns)"
        + ("" if look["ok"] else " LOOKUP CHECK FAILED")
    )
    base = list(records(2))[1]  # a valid record, revoked and made valid again
    ident = base[0]
    delays = []
    looked = False
    for i in range(changes):
        status = "revoked" if i % 2 == 0 else "valid"
        changed = (*base[:3], status == "revoked", *base[4:])
        files = record_files(snap)
        for w in workers:
            w.send(f"record {ident} {status}")
        start = time.perf_counter()
        sync_state(client, records=RecordTable.from_records([changed]))
        ended = time.time()
        took = time.perf_counter() - start
        seen = [w.read()["seen"] for w in workers]
        delays.append(max(seen) - ended)
        how = "records file kept" if record_files(snap) == files else "records file rewritten"
        layered = "overlay" in snapshot_sections(snap)
        print(
            f"  record change {i + 1}: sync {took:.1f} s, live after "
            f"{delays[-1] * 1e3:.0f} ms ({how}{', overlay' if layered else ''})"
        )
        if layered and not looked:
            looked = True
            look = workers[-1].ask("lookup 200000")
            print(
                f"  records lookup over the file and an overlay: present "
                f"{look['present_ns_warm']:.0f} ns, absent {look['absent_ns_warm']:.0f} ns"
                + ("" if look["ok"] else " LOOKUP CHECK FAILED")
            )
    if delays:
        print(delay_row("one changed record", delays))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--probes", type=int, default=1_000_000)
    parser.add_argument("--quiet-seconds", type=float, default=3.0)
    parser.add_argument(
        "--reloads", type=int, default=3, help="full reloads, each after a quiet window"
    )
    parser.add_argument("--revocations", type=int, default=5, help="one-revocation runs")
    parser.add_argument(
        "--records", type=int, default=10_000_000, help="register records (0: skip)"
    )
    parser.add_argument("--record-changes", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="timestamps of stalls and steps")
    args = parser.parse_args()
    n, p = args.entries, args.probes
    print(
        f"bench_store: {n:,} hashes, {args.records:,} records, {args.workers} workers, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    raw = os.urandom(16 * n)
    bench_hashset(n, p, raw)

    work = Path(tempfile.mkdtemp(prefix="qrv-bench-store-"))
    if args.trace:
        os.environ["QRVERIFY_BENCH_TRACE"] = "1"
    procs = Procs()
    workers: list[Worker] = []
    client: Any = None
    try:
        _, url = start_redis(procs, work)
        client = redis.Redis.from_url(url, socket_timeout=600)
        snap = str(work / "machine.snap")
        from keys.issuer import new_issuer

        issuer = new_issuer(work / "issuer")
        trust = TrustRegistry.from_dict({"keys": [issuer.trust_entry()]})
        start = time.perf_counter()
        sync_state(client, trust=trust, revocations=Revocations(revoked=raw))
        print(f"sync of {n:,} hashes into an empty Redis: {time.perf_counter() - start:.1f} s")
        del raw

        first = Worker(procs, url, snap, work / "worker-0.log")
        workers.append(first)
        hello = first.read()
        print(f"first worker: snapshot built from Redis and mapped in {hello['start_s']:.1f} s")
        for i in range(1, args.workers):
            workers.append(Worker(procs, url, snap, work / f"worker-{i}.log"))
        starts = [w.read() for w in workers[1:]]
        if starts:
            print(
                f"other workers: mapped the machine's file in "
                f"{max(s['start_s'] for s in starts):.2f} s (slowest)"
            )
        # the snapshot file plus the sets file beside it (the tables)
        size = os.path.getsize(snap) + sum(
            os.path.getsize(Path(snap).parent / name) for name in sets_files(snap)
        )
        status = ask_all(workers, "status")
        anon = [w["anon"] for w in status]
        machine = size + sum(max(0, a) for a in anon)
        print(
            f"memory per machine: snapshot file {size / n:.1f} bytes/hash (shared) + "
            f"private growth {', '.join(f'{a / 2**20:.0f}' for a in anon)} MiB per worker "
            f"= {machine / n:.1f} bytes/hash for {len(workers)} workers; "
            f"+ the builder's child process: {child_row(status)}"
        )

        delays = []
        kept = 0
        for _ in range(args.revocations):
            key = os.urandom(16)
            before = sets_files(snap)
            for w in workers:
                w.send(f"wait {key.hex()}")
            sync_state(client, revocations=Revocations(revoked=key))
            ended = time.time()
            seen = [w.read()["seen"] for w in workers]
            delays.append(max(seen) - ended)
            kept += sets_files(snap) == before
        if delays:
            print(
                delay_row("one revocation", delays)
                + f"; sets file kept (not rewritten) {kept}/{len(delays)}, "
                f"snapshot file {os.path.getsize(snap) / 1024:.0f} KiB"
            )

        pooled_quiet: list[list[float]] = [[] for _ in workers]
        pooled_reload: list[list[float]] = [[] for _ in workers]
        roles = [""] * len(workers)
        for round_no in range(1, args.reloads + 1):
            stolen = steal_ms()
            quiet = ask_all(workers, f"quiet {args.quiet_seconds}")
            stolen_quiet = steal_ms() - stolen
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
            synced_wall = time.time()
            del fresh
            stolen = steal_ms()
            loaded = ask_all(workers, f"reload {version}")
            live = time.perf_counter()
            stolen = steal_ms() - stolen
            ratios = [
                r["p99_ms"] / max(q["p99_ms"], 1e-6) for q, r in zip(quiet, loaded, strict=True)
            ]
            print(
                f"full reload {round_no} of {n:,} fresh hashes: sync {synced - start:.1f} s, "
                f"then live on every worker after {live - synced:.1f} s; p99 during/quiet "
                f"per process {', '.join(f'{x:.2f}' for x in ratios)}; CPU time stolen by "
                f"the host {stolen_quiet:.0f} ms in the quiet window, {stolen:.0f} ms in this one"
            )
            for i, (q, r) in enumerate(zip(quiet, loaded, strict=True)):
                pooled_quiet[i] += q["lat_us"]
                pooled_reload[i] += r["lat_us"]
                roles[i] = r["role"]
                if args.trace:
                    stalls = ", ".join(f"+{t - synced_wall:.2f}s {ms}ms" for t, ms in r["stalls"])
                    print(f"    {r['role']} worst stalls (from sync end): {stalls or 'none'}")
        if args.reloads:
            print(f"  p99 over the {args.reloads} reloads and the quiet windows before them:")
        for role, q_lat, r_lat in zip(roles, pooled_quiet, pooled_reload, strict=True):
            if not q_lat or not r_lat:
                continue
            q99, r99 = percentile(q_lat, 0.99), percentile(r_lat, 0.99)
            print(
                f"  p99 {role:7s} quiet {q99 / 1e3:.2f} ms (max {max(q_lat) / 1e3:.1f}) "
                f"-> during reload {r99 / 1e3:.2f} ms (max {max(r_lat) / 1e3:.1f}); "
                f"ratio {r99 / max(q99, 1e-3):.2f}"
            )
        status = ask_all(workers, "status")
        anon = [w["anon"] for w in status]
        print(
            f"private memory after the reload: "
            f"{', '.join(f'{a / 2**20:.0f}' for a in anon)} MiB per worker, "
            f"builder's child {child_row(status)}"
        )
        if args.records > 0:
            bench_records(client, workers, snap, args.records, args.record_changes)
    finally:
        for w in workers:
            w.close()
        if client is not None:
            client.close()
        procs.stop_all()
        if args.trace:
            for big in work.glob("machine.snap*"):  # the logs are kept, not the data
                big.unlink(missing_ok=True)
            print(f"trace: logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
