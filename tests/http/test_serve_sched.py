"""`serve --workers N`: each worker's request thread runs with the short time slice of
verifier/sched.py (read from /proc, on a real server)."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from sched_support import proc_slice

from verifier.sched import REQUEST_SLICE_NS, thread_slice

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]


def _main_thread_slice(pid: int) -> int | None:
    return proc_slice(pid, pid)


def _workers(pid: int) -> list[int]:
    """The uvicorn worker processes of a supervisor (spawned children, not the tracker)."""
    found = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return []
    for child in children:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            found.append(child)
    return found


def test_serve_workers_answer_requests_with_a_short_slice(serve: Any, demo: Any) -> None:
    if thread_slice() is None:
        pytest.skip("this kernel has no custom time slices (Linux 6.12+)")
    server = serve(["--trust", str(demo.trust_path), "--workers", "2"])
    deadline = time.monotonic() + 60
    while True:
        workers = _workers(server.proc.pid)
        slices = [_main_thread_slice(w) for w in workers]
        if len(workers) == 2 and slices == [REQUEST_SLICE_NS] * 2:
            break
        assert time.monotonic() < deadline, (workers, slices, server.logs()[-2000:])
        time.sleep(0.2)
