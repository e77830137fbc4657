"""`python -m bench`: the venue-entry load benchmarks (Moscow token mix, locust).

    python -m bench --smoke                 every scenario for a few seconds (CI); exit 1 on
                                            any failed request or wrong verdict
    python -m bench                         the full run (under 15 minutes on 2 cores):
                                            writes bench/results/
    python -m bench --scenarios capacity --targets embedded1,echo1 --duration 5

Targets, each started here on a free 127.0.0.1 port and stopped afterwards:
    echo1, echo2          the baseline: a minimal Starlette echo app (bench:echo_app) under
                          uvicorn with the same settings as `qrverify serve`, 1 or 2 workers
    embedded1, embedded2  `qrverify serve --trust --revocations --records` (embedded store)
    redis1, redis2        `qrverify serve --redis` with its own redis-server, loaded by
                          `qrverify sync --replace` (with `--records` where `sync` takes it;
                          otherwise these targets scan the mix without register links)
The token mix is Moscow's (bench.tokens.MOSCOW_MIX): register links and EU certificates,
valid, expired, revoked, unknown and malformed; the register records are generated here at
run time (keys.link_records). Every verdict is checked; the report shows both kinds.
For every target one load-generator process (`python -m bench.locustfile`, locust as a
library) runs every scenario's steps in sequence. The in-process verify rate is measured
here first, on the same token mix. Every process started is killed on exit, error or
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench._procs import (
    PY,
    ROOT,
    BenchError,
    Procs,
    child_env,
    free_port,
    http_request,
    start_redis,
    wait_ready,
)
from bench.scenarios import Scenario, by_name
from bench.tokens import (
    MOSCOW_MIX,
    Pools,
    build_workdir,
    group_shares,
    inprocess_rate,
    kind_group,
    only_group,
    parse_mix,
    without_links,
)

FULL_TARGETS = ("echo1", "echo2", "embedded1", "embedded2", "redis1", "redis2")
SMOKE_TARGETS = ("echo1", "embedded1", "redis2")
SYNC_TIMEOUT = 60.0
PROBE_SECONDS = 10.0  # how long the revocation probe polls at most
PROBE_INTERVAL = 0.01
REVOKE_LIMIT = 1.0  # a revoked token must be refused this long after the push


@dataclass
class Settings:
    smoke: bool
    duration: float
    warmup: float
    targets: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    mix: dict[str, float]
    valid_tokens: int
    out: Path
    push_at: float


# -- targets ---------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    kind: str  # echo | embedded | redis
    workers: int
    port: int = 0
    redis_url: str | None = None
    links: bool = True  # serves the register records (scans the link kinds of the mix)

    @property
    def store(self) -> str:
        return {"echo": "echo baseline", "embedded": "embedded", "redis": "Redis"}[self.kind]


def parse_target(name: str) -> Target:
    for kind in ("echo", "embedded", "redis"):
        if name.startswith(kind) and name[len(kind) :] in ("1", "2"):
            return Target(name, kind, int(name[len(kind) :]))
    raise ValueError(f"unknown target {name!r}; known: {', '.join(FULL_TARGETS)}")


def run_sync(work: Path, url: str, *args: str) -> float:
    """`qrverify sync --redis URL ARGS`; returns its wall time; raises on failure."""
    start = time.time()
    with open(work / "sync.log", "ab") as fh:
        done = subprocess.run(
            [PY, "-m", "verifier", "sync", "--redis", url, "--no-progress", *args],
            cwd=work,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=fh,
            timeout=SYNC_TIMEOUT,
            check=False,
        )
    if done.returncode != 0:
        raise BenchError(f"qrverify sync exited {done.returncode}; see {work}/sync.log")
    return time.time() - start


def sync_takes_records() -> bool:
    """Whether this qrverify's `sync` loads register records into Redis (`--records`)."""
    done = subprocess.run(
        [PY, "-m", "verifier", "sync", "--help"],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT,
        check=False,
    )
    return done.returncode == 0 and "--records" in done.stdout


