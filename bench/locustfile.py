"""Scanner-app users for locust: POST real codes to /v1/verify and check every verdict.

Two ways to run it:

    locust -f bench/locustfile.py --host http://127.0.0.1:8000      (interactive / headless)
        configured by the environment: QRV_BENCH_POOLS=<workdir>/pools.json (required),
        QRV_BENCH_MIX="link_valid=62,valid=15,..." (default: Moscow's mix),
        QRV_BENCH_PACING=<seconds between scans per user, 0 = none>,
        QRV_BENCH_TARGET=service|echo, QRV_BENCH_PUSH=<push file>

    python -m bench.locustfile PLAN.json RESULT.json                 (the runner uses this)
        runs the steps of PLAN (locust as a library, one process, steps in sequence),
        prints one JSON progress line a second on stdout, writes RESULT.

Each request knows its expected verdict (status and reason); a wrong verdict is marked
`response.failure(...)`, like an HTTP error. Latencies are also recorded here in
microseconds (locust rounds to whole milliseconds, too coarse on a loopback). Per token
kind a step counts the requests sent (`kinds`), the verdicts compared (`checked`) and the
wrong ones (`wrong_by_kind`).

`revoke_later` tokens (sync scenario) are expected valid before the push starts, may be
either during the push and the following grace second, and must be `revoked` after it.
The push file is JSON written by the runner: {"start": epoch} then {"start":..., "end":...}.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import locust  # gevent monkey-patches the standard library on import
import orjson
from locust import FastHttpUser, constant, constant_pacing, events, task

from bench.tokens import MOSCOW_MIX, Picker, Pools, expected_for, load_pools, parse_mix

MAX_SAMPLES = 2_000_000  # latency samples kept per step
MAX_MESSAGES = 20  # distinct failure messages kept per step


class _State:
    """The current step's configuration and counters (module-wide: gevent, one thread)."""

    pools: Pools | None = None
    picker: Picker | None = None
    target = "service"
    push_file: str | None = None
    push: dict[str, float] = {}
    push_checked = 0.0
    recording = False
    samples: list[float] = []
    requests = 0
    failures = 0
    wrong_verdicts = 0
    late_valid = 0  # revoked-by-push tokens answered valid after push end + grace
    messages: dict[str, int] = {}
    kinds: dict[str, int] = {}  # requests sent, by token kind
    checked: dict[str, int] = {}  # verdicts compared with the expected one, by kind
    wrong: dict[str, int] = {}  # wrong verdicts, by kind

    @classmethod
    def configure(
        cls, pools: Pools, mix: dict[str, float], target: str, push_file: str | None, start: int = 0
    ) -> None:
        cls.pools = pools
        cls.picker = Picker(pools, mix, start=start)
        cls.target = target
        cls.push_file = push_file
        cls.push = {}
        cls.push_checked = 0.0
        cls.reset()

    @classmethod
    def reset(cls) -> None:
        cls.samples = []
        cls.requests = cls.failures = cls.wrong_verdicts = cls.late_valid = 0
        cls.messages = {}
        cls.kinds = {}
        cls.checked = {}
        cls.wrong = {}

    @classmethod
    def push_state(cls) -> dict[str, float]:
        now = time.monotonic()
        if cls.push_file and now - cls.push_checked > 0.02 and "end" not in cls.push:
            cls.push_checked = now
            try:
                cls.push = json.loads(Path(cls.push_file).read_bytes())
            except (OSError, ValueError):
                pass
        return cls.push


def _env_config() -> None:
    """Configure from QRV_BENCH_* variables when loaded by the `locust` command."""
    pools = os.environ.get("QRV_BENCH_POOLS")
    if not pools or _State.pools is not None:
        return
    mix = (
        parse_mix(os.environ["QRV_BENCH_MIX"])
        if os.environ.get("QRV_BENCH_MIX")
        else dict(MOSCOW_MIX)
    )
    _State.configure(
        load_pools(pools),
        mix,
        os.environ.get("QRV_BENCH_TARGET", "service"),
        os.environ.get("QRV_BENCH_PUSH") or None,
    )
    Scanner.pacing = float(os.environ.get("QRV_BENCH_PACING", "0"))


def _fail(response: Any, message: str, wrong_verdict: bool = True, kind: str = "") -> None:
    if wrong_verdict:
        _State.wrong_verdicts += 1
        if _State.recording and kind:
            _State.wrong[kind] = _State.wrong.get(kind, 0) + 1
    _State.messages[message] = _State.messages.get(message, 0) + 1
    response.failure(message)


