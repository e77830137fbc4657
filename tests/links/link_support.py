"""Shared data of the register-link tests: a small register, generated here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

CK = "4d3c2b1a00112233445566778899aabb"
UNRZ = "9160000012345678"
UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
BASE = "https://www.gosuslugi.ru"
LINK = f"{BASE}/covid-cert/verify/{UNRZ}?lang=ru&ck={CK}"
# 2022-01-15 12:00 UTC: inside every "valid" record's window below
AT = int(dt.datetime(2022, 1, 15, 12, tzinfo=dt.UTC).timestamp())


def record(**over: Any) -> dict[str, Any]:
    rec = {
        "id": UNRZ,
        "ck": CK,
        "type": "vaccination",
        "status": "valid",
        "valid_from": "2021-07-01",
        "valid_until": "2022-07-01",
        "name": "И***** И*** И*******",
        "name_latin": "I***** I*** I*******",
        "dob": "1980-01-01",
        "document": "45** ***123",
    }
    rec.update(over)
    return rec


RECORDS = [
    record(),
    record(
        id=UUID,
        ck=None,
        type="test",
        name="П****** А***",
        name_latin="P****** A***",
        dob="1975-05-17",
        document="46** ***001",
    ),
    record(id="9160000000000002", ck="00" * 16, status="revoked"),
    record(id="9160000000000003", ck="11" * 16, valid_from="2022-02-01", valid_until="2022-03-01"),
    record(id="9160000000000004", ck="22" * 16, valid_from="2021-01-01", valid_until="2021-12-31"),
    record(id="9160000000000005", ck=None, type="recovery"),
    record(
        id="9160000000000006",
        ck="33" * 16,
        type="temporary",
        valid_from="2022-01-15T10:00:00+03:00",
        valid_until="2022-01-15T18:00:00+03:00",
    ),
]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path