def start_target(procs: Procs, target: Target, work: Path) -> list[subprocess.Popen[Any]]:
    """Start a target (and its redis-server); returns the processes to stop afterwards."""
    started: list[subprocess.Popen[Any]] = []
    target.port = free_port()
    log = work / f"{target.name}.log"
    common = ["--host", "127.0.0.1", "--port", str(target.port), "--workers", str(target.workers)]
    if target.kind == "echo":
        argv = [
            PY,
            "-m",
            "uvicorn",
            "bench:echo_app",
            "--factory",
            *common,
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--lifespan",
            "on",
            "--no-access-log",
            "--no-server-header",
            "--no-proxy-headers",
            "--log-level",
            "warning",
        ]
    else:
        argv = [PY, "-m", "verifier", "serve", *common, "--graceful-timeout", "1"]
        if target.kind == "embedded":
            argv += [
                "--trust",
                str(work / "trust.json"),
                "--revocations",
                str(work / "revocations.json"),
                "--records",
                str(work / "records.jsonl"),
            ]
        else:
            rproc, url = start_redis(procs, work)
            started.append(rproc)
            target.redis_url = url
            target.links = sync_takes_records()
            records = ["--records", str(work / "records.jsonl")] if target.links else []
            run_sync(
                work,
                url,
                "--trust",
                str(work / "trust.json"),
                "--revocations",
                str(work / "revocations.json"),
                *records,
                "--replace",
            )
            argv += ["--redis", url]
    proc = procs.start(argv, log)
    started.append(proc)
    wait_ready(proc, target.port, target.name, log)
    return started


# -- sync push and revocation probe ----------------------------------------------------


def probe_revocation(
    port: int, token: str, push: dict[str, float], stop: threading.Event
) -> dict[str, Any]:
    """Poll /v1/verify for `token` (a new connection each time) from the push start on."""
    body = json.dumps({"token": token}).encode()
    polls: list[tuple[float, str]] = []
    errors = 0
    deadline = time.time() + PROBE_SECONDS
    while time.time() < deadline:
        try:
            status, data = http_request(port, "POST", "/v1/verify", body, timeout=2.0)
            verdict = json.loads(data) if status == 200 else {}
            answer = (
                "revoked"
                if verdict.get("reason") == "revoked"
                else "valid"
                if verdict.get("status") == "valid"
                else f"other:{status}"
            )
        except (OSError, ValueError):
            errors += 1
            answer = "error"
        polls.append((time.time(), answer))
        end = push.get("end")
        if end is not None and time.time() > end + REVOKE_LIMIT + 0.5 and stop.is_set():
            break
        time.sleep(PROBE_INTERVAL)
    return {"polls": polls, "errors": errors}


def push_revocations(target: Target, work: Path, pools: Pools, push_file: Path) -> dict[str, Any]:
    """Write the push file, run `qrverify sync` (additions), probe until enforced."""
    url = target.redis_url
    if url is None:
        raise BenchError("sync push needs a Redis target")
    token = pools.pools["revoke_later"][0][0]
    push: dict[str, float] = {}
    stop = threading.Event()
    result: dict[str, Any] = {}
    probe = threading.Thread(
        target=lambda: result.update(probe_revocation(target.port, token, push, stop)), daemon=True
    )
    push["start"] = time.time()
    push_file.write_text(json.dumps(push))
    probe.start()
    try:
        run_sync(work, url, "--revocations", str(work / "push_revocations.json"))
    finally:
        push["end"] = time.time()
        tmp = push_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(push))
        os.replace(tmp, push_file)
        stop.set()
        probe.join(PROBE_SECONDS + 5)
    return summarize_probe(push, result.get("polls", []), result.get("errors", 0))


def summarize_probe(
    push: dict[str, float], polls: list[tuple[float, str]], errors: int
) -> dict[str, Any]:
    """Delay from the push to the point after which every poll answered `revoked`."""
    start, end = push["start"], push["end"]
    enforced_at = None
    for when, answer in polls:
        if answer == "revoked":
            if enforced_at is None:
                enforced_at = when
        else:
            enforced_at = None
    late = sum(1 for when, answer in polls if answer == "valid" and when > end + REVOKE_LIMIT)
    delay_end = None if enforced_at is None else max(0.0, enforced_at - end)
    ok = (
        enforced_at is not None
        and late == 0
        and errors == 0
        and delay_end is not None
        and delay_end <= REVOKE_LIMIT
    )
    return {
        "sync_seconds": round(end - start, 3),
        "delay_after_sync_s": None if delay_end is None else round(delay_end, 3),
        "delay_after_sync_start_s": None if enforced_at is None else round(enforced_at - start, 3),
        "polls": len(polls),
        "late_valid_polls": late,
        "poll_errors": errors,
        "ok": ok,
    }


