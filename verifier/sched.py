"""CPU scheduling: a short time slice for the threads that answer requests (Linux).

`request_slice()`: the calling thread asks the kernel for a short time slice (EEVDF's
custom slice, Linux 6.12 and later: `sched_setattr` with SCHED_OTHER and
`sched_runtime`). A thread with a shorter slice than the running task may preempt it as
soon as it wakes, instead of waiting out the running task's slice (about 1.4 ms by
default; a scheduler tick in practice), also across scheduling groups (a group's entity
carries the shortest slice of what it holds). Fairness does not change: the thread gets
the same share of the CPU, in shorter turns. Threads it starts afterwards inherit it. A
worker calls it once on the thread that answers requests. Best effort: a platform or
kernel without it runs as before, and no failure is ever raised. Read back with
`thread_slice()`.
"""

from __future__ import annotations

import ctypes
import platform
import sys

__all__ = ["REQUEST_SLICE_NS", "request_slice", "thread_slice"]

REQUEST_SLICE_NS = 200_000  # 0.2 ms (the kernel accepts 0.1 ms to 100 ms)

# (sched_setattr, sched_getattr) system call numbers
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275), "arm64": (274, 275)}
_SCHED_OTHER = 0


class _SchedAttr(ctypes.Structure):
    """struct sched_attr (the first version, 48 bytes)."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def _libc() -> tuple[ctypes.CDLL, int, int] | None:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None or not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True), numbers[0], numbers[1]
    except OSError:
        return None


def _getattr() -> _SchedAttr | None:
    """The calling thread's scheduling attributes, or None."""
    found = _libc()
    if found is None:
        return None
    libc, _, get = found
    attr = _SchedAttr()
    try:
        if libc.syscall(get, 0, ctypes.byref(attr), ctypes.sizeof(attr), 0) != 0:
            return None
    except (AttributeError, OSError):
        return None
    return attr


def _setattr(attr: _SchedAttr) -> bool:
    found = _libc()
    if found is None:
        return False
    libc, put, _ = found
    attr.size = ctypes.sizeof(attr)
    try:
        return bool(libc.syscall(put, 0, ctypes.byref(attr), 0) == 0)
    except (AttributeError, OSError):
        return False


def thread_slice() -> int | None:
    """The calling thread's time slice in nanoseconds (SCHED_OTHER on Linux 6.12 and
    later), or None when the kernel does not say."""
    attr = _getattr()
    if attr is None or attr.sched_policy != _SCHED_OTHER or attr.sched_runtime == 0:
        return None
    return int(attr.sched_runtime)


def request_slice(ns: int = REQUEST_SLICE_NS, *, policy: int = _SCHED_OTHER) -> bool:
    """Ask for a time slice of `ns` nanoseconds for the calling thread, keeping its nice
    value. True when the kernel now reports exactly that slice; False otherwise (no such
    kernel, another policy, a value it refused or clamped), never an exception. `policy`
    is for tests only."""
    attr = _getattr()
    if attr is None or attr.sched_policy != _SCHED_OTHER:
        return False  # real-time, batch or idle threads are left as they are
    attr.sched_policy = policy
    attr.sched_flags = 0
    attr.sched_runtime = max(0, int(ns))
    attr.sched_deadline = attr.sched_period = 0
    if not _setattr(attr):
        return False
    return thread_slice() == ns
