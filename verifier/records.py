"""Register records (CONTRACT section 4): the register's export, read as a stream.

Two formats, told apart by the file name (`.csv`; `.jsonl`, `.ndjson`, `.json`) or else
by the first non-blank line (`{` = JSON Lines):

- JSON Lines: one object per line with the contract's field names;
- CSV: a header row with the same names (`ck` may be left out), one record per row.

`iter_records` yields normalised records, the tuples `fastpath._records.RecordTable.
from_records` takes: (id, ck bytes or None, type index, revoked, valid_from, valid_until,
name, name_latin, dob, document), times in epoch seconds. A date alone means that whole
day in Moscow time (UTC+3): valid_from at 00:00:00+03:00, valid_until at 23:59:59+03:00.
A malformed row raises RecordsFileError naming the file and the line, never the row's
content (it is personal data). `load_table` reads a whole file into a RecordTable or
raises: nothing is half-loaded (a duplicate id names the line of its second record).
Memory: the table under construction (about 90 bytes a record) plus one line.

Removals (`sync --records-remove FILE`, as the contract names no removal row): the same
two formats and detection rules, one `{"id": ...}` per line (other contract fields may be
present and are ignored) or a CSV with an `id` column; `load_removals` returns the ids'
packed 16-byte table keys (16 bytes a line of memory).
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import IO, Any

import orjson

from fastpath._records import RecordTable, record_key

__all__ = [
    "FIELDS",
    "RecordsFileError",
    "iter_records",
    "iter_removals",
    "load_removals",
    "load_table",
    "normalise",
    "parse_time",
]

FIELDS = (
    "id",
    "ck",
    "type",
    "status",
    "valid_from",
    "valid_until",
    "name",
    "name_latin",
    "dob",
    "document",
)
REQUIRED = tuple(f for f in FIELDS if f != "ck")
TYPES = {"vaccination": 0, "recovery": 1, "test": 2, "temporary": 3}
STATUSES = ("valid", "revoked")
MOSCOW = timezone(timedelta(hours=3))
MAX_LINE = 1 << 16  # bytes in one JSON line / CSV row
MAX_TEXT = 120  # characters in name, name_latin, document
MAX_RECORDS = 200_000_000
_CK = re.compile(r"[0-9a-fA-F]{32}")
_DOB = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RecordsFileError(ValueError):
    """A register records file cannot be used; the message names the file and line."""


def parse_time(text: Any, field: str, *, end_of_day: bool) -> int:
    """Epoch seconds of an ISO 8601 date (the first or last second of that day in
    Moscow time) or date-time with an offset."""
    if not isinstance(text, str) or not text.isascii() or len(text) > 40:
        raise ValueError(f"{field} must be an ISO 8601 date or date-time")
    if _DATE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{field} is not a calendar date") from None
        start = datetime(day.year, day.month, day.day, tzinfo=MOSCOW)
        moment = start + timedelta(seconds=86399) if end_of_day else start
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{field} must be an ISO 8601 date or date-time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{field}: a date-time needs an offset (Z or +03:00)")
    seconds = int(moment.astimezone(UTC).timestamp())
    if not 0 <= seconds <= 0xFFFFFFFF:
        raise ValueError(f"{field} is out of range (1970..2106)")
    return seconds


def _text(rec: Mapping[str, Any], field: str) -> str:
    value = rec.get(field)
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    if len(value) > MAX_TEXT or any(c < " " for c in value):
        raise ValueError(f"{field} is too long or has control characters")
    return value


def normalise(rec: Mapping[str, Any]) -> tuple[Any, ...]:
    """One record (contract field names) as the tuple RecordTable.from_records takes.
    Raises ValueError naming the field (never its value)."""
    missing = [f for f in REQUIRED if f not in rec]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")
    ident = rec["id"]
    if not isinstance(ident, str):
        raise ValueError("id must be a string")
    try:
        record_key(ident)
    except ValueError:
        raise ValueError("id is not a 16-digit unrz or a UUID") from None
    ck = rec.get("ck")
    if ck in (None, ""):
        ck_bytes = None
    elif isinstance(ck, str) and _CK.fullmatch(ck):
        ck_bytes = bytes.fromhex(ck)
    else:
        raise ValueError("ck must be 32 hex digits")
    ctype = rec["type"]
    if not isinstance(ctype, str) or ctype not in TYPES:
        raise ValueError(f"type must be one of {', '.join(TYPES)}")
    status = rec["status"]
    if not isinstance(status, str) or status not in STATUSES:
        raise ValueError("status must be valid or revoked")
    start = parse_time(rec["valid_from"], "valid_from", end_of_day=False)
    end = parse_time(rec["valid_until"], "valid_until", end_of_day=True)
    if end < start:
        raise ValueError("valid_until is before valid_from")
    dob = rec["dob"]
    if not isinstance(dob, str) or (dob and not _DOB.fullmatch(dob)):
        raise ValueError("dob must be YYYY-MM-DD (or YYYY-MM, YYYY, empty)")
    if len(dob) == 10:
        try:
            date.fromisoformat(dob)
        except ValueError:
            raise ValueError("dob is not a calendar date") from None
    return (
        ident.lower(),
        ck_bytes,
        TYPES[ctype],
        status == "revoked",
        start,
        end,
        _text(rec, "name"),
        _text(rec, "name_latin"),
        dob,
        _text(rec, "document"),
    )


def _detect(name: str, first: bytes) -> str:
    lower = name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if first.lstrip().startswith(b"{") else "csv"


def _lines(stream: IO[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its ending), capped in length."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise RecordsFileError(f"{where} line {number}: longer than {MAX_LINE} bytes")
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        yield number, line.rstrip(b"\r\n")


Lines = Iterator[tuple[int, bytes]]


def _jsonl(lines: Lines, where: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise RecordsFileError(f"{where} line {number}: not valid JSON") from None
        if not isinstance(obj, dict):
            raise RecordsFileError(f"{where} line {number}: not a JSON object")
        yield number, obj


def _csv(
    lines: Lines, where: str, required: tuple[str, ...] = REQUIRED
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    def text_lines() -> Iterator[str]:
        for number, line in lines:
            try:
                yield line.decode("utf-8") + "\n"
            except UnicodeDecodeError:
                raise RecordsFileError(f"{where} line {number}: not UTF-8 text") from None

    reader = csv.reader(text_lines(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error:
        raise RecordsFileError(f"{where} line 1: malformed CSV header") from None
    names = [h.strip() for h in header]
    missing = [f for f in required if f not in names]
    if missing:
        raise RecordsFileError(f"{where} line 1: CSV header lacks column(s): {', '.join(missing)}")
    if len(set(names)) != len(names):
        raise RecordsFileError(f"{where} line 1: CSV header repeats a column")
    width = len(names)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            raise RecordsFileError(f"{where} line {reader.line_num}: malformed CSV") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            raise RecordsFileError(
                f"{where} line {reader.line_num}: {len(row)} columns, the header has {width}"
            )
        yield reader.line_num, dict(zip(names, row, strict=True))


def _rows(
    source: str | os.PathLike[str] | IO[bytes],
    fmt: str | None,
    required: tuple[str, ...] = REQUIRED,
) -> Iterator[tuple[int, Mapping[str, Any], str]]:
    """(line number, row as a mapping, file name) of a JSON Lines or CSV source."""
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        try:
            fh: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise RecordsFileError(f"cannot read {where}: {exc.strerror}") from None
    else:
        where = getattr(source, "name", "<records>")
        if not isinstance(where, str):
            where = "<records>"
        fh = source
    try:
        lines = _lines(fh, where)
        head: list[tuple[int, bytes]] = []
        for item in lines:  # the first non-blank line tells the format apart
            head.append(item)
            if item[1].strip():
                break
        kind = fmt or _detect(where, head[-1][1] if head else b"")
        if kind not in ("jsonl", "csv"):
            raise RecordsFileError(f"unknown records format {kind!r} (jsonl or csv)")
        chained = itertools.chain(head, lines)
        rows = _jsonl(chained, where) if kind == "jsonl" else _csv(chained, where, required)
        count = 0
        for number, obj in rows:
            count += 1
            if count > MAX_RECORDS:
                raise RecordsFileError(f"{where} line {number}: more than {MAX_RECORDS} records")
            yield number, obj, where
    finally:
        if fh is not source:
            fh.close()


def _numbered(
    source: str | os.PathLike[str] | IO[bytes], fmt: str | None
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    for number, obj, where in _rows(source, fmt):
        try:
            yield number, normalise(obj)
        except ValueError as exc:
            raise RecordsFileError(f"{where} line {number}: {exc}") from None


def iter_records(
    source: str | os.PathLike[str] | IO[bytes], *, fmt: str | None = None
) -> Iterator[tuple[Any, ...]]:
    """Normalised records of a JSON Lines or CSV file (a path or a binary stream),
    streamed. Raises RecordsFileError naming the line of the first bad record."""
    for _, rec in _numbered(source, fmt):
        yield rec


def _duplicate_line(source: str | os.PathLike[str] | IO[bytes], fmt: str | None) -> str | None:
    """`<file> line N` of the first record whose id an earlier record has (a second pass,
    only after the table found a duplicate), or None when the source cannot be re-read."""
    from fastpath._hashset import HashSet

    if not isinstance(source, (str, os.PathLike)):
        try:
            source.seek(0)
        except (AttributeError, OSError, ValueError):
            return None
    seen = HashSet()
    where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<records>"
    for number, obj, name in _rows(source, fmt):
        where = name
        key = record_key(str(obj["id"]).lower())
        if not seen.add(key):
            return f"{where} line {number}"
    return None


def _removal_key(obj: Mapping[str, Any]) -> bytes:
    unknown = sorted(str(k)[:40] for k in obj if k not in FIELDS)
    if unknown:
        raise ValueError(f"unexpected field(s) {', '.join(unknown)}")
    ident = obj.get("id")
    if not isinstance(ident, str):
        raise ValueError("id must be a string" if "id" in obj else "missing field(s): id")
    try:
        return bytes(record_key(ident.lower()))
    except ValueError:
        raise ValueError("id is not a 16-digit unrz or a UUID") from None


def iter_removals(
    source: str | os.PathLike[str] | IO[bytes], *, fmt: str | None = None
) -> Iterator[tuple[int, bytes]]:
    """(line number, 16-byte table key) of each id of a removal file (JSON Lines
    `{"id": ...}` or CSV with an `id` column); RecordsFileError names the bad line."""
    for number, obj, where in _rows(source, fmt, ("id",)):
        try:
            yield number, _removal_key(obj)
        except ValueError as exc:
            raise RecordsFileError(f"{where} line {number}: {exc}") from None


def load_removals(source: str | os.PathLike[str] | IO[bytes], *, fmt: str | None = None) -> bytes:
    """The packed table keys of a removal file's ids (all or nothing)."""
    out = bytearray()
    for _, key in iter_removals(source, fmt=fmt):
        out += key
    return bytes(out)


def load_table(
    source: str | os.PathLike[str] | IO[bytes] | Iterable[Mapping[str, Any]],
    *,
    fmt: str | None = None,
) -> RecordTable:
    """A RecordTable from a records file (or from record mappings); all or nothing."""
    where = "register records"
    if isinstance(source, (str, os.PathLike)) or hasattr(source, "read"):
        records: Iterable[tuple[Any, ...]] = iter_records(source, fmt=fmt)  # type: ignore[arg-type]
        if isinstance(source, (str, os.PathLike)):
            where = f"register records {os.fspath(source)}"
    else:
        records = (normalise(r) for r in source)
    try:
        return RecordTable.from_records(records)
    except RecordsFileError:
        raise
    except ValueError as exc:
        if "same id" in str(exc) and (
            isinstance(source, (str, os.PathLike)) or hasattr(source, "read")
        ):
            line = _duplicate_line(source, fmt)  # type: ignore[arg-type]
            if line is not None:
                raise RecordsFileError(
                    f"{line}: a record with this id is already in the file (ids must be unique)"
                ) from None
        raise RecordsFileError(f"{where}: {exc}") from None
