"""The JSON log formats: the buffered access log and the logging formatter."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys

from verifier.http.jsonlog import AccessLog, JsonFormatter


def test_access_log_buffers_and_flushes_whole_lines() -> None:
    out = io.BytesIO()
    log = AccessLog(out, interval=0.05, max_buffer=10_000)

    async def scenario() -> tuple[bytes, bytes]:
        log.write({"route": "/v1/verify", "status": 200, "verdict_status": "valid"})
        log.write({"route": "/healthz", "status": 200})
        before = out.getvalue()  # nothing written yet: buffered
        for _ in range(200):  # the event loop flushes after `interval`
            await asyncio.sleep(0.01)
            if out.getvalue():
                break
        return before, out.getvalue()

    before, after = asyncio.run(scenario())
    assert before == b""
    lines = [json.loads(x) for x in after.decode().splitlines()]
    assert [x["route"] for x in lines] == ["/v1/verify", "/healthz"]
    assert lines[0]["logger"] == "qrverify.access" and lines[0]["msg"] == "request"
    assert lines[0]["ts"].endswith("Z") and lines[0]["verdict_status"] == "valid"


def test_access_log_flushes_when_full_or_outside_a_loop() -> None:
    out = io.BytesIO()
    log = AccessLog(out, max_buffer=300)
    log.write({"n": 1})  # no running loop: written at once
    assert out.getvalue().count(b"\n") == 1
    log.flush()
    assert out.getvalue().count(b"\n") == 1


def test_access_log_survives_a_closed_stream() -> None:
    out = io.BytesIO()
    log = AccessLog(out)
    out.close()
    log.write({"n": 1})  # dropped, no exception


def test_formatter_hides_exception_messages() -> None:
    try:
        raise ValueError("HC1:secret-token")
    except ValueError:
        record = logging.LogRecord("qrverify", logging.ERROR, __file__, 1, "unhandled exception",
                                   (), sys.exc_info())
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["exc_type"] == "ValueError" and entry["msg"] == "unhandled exception"
    assert "secret-token" not in line and entry["exc_where"][0].startswith("test_jsonlog.py:")


def test_access_log_lines_are_json_objects_with_the_fixed_fields_first() -> None:
    out = io.BytesIO()
    log = AccessLog(out)
    log.write({"route": "/v1/verify", "status": 200, "verdict_reason": None, "note": "é\"x"})
    log.write({})  # no fields: still one valid object
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [list(x)[:4] for x in lines] == [["ts", "level", "logger", "msg"]] * 2
    assert lines[0]["status"] == 200 and lines[0]["verdict_reason"] is None
    assert lines[0]["note"] == 'é"x' and lines[1]["msg"] == "request"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[0]["ts"])
