"""A thread's CPU time slice as the kernel shows it (Linux /proc), for the scheduling
tests."""

from __future__ import annotations


def proc_slice(pid: int | str, tid: int) -> int | None:
    """The slice of thread `tid` of process `pid` ("self" for this one) from
    /proc/<pid>/task/<tid>/sched ("se.slice"), in nanoseconds; None when not shown."""
    try:
        with open(f"/proc/{pid}/task/{tid}/sched") as fh:
            for line in fh:
                if line.startswith("se.slice"):
                    return int(line.split(":")[1])
    except (OSError, ValueError):
        pass
    return None
