"""Structured logs: one JSON object per line.

Privacy rule: log records carry only what the service chooses to put in them (route,
status, duration, verdict status and reason, API-key name). Exception messages are NOT
logged, because a library's message can quote its input (a token); only the exception type
and the code locations of the traceback are.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
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


class AccessLog:
    """Fast access log: JSON lines buffered in memory, written at most every `interval`
    seconds (or when `max_buffer` bytes are pending) by the event loop, and on shutdown.

    Same line format as `JsonFormatter` (ts, level, logger, msg, fields). Each flush writes
    whole lines in one call. Costs a few microseconds per request where a `logging` call
    with a stream flush costs tens.
    """

    def __init__(self, stream: Any, *, interval: float = 0.2, max_buffer: int = 64 * 1024) -> None:
        self.stream = stream
        self.interval = interval
        self.max_buffer = max_buffer
        self._buf: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._sec = -1
        self._head = b""

    def _line(self, fields: dict[str, Any]) -> bytes:
        """One JSON line; the fixed head is built once a second, fields go through orjson."""
        now = time.time()
        sec = int(now)
        if sec != self._sec:
            self._sec = sec
            self._head = ('{"ts":"' + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))).encode()
        millis = b"%03dZ" % int((now - sec) * 1000)
        body = orjson.dumps(fields, default=str) if fields else b"{}"
        tail = body[1:] if len(body) > 2 else b"}"
        sep = b"," if len(body) > 2 else b""
        return b"".join((self._head, b".", millis, _ACCESS_HEAD, sep, tail, b"\n"))

    def write(self, fields: dict[str, Any]) -> None:
        line = self._line(fields)
        self._buf.append(line)
        self._size += len(line)
        if self._size >= self.max_buffer:
            self.flush()
        elif not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._buf:
            return
        data = b"".join(self._buf)
        self._buf.clear()
        self._size = 0
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: drop, never fail a request
            pass
