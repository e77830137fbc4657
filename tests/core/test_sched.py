"""verifier/sched.py applies what it says on this kernel (read back through other means
than its own: /proc/self/task/<tid>/sched) and fails silently where the kernel refuses."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sched_support import proc_slice

from verifier import sched

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _in_thread(fn: Callable[[], Any]) -> Any:
    """fn() on a new thread (a slice stays with the thread that asked for it)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(30)
    return out[0]


def _proc_slice(tid: int) -> int | None:
    return proc_slice("self", tid)


def _custom_slices() -> bool:
    return sched.thread_slice() is not None  # Linux >= 6.12 reports the slice


@linux
def test_request_slice_sets_the_calling_threads_slice_and_keeps_its_nice():
    if not _custom_slices():
        pytest.skip("this kernel has no custom time slices (Linux 6.12+)")

    def ask() -> tuple[Any, ...]:
        tid = threading.get_native_id()
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        ok = sched.request_slice(300_000)
        inherited = _in_thread(lambda: _proc_slice(threading.get_native_id()))
        return (
            ok,
            sched.thread_slice(),
            _proc_slice(tid),
            nice,
            os.getpriority(os.PRIO_PROCESS, tid),
            inherited,
        )

    main_before = _proc_slice(threading.get_native_id())
    ok, reported, shown, nice_before, nice_after, inherited = _in_thread(ask)
    assert ok is True
    assert reported == 300_000 and shown == 300_000
    assert nice_after == nice_before
    assert inherited == 300_000  # a thread started afterwards has it too
    assert _proc_slice(threading.get_native_id()) == main_before  # only that thread


@linux
def test_request_slice_fails_silently():
    if not _custom_slices():
        # no such kernel: nothing happens, and it says so
        assert _in_thread(sched.request_slice) is False
        return

    def refused() -> tuple[Any, ...]:
        before = sched.thread_slice()
        clamped = sched.request_slice(50_000)  # below the kernel's 0.1 ms: clamped
        after_clamp = sched.thread_slice()
        sched.request_slice(400_000)
        bad_policy = sched.request_slice(200_000, policy=99)  # EINVAL from the kernel
        return before, clamped, after_clamp, bad_policy, sched.thread_slice()

    before, clamped, after_clamp, bad_policy, last = _in_thread(refused)
    assert before is not None
    assert clamped is False and after_clamp == 100_000
    assert bad_policy is False and last == 400_000  # unchanged by the refused call
