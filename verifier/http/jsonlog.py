"""Structured logs: one JSON object per line.

Privacy rule: log records carry only what the service chooses to put in them (route,
status, duration, verdict status and reason, API-key name). Exception messages are NOT
logged, because a library's message can quote its input (a token); only the exception type
and the code locations of the traceback are.
"""

from __future__ import annotations

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