# -- load generation ---------------------------------------------------------------------


def plan_for(
    settings: Settings, target: Target, work: Path
) -> tuple[dict[str, Any], list[Scenario]]:
    steps: list[dict[str, Any]] = []
    scen_of_step: list[Scenario] = []
    for scen in settings.scenarios:
        if scen.redis_only and target.kind == "embedded":
            continue
        users = scen.smoke_users if settings.smoke else scen.users
        duration = settings.duration * (2.0 if scen.sync_push else 1.0)
        mix = dict(scen.mix)
        if settings.mix is not MOSCOW_MIX:
            mix = {
                **settings.mix,
                **(
                    {"revoke_later": scen.mix["revoke_later"]} if "revoke_later" in scen.mix else {}
                ),
            }
        if not target.links:
            mix = without_links(mix)
        for n in users:
            steps.append(
                {
                    "name": scen.name,
                    "users": n,
                    "pacing": scen.pacing,
                    "mix": mix,
                    "duration": duration,
                    "warmup": settings.warmup,
                    "target": "echo" if target.kind == "echo" else "service",
                    "push_file": str(work / f"push-{target.name}.json")
                    if scen.sync_push and target.kind == "redis"
                    else None,
                }
            )
            scen_of_step.append(scen)
    plan = {
        "host": f"http://127.0.0.1:{target.port}",
        "pools": str(work / "pools.json"),
        "steps": steps,
    }
    return plan, scen_of_step


