"""RecordTable (bytes / mmap, damaged buffers) and the records file reader (JSON Lines,
CSV, malformed rows with their line numbers, Moscow days)."""

from __future__ import annotations

import csv
import io
import mmap
from pathlib import Path
from typing import Any

import orjson
import pytest
from links.link_support import CK, RECORDS, UNRZ, UUID, record, write_jsonl

from fastpath._records import RecordTable, record_key
from verifier.records import RecordsFileError, iter_records, load_table, parse_time


def test_roundtrip_bytes_and_fields(table: RecordTable) -> None:
    assert len(table) == len(RECORDS)
    again = RecordTable(table.to_bytes())
    assert again.to_bytes() == table.to_bytes()
    got = again.get(UNRZ)
    assert got is not None
    assert got["ck"] == CK and got["type"] == "vaccination" and got["status"] == "valid"
    assert got["name"] == "И***** И*** И*******"
    assert got["name_latin"] == "I***** I*** I*******"
    assert got["dob"] == "1980-01-01" and got["document"] == "45** ***123"
    # a date alone is that whole day in Moscow time (UTC+3)
    assert got["valid_from"] == parse_time("2021-06-30T21:00:00Z", "t", end_of_day=False)
    assert got["valid_until"] == parse_time("2022-07-01T20:59:59Z", "t", end_of_day=False)
    assert again.get(UUID.upper())["ck"] is None  # type: ignore[index]
    assert again.get("9160000000000099") is None and again.get("junk") is None
    assert UNRZ in again and "9160000000000099" not in again


def test_from_mmap_read_only(tmp_path: Path, table: RecordTable) -> None:
    path = tmp_path / "t.bin"
    path.write_bytes(b"\x00" * 8 + table.to_bytes())
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)[8:]
        t = RecordTable(view)
        assert len(t) == len(RECORDS) and t.get(UNRZ)["ck"] == CK  # type: ignore[index]
        assert t.to_bytes() == table.to_bytes()
        del t
        view.release()


def test_records_roundtrip_through_tuples(table: RecordTable) -> None:
    rebuilt = RecordTable.from_records(table.records())
    for rec in RECORDS:
        assert rebuilt.get(rec["id"]) == table.get(rec["id"])


def test_empty_table() -> None:
    t = RecordTable.from_records([])
    assert len(t) == 0 and t.get(UNRZ) is None
    assert len(RecordTable(t.to_bytes())) == 0


def test_many_records_all_found() -> None:
    recs = [
        (
            f"{9160000000000000 + i}",
            bytes(16) if i % 3 else None,
            i % 4,
            i % 5 == 0,
            1_600_000_000,
            1_700_000_000,
            "И***** И***",
            "I***** I***",
            "1980-01-01",
            f"{i % 100:02d}** ***{i % 1000:03d}",
        )
        for i in range(5000)
    ]
    t = RecordTable.from_records(recs)
    assert len(t) == 5000
    for i in (0, 1, 2, 4999):
        got = t.get(f"{9160000000000000 + i}")
        assert (
            got is not None
            and got["type"] == ("vaccination", "recovery", "test", "temporary")[i % 4]
        )
        assert got["document"] == f"{i % 100:02d}** ***{i % 1000:03d}"
    assert t.get("9160000000005000") is None
    assert t.nbytes / 5000 < 96


def test_duplicate_ids_refused() -> None:
    with pytest.raises(RecordsFileError, match="same id"):
        load_table([record(), record(name="X")])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:10],
        lambda b: b"XXXXXXXX" + b[8:],
        lambda b: b[:-1],
        lambda b: b[:16] + b"\x40\x00\x00\x00" + b[20:],  # bucket bits 64
        lambda b: b[:64] + b"\x05\x00\x00\x00" + b[68:],  # directory must start at 0
    ],
)
def test_damaged_buffers_refused(table: RecordTable, mutate: Any) -> None:
    with pytest.raises(ValueError, match="record table"):
        RecordTable(mutate(table.to_bytes()))


def test_record_key() -> None:
    assert record_key(UNRZ) == bytes(8) + int(UNRZ).to_bytes(8, "big")
    assert record_key(UUID) == bytes.fromhex(UUID.replace("-", ""))
    with pytest.raises(ValueError):
        record_key("12345")


# -- records files ------------------------------------------------------------------------


