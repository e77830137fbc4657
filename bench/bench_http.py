"""HTTP benchmark: `qrverify serve` against a minimal Starlette JSON echo, same load generator.

    python bench/bench_http.py [--duration 8] [--connections 32] [--tokens 2000] [--cache]
                               [--links 2000] [--no-workers2] [--workers2-connections 16]

Starts, on loopback free ports (processes through bench/_procs.py), (1) a Starlette app that
only parses and echoes the JSON body and (2) `qrverify serve` with one worker, both on
uvicorn with uvloop + httptools and the same settings, and loads both with wrk (Debian
package `wrk`) posting the same bodies {"token": "HC1:..."}, rotating over `--tokens`
distinct tokens. The service runs with its verified-token cache OFF unless `--cache`, so
every request is a full verification.

Prints: echo and service request rates and their ratio; the in-process verify time measured
in this run; ideal = 1 / (1/echo_rate + verify_time) and service_rate / ideal; the servers'
CPU time per request (from /proc: echo + in-process verify against the service, which a busy
machine disturbs less than the rates); then the batch endpoint's tokens/s (1000 tokens per
request) against the in-process verify_many rate (target >= 0.85 per worker). Each wrk run
is bounded by --duration.

The service runs at the default log level (info: the access log is on, as in production), so
svc/ideal is measured with the access log (target >= 0.95). Two extra rows, on by default:

- register links: the same service also loads `--records FILE` (`--links` sample records,
  made by keys.link_records as `qrverify issue --link` makes them) and wrk posts
  {"token": "https://www.gosuslugi.ru/covid-cert/verify/..."} bodies rotating over all of
  them; printed as link req/s / echo req/s (a link costs a lookup, not a signature:
  target >= 0.9), with both servers' CPU time per request. `--links 0` skips it.
- two workers: a second `serve --workers 2` (same options; a listening socket per worker,
  SO_REUSEPORT) gets the batch load from wrk -t2 with `--workers2-connections` (16: the
  kernel spreads connections by a hash; 4 would all land on one worker 1 time in 8);
  printed as its tokens/s over the one-worker batch rate of the same round (target >= 1.8),
  with the CPU seconds each worker used (both must work). `--no-workers2` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._procs import PY, Procs, free_port, http_request, start_server, wait_ready

LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("QRV_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
local path = os.getenv("QRV_PATH")
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[i])
end
"""

ECHO_APP = r"""
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def echo(request):
    return Response(orjson.dumps(orjson.loads(await request.body())),
                    media_type="application/json")

async def ready(request):  # for bench._procs.wait_ready; after /echo, so it costs echo nothing
    return Response(b"{}", media_type="application/json")

app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/readyz", ready)])
"""

UVICORN_SETTINGS = dict(
    loop="uvloop",
    http="httptools",
    access_log=False,
    server_header=False,
    proxy_headers=False,
    lifespan="on",
)


