"""Swapping a mapped snapshot cheaply: a file that replaces the first one is mapped without
counting every table (shape checked, pages touched once), and the records' piece list
travels in the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fastpath._hashset import HashSet, table_view
from fastpath._records import RecordTable
from keys.registry import TrustRegistry
from verifier.redis.format import StoreDataError
from verifier.redis.snapshot import map_snapshot, read_header, write_snapshot


def _write(path: Path, trust_file: Path, revoked: HashSet, **kw) -> None:
    write_snapshot(
        path,
        version="5-00aa",
        seq=5,
        trust_json=bytes(TrustRegistry.from_file(trust_file).to_json()),
        trust_id="t" * 32,
        revoked=revoked,
        registry=None,
        **kw,
    )


def _patch_header(path: Path, section: str, field: str, value: object) -> None:
    """Rewrite one header field in place (the header's length must stay the same)."""
    import orjson

    data = bytearray(path.read_bytes())
    hlen = int.from_bytes(data[8:12], "big")
    header = orjson.loads(bytes(data[12 : 12 + hlen]))
    header["sections"][section][field] = value
    new = orjson.dumps(header)
    assert len(new) == hlen, "test needs a same-length change"
    data[12 : 12 + hlen] = new
    path.write_bytes(bytes(data))


def test_swap_mapping_skips_the_count_but_answers_the_same(tmp_path, trust_file):
    keys = os.urandom(16 * 30_000)
    path = tmp_path / "m.snap"
    _write(path, trust_file, HashSet(keys))
    full = map_snapshot(path)
    swap = map_snapshot(path, verify=False)
    probes = keys[: 16 * 500] + os.urandom(16 * 500)
    for i in range(0, len(probes), 16):
        key = probes[i : i + 16]
        assert swap.replica.revoked.contains(key) == full.replica.revoked.contains(key)
    assert len(swap.replica.revoked) == 30_000
    assert swap.replica.revoked.missing_packed(probes) == full.replica.revoked.missing_packed(
        probes
    )
    # a count that does not match: found when counting (first map), taken as given on a
    # swap (lookups are bounded by the closing empty slot, not by the count)
    _patch_header(path, "revoked", "count", 30_001)
    with pytest.raises(StoreDataError, match="count"):
        map_snapshot(path, verify=False, check_counts=True)
    assert len(map_snapshot(path, verify=False).replica.revoked) == 30_001


def test_swap_mapping_still_refuses_a_table_without_its_closing_slot(tmp_path, trust_file):
    revoked = HashSet(os.urandom(16 * 1000))
    info = revoked.table_info()
    data = bytearray()

    class Sink:
        def write(self, chunk: bytes) -> int:
            data.extend(chunk)
            return len(chunk)

    revoked.write_table(Sink())
    data[-16:] = b"\x01" * 16  # a lookup could walk past the end
    for check in (True, False):
        with pytest.raises(ValueError, match="shape"):
            table_view(
                bytes(data), info["cap"], info["count"], info["has_zero"], info["seed"], check
            )
    data[-16:] = bytes(16)
    view = table_view(
        bytes(data), info["cap"], info["count"], info["has_zero"], info["seed"], False
    )
    assert view == revoked


def _records(n: int) -> RecordTable:
    return RecordTable.from_records(
        (
            f"{9_160_000_000_000_000 + 3 * i}",
            bytes(16),
            0,
            False,
            1_625_086_800,
            1_656_622_800,
            "И***** И*** И*******",
            "I***** I*** I*******",
            "1980-01-02",
            "45** ***123",
        )
        for i in range(n)
    )


def test_records_pieces_travel_in_the_file(tmp_path, trust_file):
    table = _records(2000)
    data = bytes(table.to_bytes())
    pieces = [["a" * 32, 100_000], ["b" * 32, len(data) - 100_000]]
    path = tmp_path / "r.snap"
    _write(path, trust_file, HashSet(), records=data, records_pieces=pieces, records_count=2000)
    snap = map_snapshot(path)
    assert snap.records_pieces == (("a" * 32, 100_000), ("b" * 32, len(data) - 100_000))
    assert snap.records_view is not None and bytes(snap.records_view) == data
    assert len(snap.replica.records) == 2000
    assert read_header(path)["sections"]["records"]["count"] == 2000
    # without a piece list (an older file) the next build simply fetches every piece
    _write(path, trust_file, HashSet(), records=table)
    snap = map_snapshot(path)
    assert snap.records_pieces is None and len(snap.replica.records) == 2000


def test_records_file_is_checked_before_it_is_renamed_into_place(tmp_path):
    from verifier.redis.snapshot import records_file_name, write_records_file

    snap = str(tmp_path / "m.snap")
    data = bytes(_records(500).to_bytes())
    pieces = [["c" * 32, len(data)]]
    with pytest.raises(StoreDataError, match="count"):
        write_records_file(snap, pieces, [data], 499)
    with pytest.raises(StoreDataError, match="unusable"):
        write_records_file(snap, pieces, [data[:100], b"\xff" * 64, data[164:]], 500)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    ref = write_records_file(snap, pieces, [data[:1000], memoryview(data)[1000:]], 500)
    assert ref["file"] == records_file_name(snap, pieces) and ref["length"] == len(data)
    assert (tmp_path / ref["file"]).read_bytes() == data