def _csv_text(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = list(records[0])
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in records:
        w.writerow(["" if r.get(f) is None else r[f] for f in fields])
    return buf.getvalue()


def test_csv_equals_jsonl(tmp_path: Path, table: RecordTable) -> None:
    path = tmp_path / "register.csv"
    path.write_text(_csv_text(RECORDS), encoding="utf-8")
    t = load_table(path)
    for rec in RECORDS:
        assert t.get(rec["id"]) == table.get(rec["id"])
    # format sniffed without a telling extension, BOM and CRLF tolerated
    other = tmp_path / "register.txt"
    other.write_bytes(b"\xef\xbb\xbf" + _csv_text(RECORDS).replace("\n", "\r\n").encode())
    assert len(load_table(other)) == len(RECORDS)
    jl = tmp_path / "register.dat"
    jl.write_bytes(b"\n\n" + b"\r\n".join(orjson.dumps(r) for r in RECORDS) + b"\n\n")
    assert len(load_table(jl)) == len(RECORDS)


BAD_ROWS = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (orjson.dumps({k: v for k, v in record().items() if k != "dob"}), "missing field"),
    (orjson.dumps(record(id="91600000123")), "id is not"),
    (orjson.dumps(record(ck="abc")), "ck must be 32 hex"),
    (orjson.dumps(record(type="booster")), "type must be"),
    (orjson.dumps(record(status="VALID")), "status must be"),
    (orjson.dumps(record(valid_from="2021-13-01")), "valid_from"),
    (orjson.dumps(record(valid_until="2022-07-01T00:00:00")), "needs an offset"),
    (orjson.dumps(record(valid_until="2020-01-01")), "before valid_from"),
    (orjson.dumps(record(dob="1980-02-30")), "dob"),
    (orjson.dumps(record(name="x" * 121)), "name"),
    (orjson.dumps(record(document=5)), "document must be a string"),
    (orjson.dumps(record(name="a\nb")), "control characters"),
    (b"x" * 70000, "longer than"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_jsonl_errors_name_the_line(tmp_path: Path, row: bytes, message: str) -> None:
    path = tmp_path / "r.jsonl"
    good = [orjson.dumps(record(id=f"{9160000000000100 + i}")) for i in range(3)]
    path.write_bytes(b"\n".join([good[0], b"", good[1], row, good[2]]) + b"\n")
    with pytest.raises(RecordsFileError, match=message) as info:
        load_table(path)
    assert f"{path} line 4:" in str(info.value)
    # no personal data in the message
    assert "И***" not in str(info.value) and "45**" not in str(info.value)


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    text = _csv_text([record(id=f"{9160000000000100 + i}") for i in range(3)]).splitlines()
    bad_type = text[2].replace("vaccination", "booster")
    cases = [
        ([text[0], text[1], bad_type, text[3]], "line 3: type must be"),
        ([text[0], text[1], text[2] + ",extra"], "line 3: 11 columns"),
        ([text[0].replace("name_latin", "latin"), text[1]], "line 1: CSV header lacks"),
        ([text[0], text[1], '"unterminated' + text[2]], "line"),
    ]
    for lines, message in cases:
        path = tmp_path / "r.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with pytest.raises(RecordsFileError, match=message):
            load_table(path)


def test_csv_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(_csv_text([record()]).encode() + b"\xff\xfe\n")
    with pytest.raises(RecordsFileError, match="line 3: not UTF-8"):
        load_table(path)


def test_nothing_half_loaded(tmp_path: Path, records_file: Path) -> None:
    from keys.registry import TrustRegistry  # noqa: F401 - the store import path
    from verifier.store import MemoryStore

    path = write_jsonl(tmp_path / "r.jsonl", [*RECORDS[:3], {"id": "bad"}])
    with pytest.raises(RecordsFileError, match="line 4"):
        MemoryStore.from_files(None, None, path)


def test_iter_records_streams(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "r.jsonl",
        [record(id=f"{9160000000000100 + i}") for i in range(3)] + [{"id": "x"}],
    )
    it = iter_records(path)
    assert next(it)[0] == "9160000000000100"  # yielded before the bad line is read
    with pytest.raises(RecordsFileError):
        list(it)


def test_missing_file() -> None:
    with pytest.raises(RecordsFileError, match="cannot read"):
        load_table("/nonexistent/records.jsonl")
