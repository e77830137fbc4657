"""A RecordTable layered over by an overlay of changed records (fastpath._records): hits
in the base and in the overlay, shadowed and tombstoned records, added ones, the merged
len / records / count_present, and link verdicts through the engine; the snapshot's
overlay section (verifier.redis.snapshot); the constant-time selection (timing)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from links.link_support import AT, CK, RECORDS, UNRZ, UUID, assert_same_timing, link, record

from fastpath._hashset import HashSet
from fastpath._records import TOMBSTONE, RecordTable, record_key
from keys.registry import TrustRegistry
from verifier import Verifier
from verifier.reasons import Reason
from verifier.records import load_table
from verifier.redis.format import StoreDataError
from verifier.redis.snapshot import map_snapshot, read_header, write_snapshot
from verifier.store import MemoryStore

NEW = "9160000000000077"
REMOVED = "9160000000000005"
CHANGED = "9160000000000002"  # revoked in the base, valid again in the overlay


def table_of(recs: list[dict[str, Any]]) -> RecordTable:
    return load_table(recs)


def packed(recs: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return list(table_of(recs).packed())


@pytest.fixture
def base() -> RecordTable:
    return table_of(RECORDS)


@pytest.fixture
def overlay() -> RecordTable:
    """CHANGED made valid, NEW added, REMOVED tombstoned."""
    changes = packed(
        [
            record(id=CHANGED, ck="00" * 16, status="valid", name="Н*** И***"),
            record(id=NEW, ck="55" * 16, type="test"),
        ]
    )
    return RecordTable.from_packed(changes, record_key(REMOVED))


@pytest.fixture
def layered(base: RecordTable, overlay: RecordTable) -> RecordTable:
    return RecordTable(base.to_bytes(), overlay=overlay)


def test_lookups_over_base_and_overlay(layered: RecordTable, base: RecordTable) -> None:
    assert layered.get(UNRZ) == base.get(UNRZ)  # in the base only
    assert layered.get(UUID) == base.get(UUID)
    changed = layered.get(CHANGED)  # shadowed: the overlay's record
    assert changed is not None and changed["status"] == "valid"
    assert changed["name"] == "Н*** И***" and base.get(CHANGED)["status"] == "revoked"  # type: ignore[index]
    added = layered.get(NEW)
    assert added is not None and added["type"] == "test" and added["ck"] == "55" * 16
    assert layered.get(REMOVED) is None and REMOVED not in layered  # tombstoned
    assert base.get(REMOVED) is not None
    assert layered.get("9160000000000099") is None  # in neither


def test_merged_len_records_and_count_present(
    layered: RecordTable, overlay: RecordTable, base: RecordTable
) -> None:
    assert len(layered) == len(RECORDS)  # +1 added, -1 removed
    assert layered.base_count == len(RECORDS) and layered.overlay is overlay
    recs = list(layered.records())
    keys = [r[0] for r in recs]
    assert len(recs) == len(layered) and len(set(keys)) == len(keys)
    assert record_key(REMOVED) not in keys and record_key(NEW) in keys
    by_key = {r[0]: r for r in recs}
    assert by_key[record_key(CHANGED)][3] is False  # not revoked: the overlay's version
    probe = b"".join(record_key(i) for i in (UNRZ, CHANGED, NEW, REMOVED, "9160000000000099"))
    assert layered.count_present(probe) == 3
    # the merged view as a plain table: the same answers
    flat = RecordTable(layered.to_bytes())
    assert flat.overlay is None and len(flat) == len(layered)
    for ident in (UNRZ, UUID, CHANGED, NEW, REMOVED):
        assert flat.get(ident) == layered.get(ident)
    assert dict(flat.packed()) == dict(layered.packed())
    # the overlay's own entries read back, tombstones included
    own = dict(overlay.packed())
    assert own[record_key(REMOVED)][0] & TOMBSTONE
    assert not own[record_key(NEW)][0] & TOMBSTONE
    assert layered.packed_of(record_key(REMOVED)) is None
    assert layered.packed_of(record_key(NEW)) == own[record_key(NEW)]
    assert layered.nbytes == base.nbytes + overlay.nbytes


def test_count_given_or_computed(base: RecordTable, overlay: RecordTable) -> None:
    data = base.to_bytes()
    assert len(RecordTable(data, overlay=overlay, count=len(RECORDS))) == len(RECORDS)
    with pytest.raises(ValueError, match="count"):
        RecordTable(data, overlay=overlay, count=len(RECORDS) + 5)  # more than can be
    with pytest.raises(ValueError, match="count"):
        RecordTable(data, count=3)  # a plain table's count is its own
    # a tombstone for a key the base lacks and a record equal in key to a base one
    ov = RecordTable.from_packed(packed([record(id=UNRZ, ck="66" * 16)]), record_key(NEW))
    t = RecordTable(data, overlay=ov)
    assert len(t) == len(RECORDS) and t.get(UNRZ)["ck"] == "66" * 16  # type: ignore[index]
    assert t.get(NEW) is None


def test_overlay_rules(base: RecordTable, overlay: RecordTable, layered: RecordTable) -> None:
    with pytest.raises(ValueError, match="overlay"):
        RecordTable(base.to_bytes(), overlay=layered)  # no overlay over an overlay
    with pytest.raises(TypeError):
        RecordTable(base.to_bytes(), overlay=b"junk")
    empty = RecordTable(base.to_bytes(), overlay=RecordTable.from_packed([]))
    assert len(empty) == len(RECORDS) and empty.get(UNRZ) == base.get(UNRZ)


@pytest.mark.parametrize(
    "bad",
    [
        (b"\x00" * 15, None),  # short key
        (None, b"\x00" * 7),  # short record
        (None, "pad"),  # a record one byte longer than its fields say
        (None, "tomb"),  # the tombstone flag is only made from `tombstones`
        (None, "times"),  # valid_until before valid_from
    ],
)
def test_from_packed_checks_shapes(bad: tuple[Any, Any]) -> None:
    key, rec = packed([record()])[0]
    k, r = bad
    if r == "pad":
        r = rec + b"\x00\x00\x00\x00"
    elif r == "tomb":
        r = bytes([rec[0] | TOMBSTONE]) + rec[1:]
    elif r == "times":
        r = rec[:1] + (10).to_bytes(4, "little") + (5).to_bytes(4, "little") + rec[9:]
    with pytest.raises(ValueError, match="record 1"):
        RecordTable.from_packed([(k if k is not None else key, r if r is not None else rec)])
    with pytest.raises(ValueError, match="same id"):
        RecordTable.from_packed([(key, rec)], key)
    with pytest.raises(ValueError, match="multiple of 16"):
        RecordTable.from_packed([], b"\x00" * 17)


def test_link_verdicts_through_the_engine(layered: RecordTable) -> None:
    v = Verifier(MemoryStore(TrustRegistry.empty(), HashSet(), None, records=layered))
    assert v.verify(link(UNRZ, CK), AT).valid  # base
    assert v.verify(link(CHANGED, "00" * 16), AT).valid  # revoked in the base, valid now
    assert v.verify(link(NEW, "55" * 16), AT).valid  # added
    assert v.verify(link(NEW, "56" * 16), AT).reason is Reason.NOT_FOUND  # wrong ck
    assert v.verify(link(REMOVED, CK), AT).reason is Reason.NOT_FOUND  # tombstoned
    # without a ck: as for a missing unrz (the record's ck rule cannot be known)
    assert v.verify(link(REMOVED), AT).reason is v.verify(link("9160000000000099"), AT).reason
    assert v.verify(link("9160000000000099", CK), AT).reason is Reason.NOT_FOUND


def _snap(path: Path, **kw: Any) -> None:
    write_snapshot(
        path,
        version="1-ab",
        seq=1,
        trust_json=b'{"keys": []}',
        trust_id="t",
        revoked=HashSet(),
        registry=None,
        **kw,
    )


def test_snapshot_overlay_section(tmp_path: Path, base: RecordTable, overlay: RecordTable) -> None:
    path = tmp_path / "m.snap"
    _snap(path, records=base, records_overlay=(overlay.to_bytes(), len(RECORDS)))
    head = read_header(path)
    assert head["format"] == 3 and head["sections"]["overlay"]["count"] == len(RECORDS)
    for verify in (True, False):
        snap = map_snapshot(path, verify=verify)
        t = snap.replica.records
        assert t is not None and len(t) == len(RECORDS) and t.overlay is not None
        assert t.get(REMOVED) is None and t.get(NEW) is not None
        assert snap.records_overlay is not None
        assert bytes(snap.records_overlay) == overlay.to_bytes()
    # a count that does not add up is refused when counted
    _snap(path, records=base, records_overlay=(overlay.to_bytes(), len(RECORDS) + 1))
    with pytest.raises(StoreDataError, match="count"):
        map_snapshot(path)
    # without the section: as before (format 2, no overlay)
    _snap(path, records=base)
    snap = map_snapshot(path)
    assert read_header(path)["format"] == 2 and snap.records_overlay is None
    assert snap.replica.records is not None and snap.replica.records.overlay is None


@pytest.mark.slow
def test_not_found_timing_is_the_same_with_an_overlay(tmp_path: Path) -> None:
    """As test_link_verify's timing test, over a layered table: a wrong ck (of a base
    record and of an overlay record), a missing record and a tombstoned one must not be
    told apart by their timing, while the valid path (more work) is."""
    n = 4000
    ids = [f"{9170000000000000 + i * 7}" for i in range(n)]
    recs = [record(id=ids[i], ck=f"{i:032x}") for i in range(n)]
    base = table_of(recs)
    rng = random.Random(3)
    moved = rng.sample(range(n), 400)  # changed: in the overlay, a new ck
    gone = rng.sample(sorted(set(range(n)) - set(moved)), 400)  # tombstoned
    changes = packed([record(id=ids[i], ck=f"{i + 7:032x}") for i in moved])
    tombs = b"".join(record_key(ids[i]) for i in gone)
    table = RecordTable(base.to_bytes(), overlay=RecordTable.from_packed(changes, tombs))
    assert len(table) == n - len(gone)
    v = Verifier(MemoryStore(TrustRegistry.empty(), HashSet(), None, records=table))
    plain = sorted(set(range(n)) - set(moved) - set(gone))
    pick = rng.sample(plain, 100)
    groups = {
        "wrong_ck": [link(ids[i], f"{i + 1:032x}") for i in pick]
        + [link(ids[i], f"{i:032x}") for i in moved[:100]],  # the base's ck: now wrong
        "missing": [link(f"{9170000000000000 + i * 7 + 3}", f"{i:032x}") for i in pick]
        + [link(ids[i], f"{i:032x}") for i in gone[:100]],  # tombstoned
        "valid": [link(ids[i], f"{i:032x}") for i in pick]
        + [link(ids[i], f"{i + 7:032x}") for i in moved[:100]],
    }
    assert_same_timing(v, groups, "overlay: ")
