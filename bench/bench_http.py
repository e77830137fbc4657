"""HTTP benchmark: `qrverify serve` against a minimal Starlette JSON echo, same load generator.

    python bench/bench_http.py [--duration 8] [--connections 32] [--tokens 2000] [--cache]

Starts, on loopback free ports, (1) a Starlette app that only parses and echoes the JSON body
and (2) `qrverify serve` with one worker, both on uvicorn with uvloop + httptools and the same
settings, and loads both with wrk (Debian package `wrk`) posting the same bodies
{"token": "HC1:..."}, rotating over `--tokens` distinct tokens. The service runs with its
verified-token cache OFF unless `--cache`, so every request is a full verification.

Prints: echo and service request rates and their ratio; the in-process verify time measured
in this run; ideal = 1 / (1/echo_rate + verify_time) and service_rate / ideal (target >= 0.9);
then the batch endpoint's tokens/s (1000 tokens per request) against the in-process
verify_many rate (target >= 0.85 per worker). Each wrk run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
"""

UVICORN_SETTINGS = dict(loop="uvloop", http="httptools", access_log=False, server_header=False,
                        proxy_headers=False, lifespan="on")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def wrk(url: str, path: str, bodies: Path, lua: Path, duration: float, connections: int) -> float:
    env = dict(os.environ, QRV_BODIES=str(bodies), QRV_PATH=path)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", str(lua), url],
        capture_output=True, text=True, env=env, timeout=duration + 60, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw non-2xx responses:\n{out}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=2000, help="distinct tokens to rotate over")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; best kept")
    ap.add_argument("--cache", action="store_true", help="keep the verified-token cache on")
    ap.add_argument("--log-level", default="info", help="service log level (info = access log)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")

    from keys.demo import make_demo
    from keys.samples import sample_dcc
    from keys.token import issue_token
    from verifier import Verifier

    work = Path(tempfile.mkdtemp(prefix="qrverify-bench-http-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        demo = make_demo(work / "demo")
        now = int(time.time())
        tokens = [issue_token(demo.issuer,
                              sample_dcc(("vaccination", "test", "recovery")[i % 3], at=now,
                                         name=f"BENCH PERSON{i}"),
                              iat=now, exp=now + 86400) for i in range(args.tokens)]
        single = work / "single.txt"
        single.write_text("".join(json.dumps({"token": t}) + "\n" for t in tokens))
        batch = work / "batch.txt"
        batch.write_text("".join(json.dumps({"tokens": tokens[i:i + 1000]}) + "\n"
                                 for i in range(0, len(tokens) - 999, 1000)))
        lua = work / "post.lua"
        lua.write_text(LUA)

        # in-process verify time, same tokens, same cache setting
        cache = 20000 if args.cache else 0
        v = Verifier.from_files(trust=demo.trust_path, cache_size=cache)
        for t in tokens[:200]:
            v.verify(t)
        reps = max(1, 20000 // len(tokens))
        t0 = time.perf_counter()
        for _ in range(reps):
            for t in tokens:
                v.verify(t)
        verify_s = (time.perf_counter() - t0) / (reps * len(tokens))
        t0 = time.perf_counter()
        for _ in range(reps):
            for i in range(0, len(tokens) - 999, 1000):
                v.verify_many(tokens[i:i + 1000])
        many_rate = reps * (len(tokens) // 1000) * 1000 / (time.perf_counter() - t0)

        echo_port, svc_port = free_port(), free_port()
        (work / "echo_app.py").write_text(ECHO_APP)
        echo_cmd = [sys.executable, "-c",
                    "import sys, uvicorn; sys.path.insert(0, sys.argv[1]); "
                    "uvicorn.run('echo_app:app', host='127.0.0.1', port=int(sys.argv[2]), "
                    "log_level='warning', **" + repr(UVICORN_SETTINGS) + ")",
                    str(work), str(echo_port)]
        svc_cmd = [sys.executable, "-m", "verifier", "serve", "--host", "127.0.0.1",
                   "--port", str(svc_port), "--trust", str(demo.trust_path),
                   "--cache-size", str(cache), "--log-level", args.log_level]
        logs = open(work / "server.log", "wb")  # noqa: SIM115 - closed in finally
        for cmd, port in ((echo_cmd, echo_port), (svc_cmd, svc_port)):
            proc = subprocess.Popen(cmd, stdout=logs, stderr=logs)
            procs.append(proc)
            wait_up(port, proc)

        echo_url, svc_url = f"http://127.0.0.1:{echo_port}", f"http://127.0.0.1:{svc_port}"
        warm = min(2.0, args.duration)
        wrk(echo_url, "/echo", single, lua, warm, args.connections)
        wrk(svc_url, "/v1/verify", single, lua, warm, args.connections)
        echo_rates, svc_rates, batch_rates = [], [], []
        for _ in range(args.rounds):
            echo_rates.append(wrk(echo_url, "/echo", single, lua, args.duration,
                                  args.connections))
            svc_rates.append(wrk(svc_url, "/v1/verify", single, lua, args.duration,
                                 args.connections))
            batch_rates.append(wrk(svc_url, "/v1/verify/batch", batch, lua, args.duration, 2))
        echo_rate, svc_rate = max(echo_rates), max(svc_rates)
        batch_tokens = max(batch_rates) * 1000
        ideal = 1 / (1 / echo_rate + verify_s)

        print(f"machine: {os.cpu_count()} cpus; wrk -t1 -c{args.connections}, "
              f"{args.duration:g}s x {args.rounds} rounds (best), loopback; "
              f"{len(tokens)} distinct tokens; service cache {'on' if args.cache else 'off'}, "
              f"log level {args.log_level}, 1 worker")
        print(f"echo (Starlette, parse+dump JSON):  {echo_rate:10.0f} req/s   "
              f"(rounds: {', '.join(f'{r:.0f}' for r in echo_rates)})")
        print(f"POST /v1/verify:                   {svc_rate:10.0f} req/s   "
              f"(rounds: {', '.join(f'{r:.0f}' for r in svc_rates)})")
        print(f"service / echo:                    {svc_rate / echo_rate:10.3f}")
        print(f"in-process verify time:            {verify_s * 1e6:10.1f} us/token")
        print(f"ideal 1/(1/echo + verify):         {ideal:10.0f} req/s")
        print(f"single-token rate / ideal:         {svc_rate / ideal:10.3f}   (target >= 0.9)")
        print(f"in-process verify_many:            {many_rate:10.0f} tokens/s")
        print(f"POST /v1/verify/batch (1000/req):  {batch_tokens:10.0f} tokens/s "
              f"(wrk -c2; rounds: {', '.join(f'{r * 1000:.0f}' for r in batch_rates)})")
        print(f"batch / in-process (per worker):   {batch_tokens / many_rate:10.3f}   "
              "(target >= 0.85)")
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