def check_valid(port: int, token: str) -> None:
    """One request before the load: the service must answer `valid` for the bodies used."""
    status, body = http_request(
        port, "POST", "/v1/verify", json.dumps({"token": token}).encode(), timeout=30
    )
    verdict = json.loads(body) if status == 200 else {"reason": f"HTTP {status}"}
    if verdict.get("status") != "valid":
        raise SystemExit(
            f"the service does not find the benchmark bodies valid: {verdict.get('reason')}"
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pids(pid: int) -> list[int]:
    """The worker processes of a `serve --workers N` supervisor (its children that run
    Python's multiprocessing spawn), from /proc."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                out.append(int(child))
    return sorted(out)


LAST_COUNT = [0]


def wrk(
    url: str,
    path: str,
    bodies: Path,
    lua: Path,
    duration: float,
    connections: int,
    threads: int = 1,
) -> float:
    env = dict(os.environ, QRV_BODIES=str(bodies), QRV_PATH=path)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=duration + 60,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw non-2xx responses:\n{out}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    LAST_COUNT[0] = int(n.group(1))
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=2000, help="distinct tokens to rotate over")
    ap.add_argument(
        "--rounds", type=int, default=3, help="rounds (each: echo, in-process, service, batch)"
    )
    ap.add_argument("--cache", action="store_true", help="keep the verified-token cache on")
    ap.add_argument("--log-level", default="info", help="service log level (info = access log)")
    ap.add_argument(
        "--links",
        type=int,
        default=2000,
        help="register records to load and rotate over (0: no link row)",
    )
    ap.add_argument(
        "--no-workers2", action="store_true", help="skip the `serve --workers 2` batch row"
    )
    ap.add_argument(
        "--workers2-connections",
        type=int,
        default=16,
        help="wrk connections for the two-worker row (the kernel spreads connections over "
        "the workers by a hash: with 4, all land on one worker 1 time in 8; with 16, 1 in "
        "32,768)",
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")

    from keys.demo import make_demo
    from keys.samples import sample_dcc
    from keys.token import issue_token
    from verifier import Verifier

    work = Path(tempfile.mkdtemp(prefix="qrverify-bench-http-"))
    procs = Procs()
    try:
        demo = make_demo(work / "demo")
        now = int(time.time())
        tokens = [
            issue_token(
                demo.issuer,
                sample_dcc(
                    ("vaccination", "test", "recovery")[i % 3], at=now, name=f"BENCH PERSON{i}"
                ),
                iat=now,
                exp=now + 86400,
            )
            for i in range(args.tokens)
        ]
        single = work / "single.txt"
        single.write_text("".join(json.dumps({"token": t}) + "\n" for t in tokens))
        batch = work / "batch.txt"
        batch.write_text(
            "".join(
                json.dumps({"tokens": tokens[i : i + 1000]}) + "\n"
                for i in range(0, len(tokens) - 999, 1000)
            )
        )
        lua = work / "post.lua"
        lua.write_text(LUA)
        records = work / "records.jsonl"
        links_body = work / "links.txt"
        if args.links > 0:
            from keys.link_records import record_link, sample_record

            recs = [
                sample_record(("vaccination", "recovery", "test")[i % 3]) for i in range(args.links)
            ]
            records.write_bytes(
                b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in recs)
            )
            links_body.write_text(
                "".join(json.dumps({"token": record_link(r)}) + "\n" for r in recs)
            )

        # in-process verify time, same tokens, same cache setting; measured in every round
        # next to the HTTP runs, because the machine's load changes over a run
        cache = 20000 if args.cache else 0
        v = Verifier.from_files(trust=demo.trust_path, cache_size=cache)
        for t in tokens[:200]:
            v.verify(t)

        def verify_time() -> tuple[float, float]:
            """(wall, CPU) seconds per verification."""
            n = max(len(tokens), 10000)
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(n):
                v.verify(tokens[i % len(tokens)])
            return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n

        def verify_many_rate() -> float:
            chunks = [tokens[i : i + 1000] for i in range(0, len(tokens) - 999, 1000)]
            t0 = time.perf_counter()
            for chunk in chunks * max(1, 10 // len(chunks)):
                v.verify_many(chunk)
            return max(1, 10 // len(chunks)) * len(chunks) * 1000 / (time.perf_counter() - t0)

        echo_port = free_port()
        (work / "echo_app.py").write_text(ECHO_APP)
        echo_cmd = [
            PY,
            "-c",
            "import sys, uvicorn; sys.path.insert(0, sys.argv[1]); "
            "uvicorn.run('echo_app:app', host='127.0.0.1', port=int(sys.argv[2]), "
            "log_level='warning', **" + repr(UVICORN_SETTINGS) + ")",
            str(work),
            str(echo_port),
        ]
        svc_args = [
            "--trust",
            str(demo.trust_path),
            "--cache-size",
            str(cache),
            "--log-level",
            args.log_level,
        ]
        if args.links > 0:
            svc_args += ["--records", str(records)]
        # bench._procs: each in its own process group, in the work dir (so that `-m
        # verifier` imports the installed build), stopped by pid at the end
        log = work / "server.log"
        echo_proc = procs.start(echo_cmd, log)
        wait_ready(echo_proc, echo_port, "echo app", log)
        svc_proc, svc_port = start_server(procs, svc_args, log)
        svc2_port = 0
        if not args.no_workers2:
            svc2_proc, svc2_port = start_server(
                procs, [*svc_args, "--workers", "2"], log, what="qrverify serve --workers 2"
            )

        echo_url, svc_url = f"http://127.0.0.1:{echo_port}", f"http://127.0.0.1:{svc_port}"
        svc2_url = f"http://127.0.0.1:{svc2_port}"
        check_valid(svc_port, tokens[0])
        if args.links > 0:
            check_valid(svc_port, json.loads(links_body.read_text().split("\n", 1)[0])["token"])
        warm = min(2.0, args.duration)
        wrk(echo_url, "/echo", single, lua, warm, args.connections)
        wrk(svc_url, "/v1/verify", single, lua, warm, args.connections)
        wrk(svc_url, "/v1/verify/batch", batch, lua, warm, 2)
        if args.links > 0:
            wrk(svc_url, "/v1/verify", links_body, lua, warm, args.connections)
        if not args.no_workers2:
            wrk(svc2_url, "/v1/verify/batch", batch, lua, warm, args.workers2_connections, 2)
        link_rates: list[float] = []
        link_cpu: list[tuple[float, float]] = []
        batch2_rates: list[float] = []
        worker_cpu: list[list[float]] = []
        rows = []
        cpu_rows = []
        echo_pid, svc_pid = echo_proc.pid, svc_proc.pid
        for _ in range(args.rounds):
            c0 = cpu_seconds(echo_pid)
            echo_rate = wrk(echo_url, "/echo", single, lua, args.duration, args.connections)
            echo_cpu = (cpu_seconds(echo_pid) - c0) / LAST_COUNT[0]
            verify_s, verify_cpu = verify_time()
            c0 = cpu_seconds(svc_pid)
            svc_rate = wrk(svc_url, "/v1/verify", single, lua, args.duration, args.connections)
            svc_cpu = (cpu_seconds(svc_pid) - c0) / LAST_COUNT[0]
            cpu_rows.append((echo_cpu, verify_cpu, svc_cpu))
            many_rate = verify_many_rate()
            batch_tokens = 1000 * wrk(svc_url, "/v1/verify/batch", batch, lua, args.duration, 2)
            if args.links > 0:
                c0 = cpu_seconds(svc_pid)
                link_rates.append(
                    wrk(svc_url, "/v1/verify", links_body, lua, args.duration, args.connections)
                )
                link_cpu.append((echo_cpu, (cpu_seconds(svc_pid) - c0) / LAST_COUNT[0]))
            if not args.no_workers2:
                kids = worker_pids(svc2_proc.pid)
                before = {pid: cpu_seconds(pid) for pid in kids}
                batch2_rates.append(
                    1000
                    * wrk(
                        svc2_url,
                        "/v1/verify/batch",
                        batch,
                        lua,
                        args.duration,
                        args.workers2_connections,
                        threads=2,
                    )
                )
                worker_cpu.append([cpu_seconds(pid) - c for pid, c in before.items()])
            ideal = 1 / (1 / echo_rate + verify_s)
            rows.append((echo_rate, svc_rate, verify_s, ideal, many_rate, batch_tokens))

        print(
            f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; "
            f"wrk -t1 -c{args.connections} (batch -c2), {args.duration:g}s per run, loopback; "
            f"{len(tokens)} distinct tokens; service cache {'on' if args.cache else 'off'}, "
            f"log level {args.log_level}, 1 worker"
        )
        print(
            f"{'round':>5} {'echo req/s':>11} {'verify req/s':>13} {'svc/echo':>9} "
            f"{'verify us':>10} {'ideal req/s':>12} {'svc/ideal':>10} "
            f"{'in-proc tok/s':>14} {'batch tok/s':>12} {'batch/in-proc':>14}"
        )
        for i, (echo_rate, svc_rate, verify_s, ideal, many_rate, batch_tokens) in enumerate(rows):
            print(
                f"{i + 1:>5} {echo_rate:>11.0f} {svc_rate:>13.0f} {svc_rate / echo_rate:>9.3f} "
                f"{verify_s * 1e6:>10.1f} {ideal:>12.0f} {svc_rate / ideal:>10.3f} "
                f"{many_rate:>14.0f} {batch_tokens:>12.0f} {batch_tokens / many_rate:>14.3f}"
            )
        print("server CPU time per request (from /proc, independent of other load):")
        for i, (echo_cpu, verify_cpu, svc_cpu) in enumerate(cpu_rows):
            print(
                f"  round {i + 1}: echo {echo_cpu * 1e6:.1f} us + in-process verify "
                f"{verify_cpu * 1e6:.1f} us = {(echo_cpu + verify_cpu) * 1e6:.1f} us ideal; "
                f"service {svc_cpu * 1e6:.1f} us; ideal/service = "
                f"{(echo_cpu + verify_cpu) / svc_cpu:.3f}"
            )
        if link_rates:
            print("register links (`serve --records`, same server settings as the echo app):")
            for i, (rate, row, (e_cpu, l_cpu)) in enumerate(
                zip(link_rates, rows, link_cpu, strict=True)
            ):
                print(
                    f"  round {i + 1}: link {rate:.0f} req/s, echo {row[0]:.0f} req/s, "
                    f"link/echo = {rate / row[0]:.3f}; server CPU per request: link "
                    f"{l_cpu * 1e6:.1f} us, echo {e_cpu * 1e6:.1f} us, echo/link = "
                    f"{e_cpu / l_cpu:.3f}"
                )
        if batch2_rates:
            print(
                f"batch endpoint, `serve --workers 2` (wrk -t2 -c{args.workers2_connections}) "
                "vs 1 worker (wrk -t1 -c2):"
            )
            for i, (rate, row, cpus) in enumerate(zip(batch2_rates, rows, worker_cpu, strict=True)):
                print(
                    f"  round {i + 1}: 2 workers {rate:.0f} tok/s, 1 worker {row[5]:.0f} tok/s, "
                    f"ratio = {rate / row[5]:.3f}; CPU seconds per worker process: "
                    + ", ".join(f"{c:.2f}" for c in cpus)
                    + f" of {args.duration:g} s"
                )
        single_best = max(r[1] / r[3] for r in rows)
        batch_best = max(r[5] / r[4] for r in rows)
        log_on = "on" if args.log_level in ("debug", "info") else "off"
        print(
            f"single-token rate / ideal, access log {log_on} (best round): "
            f"{single_best:.3f}   (target >= 0.95)"
        )
        print(
            f"batch tokens/s / in-process verify_many rate, per worker (best round): "
            f"{batch_best:.3f}   (target >= 0.85)"
        )
        if link_rates:
            best = max(rate / row[0] for rate, row in zip(link_rates, rows, strict=True))
            print(f"register-link rate / echo rate (best round): {best:.3f}   (target >= 0.9)")
        if batch2_rates:
            best = max(rate / row[5] for rate, row in zip(batch2_rates, rows, strict=True))
            print(f"batch, 2 workers / 1 worker (best round): {best:.3f}   (target >= 1.8)")
        return 0
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