class Scanner(FastHttpUser):
    """A scanner app at a venue door or a stadium gate, on one keep-alive connection."""

    pacing = 0.0  # seconds from one scan's start to the next; 0 = back to back

    def wait_time(self) -> float:
        if self.pacing > 0:
            return constant_pacing(self.pacing)(self)  # type: ignore[no-any-return]
        return constant(0)(self)  # type: ignore[no-any-return]

    @task
    def scan(self) -> None:
        picker = _State.picker
        if picker is None:
            raise RuntimeError("bench.locustfile: no token pools configured (QRV_BENCH_POOLS)")
        token, status, reason, kind = picker.pick()
        body = orjson.dumps({"token": token})
        with self.client.post(
            "/v1/verify",
            data=body,
            name=f"/v1/verify [{_State.target}]",
            headers={"content-type": "application/json"},
            catch_response=True,
        ) as response:
            if _State.recording:
                _State.kinds[kind] = _State.kinds.get(kind, 0) + 1
            if response.status_code != 200:
                _fail(response, f"HTTP {response.status_code}", wrong_verdict=False)
                return
            if _State.target == "echo":
                if response.content != body:
                    _fail(response, "echo body differs", kind=kind)
                return
            try:
                verdict = orjson.loads(response.content)
                got = (verdict["status"], verdict["reason"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                _fail(response, "response is not a verdict", kind=kind)
                return
            allowed, late = expected_for(kind, status, reason, _State.push_state(), time.time())
            if _State.recording:
                _State.checked[kind] = _State.checked.get(kind, 0) + 1
            if got not in allowed:
                if late and got[0] == "valid":
                    _State.late_valid += 1
                _fail(
                    response,
                    f"{kind}: expected {status}/{reason}, got {got[0]}/{got[1]}",
                    kind=kind,
                )


@events.request.add_listener
def _on_request(response_time: float, exception: Any, **_: Any) -> None:
    if not _State.recording:
        return
    _State.requests += 1
    if exception is not None:
        _State.failures += 1
        if not isinstance(exception, locust.exception.CatchResponseError):
            msg = type(exception).__name__
            _State.messages[msg] = _State.messages.get(msg, 0) + 1
    if len(_State.samples) < MAX_SAMPLES:
        _State.samples.append(response_time)


_env_config()


# -- the library driver ---------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100); NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_step(host: str, step: dict[str, Any], pools: Pools, index: int) -> dict[str, Any]:
    """One step: `users` scanners for `warmup` + `duration` seconds; stats after warm-up."""
    from locust.env import Environment

    users = int(step["users"])
    duration = float(step["duration"])
    warmup = float(step.get("warmup", 1.0))
    if not (1 <= users <= 5000 and 0 < duration <= 600 and 0 <= warmup <= 60):
        raise ValueError(f"step out of bounds: {step}")
    _State.configure(
        pools, step["mix"], step.get("target", "service"), step.get("push_file"), start=index * 7919
    )
    Scanner.pacing = float(step.get("pacing", 0.0))
    env = Environment(user_classes=[Scanner], host=host, events=events)
    runner = env.create_local_runner()
    try:
        runner.start(users, spawn_rate=max(users, 1))
        gevent.sleep(warmup)
        _State.reset()
        _State.recording = True
        start = time.perf_counter()
        _emit({"event": "start", "step": index, "wall": time.time()})
        deadline = start + duration
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            gevent.sleep(min(1.0, left))
            _emit(
                {
                    "event": "progress",
                    "step": index,
                    "elapsed": round(time.perf_counter() - start, 2),
                    "requests": _State.requests,
                    "failures": _State.failures,
                }
            )
        _State.recording = False
        elapsed = time.perf_counter() - start
    finally:
        _State.recording = False
        runner.quit()
    samples = sorted(_State.samples)
    return {
        "name": step.get("name", f"step{index}"),
        "users": users,
        "pacing": Scanner.pacing,
        "seconds": round(elapsed, 3),
        "requests": _State.requests,
        "failures": _State.failures,
        "wrong_verdicts": _State.wrong_verdicts,
        "late_valid": _State.late_valid,
        "rps": _State.requests / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(samples, 50),
        "p95_ms": percentile(samples, 95),
        "p99_ms": percentile(samples, 99),
        "max_ms": samples[-1] if samples else math.nan,
        "kinds": dict(_State.kinds),
        "checked": dict(_State.checked),
        "wrong_by_kind": dict(_State.wrong),
        "messages": dict(sorted(_State.messages.items(), key=lambda kv: -kv[1])[:MAX_MESSAGES]),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.locustfile PLAN.json RESULT.json", file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_bytes())
    pools = load_pools(plan["pools"])
    results = []
    for i, step in enumerate(plan["steps"]):
        results.append(run_step(plan["host"], step, pools, i))
        _emit(
            {
                "event": "done",
                "step": i,
                "requests": results[-1]["requests"],
                "failures": results[-1]["failures"],
            }
        )
    out = Path(argv[1])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"results": results}, indent=1))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