def run_load(
    procs: Procs,
    settings: Settings,
    target: Target,
    work: Path,
    pools: Pools,
    on_progress: Callable[[dict[str, Any]], None],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    plan, scen_of_step = plan_for(settings, target, work)
    if not plan["steps"]:
        return [], []
    plan_path = work / f"plan-{target.name}.json"
    result_path = work / f"result-{target.name}.json"
    plan_path.write_text(json.dumps(plan))
    budget = sum(s["duration"] + s["warmup"] + 5.0 for s in plan["steps"]) + 30.0
    proc = procs.start(
        [PY, "-m", "bench.locustfile", str(plan_path), str(result_path)],
        work / f"loadgen-{target.name}.log",
        stdout=subprocess.PIPE,
    )
    watchdog = threading.Timer(budget, lambda: procs.stop(proc, timeout=2.0))
    watchdog.daemon = True
    watchdog.start()
    pushes: list[dict[str, Any]] = []
    push_threads: list[threading.Thread] = []
    try:
        if proc.stdout is None:
            raise BenchError("load generator has no stdout pipe")
        for raw in proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            event["target"] = target.name
            scen = scen_of_step[event["step"]]
            event["scenario"] = scen.name
            on_progress(event)
            if event["event"] == "start" and plan["steps"][event["step"]]["push_file"]:
                push_file = Path(plan["steps"][event["step"]]["push_file"])

                def do_push(
                    push_file: Path = push_file, users: int = plan["steps"][event["step"]]["users"]
                ) -> None:
                    time.sleep(settings.push_at)
                    try:
                        out = push_revocations(target, work, pools, push_file)
                    except (BenchError, subprocess.TimeoutExpired) as exc:
                        out = {"ok": False, "error": str(exc)}
                    pushes.append({"target": target.name, "users": users, **out})

                thread = threading.Thread(target=do_push, daemon=True)
                thread.start()
                push_threads.append(thread)
        proc.wait()
    finally:
        watchdog.cancel()
        procs.stop(proc)
        for thread in push_threads:
            thread.join(SYNC_TIMEOUT + PROBE_SECONDS)
    wanted = sum(1 for s in plan["steps"] if s["push_file"])
    if len(pushes) < wanted:
        pushes.append(
            {
                "target": target.name,
                "ok": False,
                "error": f"{wanted - len(pushes)} revocation push(es) did not run",
            }
        )
    if proc.returncode != 0 or not result_path.exists():
        raise BenchError(
            f"load generator for {target.name} failed ({proc.returncode}); "
            f"see {work}/loadgen-{target.name}.log"
        )
    results = json.loads(result_path.read_text())["results"]
    rows = []
    for res, scen in zip(results, scen_of_step, strict=True):
        rows.append(
            {
                "target": target.name,
                "store": target.store,
                "kind": target.kind,
                "workers": target.workers,
                "scenario": scen.name,
                "links": target.links,
                **res,
                **by_group(res),
            }
        )
    return rows, pushes


def by_group(res: dict[str, Any]) -> dict[str, Any]:
    """Checked verdicts per second and share of the step's requests, links and EU apart."""
    seconds = res.get("seconds") or 0.0
    sent = sum(res.get("kinds", {}).values())
    out: dict[str, Any] = {}
    for group in ("link", "eu"):
        checked = sum(n for k, n in res.get("checked", {}).items() if kind_group(k) == group)
        mine = sum(n for k, n in res.get("kinds", {}).items() if kind_group(k) == group)
        out[f"{group}_checked"] = checked
        out[f"{group}_rps"] = checked / seconds if seconds > 0 else 0.0
        out[f"{group}_share"] = mine / sent if sent else 0.0
    return out


# -- machine description -------------------------------------------------------------------


def machine_description() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in (
                "Model name",
                "CPU(s)",
                "Thread(s) per core",
                "Core(s) per socket",
                "Socket(s)",
            ):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        pass
    from importlib import metadata

    for dist in ("locust", "uvicorn", "starlette", "redis"):
        try:  # versions only: importing locust here would monkey-patch this process
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    info["shared"] = (
        f"the load generator (locust) runs on the same {os.cpu_count()} cores as the "
        "service: it, not the service, limits the closed-loop rates"
    )
    return info


# -- main ----------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar over all steps with the live request rate of the current one."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, unit="step", disable=quiet, file=sys.stderr, dynamic_ncols=True
        )
        self.last: dict[str, Any] = {}

    def __call__(self, event: dict[str, Any]) -> None:
        label = f"{event['target']} {event['scenario']}"
        if event["event"] == "progress":
            rate = event["requests"] / max(event["elapsed"], 1e-9)
            self.bar.set_description(label)
            self.bar.set_postfix(rps=f"{rate:.0f}", failed=event["failures"])
        elif event["event"] == "done":
            self.bar.update(1)

    def note(self, text: str) -> None:
        self.bar.set_description(text)

    def close(self) -> None:
        self.bar.close()


