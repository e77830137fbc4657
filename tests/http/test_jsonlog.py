"""The JSON log formats: the buffered access log and the logging formatter."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
from typing import Any

from verifier.http.jsonlog import AccessLog, JsonFormatter


def _wait_for_lines(out: io.BytesIO, n: int) -> list[dict[str, Any]]:
    """Poll (bounded, no timing asserted) until the writer thread has written `n` lines."""
    for _ in range(1000):
        if out.getvalue().count(b"\n") >= n:
            break
        time.sleep(0.01)
    return [json.loads(x) for x in out.getvalue().decode().splitlines()]


def test_access_log_is_written_by_the_background_writer() -> None:
    out = io.BytesIO()
    log = AccessLog(out, interval=0.05, max_lines=10_000)
    log.write({"route": "/v1/verify", "status": 200, "verdict_status": "valid"})
    log.write({"route": "/healthz", "status": 200})
    lines = _wait_for_lines(out, 2)  # written by the thread, every `interval`
    log.close()
    assert [x["route"] for x in lines] == ["/v1/verify", "/healthz"]
    assert lines[0]["logger"] == "qrverify.access" and lines[0]["msg"] == "request"
    assert lines[0]["ts"].endswith("Z") and lines[0]["verdict_status"] == "valid"


def test_access_log_queues_without_writing_until_flushed() -> None:
    out = io.BytesIO()
    log = AccessLog(out, interval=3600, max_lines=10_000)  # the writer sleeps: nothing written
    for i in range(50):
        log.write({"n": i})
    assert out.getvalue() == b""  # the request path only queues
    log.flush()
    assert [x["n"] for x in _wait_for_lines(out, 50)] == list(range(50))
    log.close()
    log.write({"n": 50})  # after close: written at once, never lost
    assert out.getvalue().count(b"\n") == 51


def test_access_log_writes_early_when_max_lines_are_pending() -> None:
    out = io.BytesIO()
    log = AccessLog(out, interval=3600, max_lines=5)
    for i in range(5):
        log.write({"n": i})
    assert [x["n"] for x in _wait_for_lines(out, 5)] == list(range(5))
    log.close()


def test_access_log_drops_past_the_cap_counts_and_says_so_once() -> None:
    out = io.BytesIO()
    log = AccessLog(out, interval=3600, max_lines=10_000, cap=10)
    for i in range(25):
        log.write({"n": i})
    assert log.dropped == 15
    log.flush()
    log.flush()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["n"] for x in lines[:10]] == list(range(10))
    assert len(lines) == 11  # one warning, not one per drop
    assert lines[10]["level"] == "warning" and lines[10]["logger"] == "qrverify"
    assert lines[10]["dropped"] == 15 and "dropped" in lines[10]["msg"]
    log.close()


def test_access_log_survives_a_closed_stream() -> None:
    out = io.BytesIO()
    log = AccessLog(out)
    out.close()
    log.write({"n": 1})
    log.close()  # dropped, no exception


def test_formatter_hides_exception_messages() -> None:
    try:
        raise ValueError("HC1:secret-token")
    except ValueError:
        record = logging.LogRecord(
            "qrverify", logging.ERROR, __file__, 1, "unhandled exception", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["exc_type"] == "ValueError" and entry["msg"] == "unhandled exception"
    assert "secret-token" not in line and entry["exc_where"][0].startswith("test_jsonlog.py:")


def test_access_log_lines_are_json_objects_with_the_fixed_fields_first() -> None:
    out = io.BytesIO()
    log = AccessLog(out)
    log.write({"route": "/v1/verify", "status": 200, "verdict_reason": None, "note": 'é"x'})
    log.write({})  # no fields: still one valid object
    log.close()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [list(x)[:4] for x in lines] == [["ts", "level", "logger", "msg"]] * 2
    assert lines[0]["status"] == 200 and lines[0]["verdict_reason"] is None
    assert lines[0]["note"] == 'é"x' and lines[1]["msg"] == "request"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[0]["ts"])
