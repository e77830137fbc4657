"""CPU scheduling hints: request threads first, the snapshot builder last (Linux).

Two settings, both best effort (a platform or kernel without them runs as before; no
failure is ever raised):

- `request_slice()`: the calling thread asks the kernel for a short time slice (EEVDF's
  custom slice, Linux 6.12 and later: `sched_setattr` with SCHED_OTHER and
  `sched_runtime`). A thread with a shorter slice than the running task preempts it as
  soon as it wakes and is eligible, instead of waiting out the running task's slice
  (about 1.4 ms by default), and this holds across scheduling groups (a group's entity
  carries the shortest slice of what it holds). Fairness does not change: the thread
  gets the same share of the CPU, in shorter turns. Threads started by this thread
  afterwards inherit it. A worker calls it once on the thread that answers requests.
- `background_group()`: this process leaves its parent's session (`setsid`) and gives
  its new autogroup a low weight (`/proc/self/autogroup`, nice GROUP_NICE). With
  `kernel.sched_autogroup_enabled`, the CPU is shared between sessions first: a process
  at nice 10 inside a worker's session only yields to its own session, not to the other
  workers. In a session of its own with a low group weight it yields to all of them.

Read back with `thread_slice()` and `autogroup_nice()`.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

__all__ = [
    "GROUP_NICE",
    "REQUEST_SLICE_NS",
    "autogroup_nice",
    "autogroups_enabled",
    "background_group",
    "request_slice",
    "set_group_nice",
    "thread_slice",
]

REQUEST_SLICE_NS = 200_000  # 0.2 ms (the kernel accepts 0.1 ms to 100 ms)
GROUP_NICE = 19  # the builder's session: the lowest group weight (15 against 1024)

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


def autogroup_nice(pid: int | str = "self") -> int | None:
    """The nice value of a process' autogroup (its session's scheduling group), or None
    when the kernel has no autogroups or the process is gone."""
    try:
        with open(f"/proc/{pid}/autogroup") as fh:
            text = fh.read()  # "/autogroup-123 nice 0"
        return int(text.split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def autogroups_enabled() -> bool:
    """Whether the kernel groups processes by session (`kernel.sched_autogroup_enabled`)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return False


def set_group_nice(nice: int = GROUP_NICE) -> bool:
    """Set the autogroup of this process' session to `nice`. True when it now has that
    nice value; False when there are no autogroups or the kernel refused (an unprivileged
    process may change an autogroup once a second, machine-wide: try again later), never
    an exception. Only a session's leader changes its group (a process that could not
    start a session of its own would otherwise lower the group of the session it is in)."""
    try:
        if os.getsid(0) != os.getpid():
            return False
    except OSError:
        return False
    if not autogroups_enabled():
        return False
    try:
        with open("/proc/self/autogroup", "w") as fh:
            fh.write(str(int(nice)))
    except (OSError, ValueError):
        return False
    return autogroup_nice() == nice


def background_group(nice: int = GROUP_NICE) -> bool:
    """Move this process into a session of its own (unless it leads one already), so into
    an autogroup of its own, and set that group to `nice` (`set_group_nice`). True when
    both happened, never an exception."""
    try:
        if os.getsid(0) != os.getpid():
            os.setsid()
    except OSError:
        return False  # a process group leader cannot start a session
    return set_group_nice(nice)