def parse_args(argv: list[str] | None) -> Settings:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--smoke",
        action="store_true",
        help="every scenario for a few seconds; exit 1 on any failure",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default bench/results, smoke: a temp dir)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds per step (default 8, smoke 2); sync steps take twice this",
    )
    p.add_argument(
        "--targets", default=None, help=f"comma-separated subset of {','.join(FULL_TARGETS)}"
    )
    p.add_argument("--scenarios", default=None, help="comma-separated scenario names")
    p.add_argument(
        "--mix",
        default=None,
        help="token mix (default Moscow's), e.g. link_valid=62,valid=15,rescan=8,"
        "link_expired=3,link_revoked=2,link_unknown=2,link_bad=2,expired=2,"
        "revoked=1,forged=1,garbage=2",
    )
    p.add_argument(
        "--valid-tokens",
        type=int,
        default=None,
        help="distinct valid tokens (default 40000, smoke 3000)",
    )
    args = p.parse_args(argv)
    duration = args.duration if args.duration is not None else (2.0 if args.smoke else 8.0)
    if not 0.5 <= duration <= 300:
        p.error("--duration must be 0.5..300 seconds")
    names = (
        args.targets.split(",")
        if args.targets
        else list(SMOKE_TARGETS if args.smoke else FULL_TARGETS)
    )
    try:
        targets = tuple(parse_target(n.strip()).name for n in names)
        scenarios = by_name(args.scenarios.split(",") if args.scenarios else None)
        mix = parse_mix(args.mix) if args.mix else MOSCOW_MIX
    except ValueError as exc:
        p.error(str(exc))
    valid = args.valid_tokens or (3000 if args.smoke else 40000)
    if not 100 <= valid <= 200_000:
        p.error("--valid-tokens must be 100..200000")
    out = args.out or (None if args.smoke else ROOT / "bench" / "results")
    return Settings(
        smoke=args.smoke,
        duration=duration,
        warmup=0.5 if args.smoke else 1.0,
        targets=targets,
        scenarios=scenarios,
        mix=mix,
        valid_tokens=valid,
        out=out if out is not None else Path(tempfile.mkdtemp(prefix="bench-")),
        push_at=1.0 if args.smoke else duration * 0.6,
    )


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    started = time.time()
    procs = Procs()
    work = Path(tempfile.mkdtemp(prefix="qrverify-load-"))

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    rows: list[dict[str, Any]] = []
    pushes: list[dict[str, Any]] = []
    try:
        print(
            f"qrverify load benchmark ({'smoke' if settings.smoke else 'full'}): targets "
            f"{', '.join(settings.targets)}; work dir {work}",
            file=sys.stderr,
        )
        pools = build_workdir(work, valid=settings.valid_tokens)
        seconds = 0.5 if settings.smoke else 3.0
        inproc = inprocess_rate(work, pools, settings.mix, seconds=seconds)
        for group in ("link", "eu"):  # each kind of code on its own part of the mix
            part = only_group(settings.mix, group)
            inproc[f"{group}_rate"] = (
                inprocess_rate(work, pools, part, seconds=seconds)["rate"] if part else None
            )
        print(
            f"in-process Verifier.verify: {inproc['rate']:.0f}/s on the same mix "
            f"(register links alone {inproc['link_rate'] or 0:.0f}/s, EU certificates "
            f"alone {inproc['eu_rate'] or 0:.0f}/s)",
            file=sys.stderr,
        )
        links_off: list[str] = []
        total = sum(
            len(plan_for(settings, parse_target(t), work)[0]["steps"]) for t in settings.targets
        )
        progress = _Progress(total, quiet=False)
        try:
            for name in settings.targets:
                target = parse_target(name)
                progress.note(f"starting {name}")
                mine = start_target(procs, target, work)
                try:
                    if not target.links:
                        links_off.append(name)
                    got, pushed = run_load(procs, settings, target, work, pools, progress)
                    rows += got
                    pushes += pushed
                finally:
                    for proc in reversed(mine):
                        procs.stop(proc)
        finally:
            progress.close()
        elapsed = time.time() - started
        meta = {
            "mode": "smoke" if settings.smoke else "full",
            "elapsed_s": round(elapsed, 1),
            "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
            "duration_per_step_s": settings.duration,
            "warmup_s": settings.warmup,
            "mix": settings.mix,
            "mix_shares": group_shares(settings.mix),
            "links_off": links_off,
            "valid_tokens": settings.valid_tokens,
            "inprocess": inproc,
            "machine": machine_description(),
            "scenarios": [
                {
                    "name": s.name,
                    "title": s.title,
                    "pacing_s": s.pacing,
                    "factor": s.factor,
                    "user_label": s.user_label(),
                }
                for s in settings.scenarios
            ],
        }
        summary = report.write(settings.out, rows, pushes, meta, charts=True)
        print(f"\nwrote {summary}", file=sys.stderr)
        failed = sum(r["failures"] for r in rows)
        wrong = sum(r["wrong_verdicts"] for r in rows)
        bad_push = [p for p in pushes if not p.get("ok")]
        if failed or bad_push or not rows:
            print(
                f"FAILED: {failed} failed requests ({wrong} wrong verdicts), "
                f"{len(bad_push)} revocation pushes not enforced in time",
                file=sys.stderr,
            )
            return 1
        print(
            f"OK: {sum(r['requests'] for r in rows)} requests, no failures, {elapsed:.0f} s",
            file=sys.stderr,
        )
        return 0
    except BenchError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m bench: interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, old)
        if os.environ.get("QRV_BENCH_KEEP_WORKDIR") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
