"""Development register records and their links (CONTRACT sections 1b and 4).

`sample_record` makes a plausible current record (an unrz with its ck, the holder's name
masked as the register masks it: first letter of each word, then asterisks);
`append_record` adds it to a JSON Lines or CSV records file; `record_link` is its link.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import secrets
from typing import Any

import orjson

from keys.samples import icao_transliterate
from verifier.records import FIELDS  # the register export's columns, in the reader's order

__all__ = [
    "LINK_BASE",
    "append_record",
    "demo_links",
    "make_demo_records",
    "mask",
    "record_link",
    "sample_record",
]

LINK_BASE = "https://www.gosuslugi.ru/covid-cert/verify/"
DAYS = {"vaccination": 365, "recovery": 180, "test": 3, "temporary": 30}
DEFAULT_NAME = "Иванов Иван Иванович"
MOSCOW = dt.timezone(dt.timedelta(hours=3))


def mask(name: str) -> str:
    """'Иванов Иван Иванович' -> 'И***** И*** И*******'."""
    return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split() if w)


def sample_record(
    cert_type: str = "vaccination",
    *,
    name: str = DEFAULT_NAME,
    dob: str = "1980-01-01",
    today: dt.date | None = None,
    status: str = "valid",
) -> dict[str, Any]:
    """A record of the contract's fields, valid from ten days ago (test: from today)."""
    if cert_type not in DAYS:
        raise ValueError(f"type must be one of {', '.join(DAYS)}")
    words = name.split()
    if not words or len(name) > 80:
        raise ValueError("name must be 1..80 characters of words")
    day = today or dt.datetime.now(MOSCOW).date()
    start = day if cert_type == "test" else day - dt.timedelta(days=10)
    latin = " ".join(icao_transliterate(w)[:1] + "*" * (len(w) - 1) for w in words)
    unrz = "9" + "".join(secrets.choice("0123456789") for _ in range(15))
    document = f"{secrets.randbelow(90) + 10}** ***{secrets.randbelow(1000):03d}"
    return {
        "id": unrz,
        "ck": secrets.token_hex(16),
        "type": cert_type,
        "status": status,
        "valid_from": start.isoformat(),
        "valid_until": (start + dt.timedelta(days=DAYS[cert_type])).isoformat(),
        "name": mask(name),
        "name_latin": latin,
        "dob": dob,
        "document": document,
    }


def record_link(record: dict[str, Any]) -> str:
    link = f"{LINK_BASE}{record['id']}?lang=ru"
    return f"{link}&ck={record['ck']}" if record.get("ck") else link


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append to a records file: CSV when its name ends in .csv (a header is written
    to a new or empty file), else JSON Lines."""
    name = os.fspath(path)
    if name.lower().endswith(".csv"):
        new = not os.path.exists(name) or os.path.getsize(name) == 0
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if new:
            writer.writerow(FIELDS)
        writer.writerow([record.get(f) or "" for f in FIELDS])
        data = buf.getvalue().encode("utf-8")
    else:
        data = orjson.dumps(record) + b"\n"
    with open(name, "ab") as fh:
        fh.write(data)


DEMO_RECORDS = "records.jsonl"
DEMO_LINKS = "links.json"


def make_demo_records(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Write `records.jsonl` (a fresh sample register: valid vaccination, recovery and
    test records, one revoked and one expired) and `links.json` into the directory, and
    return the links by kind. Unknown: a well-formed link with no record."""
    base = os.fspath(directory)
    today = dt.datetime.now(MOSCOW).date()
    kinds = {
        "vaccination": sample_record("vaccination", today=today),
        "recovery": sample_record(
            "recovery", name="Петрова Анна Сергеевна", dob="1975-05-17", today=today
        ),
        "test": sample_record("test", name="Смирнов Олег", dob="1991-11-02", today=today),
        "revoked": sample_record("vaccination", status="revoked", today=today),
        "expired": sample_record("test", today=today - dt.timedelta(days=30)),
    }
    data = b"".join(orjson.dumps(r) + b"\n" for r in kinds.values())
    tmp = os.path.join(base, DEMO_RECORDS + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, os.path.join(base, DEMO_RECORDS))
    links = {kind: record_link(r) for kind, r in kinds.items()}
    unknown = sample_record("vaccination", today=today)
    links["not_found"] = record_link(unknown)
    with open(os.path.join(base, DEMO_LINKS), "wb") as fh:
        fh.write(orjson.dumps(links, option=orjson.OPT_INDENT_2))
    return links


def demo_links(directory: str | os.PathLike[str]) -> dict[str, str]:
    """The links `make_demo_records` wrote into the directory ({} when none)."""
    try:
        with open(os.path.join(os.fspath(directory), DEMO_LINKS), "rb") as fh:
            links = orjson.loads(fh.read(1 << 16))
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in links.items()} if isinstance(links, dict) else {}
