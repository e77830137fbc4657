"""Structured logs: one JSON object per line.

Privacy rule: log records carry only what the service chooses to put in them (route,
status, duration, verdict status and reason, API-key name). Exception messages are NOT
logged, because a library's message can quote its input (a token); only the exception type
and the code locations of the traceback are.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import traceback
import weakref
from typing import Any

import orjson

ACCESS_LOGGER = "qrverify.access"
APP_LOGGER = "qrverify"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ts, level, logger, msg, plus `record.fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            if tb is not None:
                entry["exc_where"] = [
                    f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}"
                    for f in traceback.extract_tb(tb)[-8:]
                ]
        return orjson.dumps(entry, default=str).decode("utf-8")


def _iso(created: float) -> str:
    secs = int(created)
    millis = int((created - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


def log_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping for uvicorn and the service: JSON to stderr.

    uvicorn's own access log is off (the service writes a richer one without personal data).
    """
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "verifier.http.jsonlog.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            APP_LOGGER: {"handlers": ["stderr"], "level": lvl, "propagate": False},
        },
    }


class LoggingAccessSink:
    """Access-log lines through the `logging` module (logger `qrverify.access`, level INFO).

    Flexible (any handler, pytest's caplog) but costs tens of microseconds per request; the
    service uses `AccessLog` instead.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    def write(self, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("request", extra={"fields": fields})

    def flush(self) -> None:
        pass


_ACCESS_HEAD = ('","level":"info","logger":"' + ACCESS_LOGGER + '","msg":"request"').encode()
_DROP_HEAD = (
    '","level":"warning","logger":"' + APP_LOGGER + '","msg":"access log writer fell '
    'behind: lines dropped"'
).encode()


class AccessLog:
    """Fast access log, off the request path: a request only appends `(time, fields)` to an
    in-memory queue; a background writer thread formats the JSON lines and writes them, every
    `interval` seconds, sooner when `max_lines` are pending, and on `flush()`/`close()` (the
    service's shutdown, SIGTERM included, and interpreter exit).

    Same line format as `JsonFormatter` (ts, level, logger, msg, fields); each drain writes
    whole lines in one call. Memory is bounded: when `cap` lines are pending (the stream
    blocks, e.g. a stalled pipe) further lines are DROPPED, not waited for; `dropped` counts
    them and one warning line says so (with the count so far) once the writer catches up.
    In normal operation no line is lost. Appends and drains use a deque (thread-safe in
    CPython); formatting and writing are serialised by a lock so lines keep their order.
    """

    def __init__(
        self, stream: Any, *, interval: float = 0.05, max_lines: int = 512, cap: int = 200_000
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.max_lines = max_lines
        self.cap = cap
        self.dropped = 0
        self._warned = 0
        self._queue: collections.deque[tuple[float, dict[str, Any]]] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._sec = -1
        self._head = b""
        _LOGS.add(self)

    def write(self, fields: dict[str, Any]) -> None:
        """Queue one line (called on the request path: no formatting, no system call)."""
        queue = self._queue
        if len(queue) >= self.cap:
            self.dropped += 1
            return
        queue.append((time.time(), fields))
        if self._thread is None:
            self._start()
        elif len(queue) == self.max_lines:
            self._wake.set()

    def _start(self) -> None:
        if self._closed:
            self.flush()
            return
        self._thread = threading.Thread(target=self._run, name="qrverify-access-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def _line(self, now: float, fields: dict[str, Any], head: bytes = _ACCESS_HEAD) -> bytes:
        """One JSON line; the fixed head is built once a second, fields go through orjson."""
        sec = int(now)
        if sec != self._sec:
            self._sec = sec
            self._head = ('{"ts":"' + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))).encode()
        body = orjson.dumps(fields, default=str)
        tail = b"," + body[1:] if len(body) > 2 else b"}"
        return b"%s.%03dZ%s%s\n" % (self._head, int((now - sec) * 1000), head, tail)

    def flush(self, timeout: float = -1) -> None:
        """Format and write every queued line now (in the caller's thread). `timeout`: how
        long to wait for a drain in progress (-1: as long as it takes)."""
        if not self._lock.acquire(timeout=timeout):
            return
        try:
            pop, line = self._queue.popleft, self._line
            parts = [line(*pop()) for _ in range(len(self._queue))]
            if self.dropped != self._warned:
                self._warned = self.dropped
                parts.append(self._line(time.time(), {"dropped": self.dropped}, _DROP_HEAD))
            if not parts:
                return
            try:
                self.stream.write(b"".join(parts))
                self.stream.flush()
            except (OSError, ValueError):  # closed pipe or stream: drop, never fail a request
                pass
        finally:
            self._lock.release()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the writer thread and write what is queued (idempotent)."""
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            self._wake.set()
            thread.join(timeout)
        self.flush(timeout)


_LOGS: weakref.WeakSet[AccessLog] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Normal interpreter exit: write every access log's queued lines."""
    for log in list(_LOGS):
        log.close(timeout=2.0)


def _after_fork() -> None:
    """A forked child has no writer thread; the first line it queues starts one."""
    for log in list(_LOGS):
        log._thread = None
        log._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
