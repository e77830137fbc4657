"""`sync --records` in bounded memory (issue 12: "streamed: a 10 M-record file in bounded
memory"). The records file is validated while it is spooled to temporary files by the
table's key mix, and the new RecordTable is built and written one partition at a time
(verifier/redis/recspool.py). The streaming planner publishes exactly the bytes the
in-memory one (sync.plan_records) does; malformed rows and duplicate ids are named by
line before anything is written; memory (tracemalloc peak) stays at a few partitions."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from links.link_support import RECORDS, UNRZ, record, write_jsonl
from memory_support import traced_peak
from redis_support import requires_redis

from fastpath._records import RecordTable, record_key
from keys.registry import TrustRegistry
from verifier.cli import main
from verifier.records import RecordsFileError, load_removals, load_table
from verifier.redis.format import Layout, read_current, read_manifest
from verifier.redis.recspool import (
    NPART,
    RecordSpool,
    mix64,
    plan_records_stream,
    spool_records,
    spool_removals,
)
from verifier.redis.sync import Guard, plan_records, sync_state

L = Layout()


def unrz(i: int) -> str:
    return f"9160{i:012d}"


def rows(n: int, *, start: int = 0, seed: int = 1, changed: str = "") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        out.append(
            record(
                id=unrz(rng.randrange(10**12)) if seed else unrz(i),
                ck=f"{rng.getrandbits(128):032x}" if i % 5 else None,
                type=("vaccination", "recovery", "test", "temporary")[i % 4],
                status="revoked" if i % 11 == 0 else "valid",
                name="И***** И*** И*******" + changed,
                dob=f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
                document=f"45** ***{i % 1000:03d}",
            )
        )
    return out


def unique(n: int, seed: int) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for r in rows(n + n // 10 + 10, seed=seed):
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out[:n]


def write_rows(path: Path, recs: list[dict[str, Any]]) -> Path:
    with path.open("wb") as fh:
        for r in recs:
            fh.write(orjson.dumps(r) + b"\n")
    return path


# -- the spool (no Redis) --------------------------------------------------------------------


@pytest.mark.parametrize("n", [7, 600, 5000])
def test_mix_gives_the_table_order(tmp_path: Path, n: int) -> None:
    """The Python mix64 sorts keys exactly as RecordTable lays out its index."""
    table = load_table(write_rows(tmp_path / "r.jsonl", unique(n, seed=n)))
    data = bytes(table.to_bytes())
    bits = int.from_bytes(data[16:20], "little")
    index_off = int.from_bytes(data[32:40], "little")
    keys = [data[index_off + 20 * i : index_off + 20 * i + 16] for i in range(n)]
    assert keys == sorted(keys, key=lambda k: (mix64(k) >> (64 - bits), k))


def test_spool_partitions_by_mix_and_keeps_lines(tmp_path: Path) -> None:
    recs = unique(3000, seed=3)
    spool = spool_records(write_rows(tmp_path / "r.jsonl", recs))
    try:
        assert spool.count == 3000
        got = {}
        for part in range(NPART):
            for key, m, line, packed in spool.entries(part):
                assert m >> 56 == part and m == mix64(key)
                assert len(packed) % 4 == 0 and packed
                got[key] = line
        assert got == {record_key(r["id"]): i + 1 for i, r in enumerate(recs)}
    finally:
        spool.close()


def test_malformed_rows_name_their_line(tmp_path: Path) -> None:
    recs = unique(9000, seed=4)
    lines = [orjson.dumps(r) for r in recs]
    cases = [
        (8500, orjson.dumps(record(id=unrz(1), type="boat")), "line 8501: type must be"),
        (4096, b"not json", "line 4097: not valid JSON"),
        # packed by RecordTable.from_records: too long in bytes (4-byte characters)
        (5000, orjson.dumps(record(id=unrz(2), name="\U0001f600" * 100)), "line 5001: name"),
    ]
    for at, bad, message in cases:
        path = tmp_path / f"bad{at}.jsonl"
        path.write_bytes(b"\n".join([*lines[:at], bad, *lines[at:]]) + b"\n")
        with pytest.raises(RecordsFileError) as info:
            spool_records(path).close()
        assert message in str(info.value) and str(path) in str(info.value)
        assert UNRZ not in str(info.value) and unrz(1) not in str(info.value)
    # two bad rows: the first one is named (the later one is in an earlier-packed batch)
    path = tmp_path / "two.jsonl"
    bad_pack = orjson.dumps(record(id=unrz(2), name="\U0001f600" * 100))
    path.write_bytes(b"\n".join([*lines[:10], bad_pack, *lines[10:20], b"[]"]) + b"\n")
    with pytest.raises(RecordsFileError, match=r"line 11: name"):
        spool_records(path)


def test_duplicates_far_apart_name_the_second_line(tmp_path: Path) -> None:
    recs = unique(20000, seed=5)
    twice = [*recs[:15000], dict(recs[3], name="Х***"), *recs[15000:], dict(recs[19990])]
    path = write_rows(tmp_path / "dup.jsonl", twice)
    with pytest.raises(RecordsFileError, match=r"dup\.jsonl line 15001: a record with this id"):
        spool_records(path)
    # the second occurrence in file order wins, whatever partition holds which pair
    path = write_rows(tmp_path / "dup2.jsonl", [*recs, dict(recs[0]), dict(recs[1])])
    with pytest.raises(RecordsFileError, match=r"line 20001: a record with this id"):
        spool_records(path)
    # the same id twice in one batch, and a stream without a name
    data = write_jsonl(tmp_path / "x.jsonl", [record(), record(id=unrz(9)), record()]).read_bytes()
    with pytest.raises(RecordsFileError, match=r"line 3: a record with this id"):
        spool_records(io.BytesIO(data))


def test_removals_spool_matches_load_removals(tmp_path: Path) -> None:
    path = tmp_path / "gone.csv"
    path.write_text("id\n" + "".join(f"{unrz(i)}\n" for i in range(500)))
    spool = spool_removals(path)
    try:
        keys = {k for p in range(NPART) for k, _, _, _ in spool.entries(p)}
        packed = load_removals(path)
        assert keys == {packed[i : i + 16] for i in range(0, len(packed), 16)}
    finally:
        spool.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f'{{"id": "{UNRZ}"}}\n{{"id": "12"}}\n')
    with pytest.raises(RecordsFileError, match=r"bad\.jsonl line 2: id is not"):
        spool_removals(bad)


# -- against Redis -------------------------------------------------------------------------


def _plan_both(
    client: Any, old: Any, path: Path | None, *, replace: bool, gone: Path | None = None
) -> tuple[Any, dict[str, bytes]]:
    """The streaming plan, checked against the in-memory reference."""
    table = load_table(path) if path is not None else None
    removed = load_removals(gone) if gone is not None else None
    ref_info, ref_blobs = plan_records(client, L, old, table, replace=replace, removed=removed)
    spool = spool_records(path) if path is not None else None
    gone_spool = spool_removals(gone) if gone is not None else None
    put: dict[str, bytes] = {}
    try:
        info = plan_records_stream(
            client, L, old, spool, replace=replace, removed=gone_spool, put=put.__setitem__
        )
    finally:
        for s in (spool, gone_spool):
            if s is not None:
                s.close()
    assert info == ref_info
    if info is not old:
        assert put == ref_blobs
    return info, put


@pytest.mark.redis
@requires_redis
@pytest.mark.parametrize("n", [7, 3000])
def test_stream_planner_matches_in_memory_planner(
    redis_server: Any, tmp_path: Path, trust_file: Path, n: int
) -> None:
    """First load, add and change (merge), replace, removal, rerun: the same pieces."""
    client = redis_server.client()
    recs = unique(n, seed=n) if n > 7 else list(RECORDS)
    first = write_rows(tmp_path / "first.jsonl", recs[::-1])  # any order: same bytes
    info, _ = _plan_both(client, None, first, replace=False)
    with spool_records(first) as spool:
        result = start(client, trust_file, spool)
    assert result.records == len(recs)
    old = read_manifest(client, L, read_current(client, L)).records
    assert old == info  # what sync published is the planned table
    assert len(load_table(first).to_bytes()) == sum(p[1] for p in old.pieces)
    # add and change
    more = [dict(r, name="П****** А***") for r in recs[: max(1, n // 3)]]
    more += rows(max(2, n // 4), start=10**11, seed=0)
    change = write_rows(tmp_path / "change.jsonl", more)
    _plan_both(client, old, change, replace=False)
    # replace, removal, both
    _plan_both(client, old, change, replace=True)
    gone = tmp_path / "gone.jsonl"
    gone.write_bytes(
        b"".join(orjson.dumps({"id": r["id"]}) + b"\n" for r in recs[::2])
        + orjson.dumps({"id": unrz(123456789)})  # not held: ignored
    )
    _plan_both(client, old, None, replace=False, gone=gone)
    _plan_both(client, old, change, replace=False, gone=gone)
    # rerun of the first file: the same table, nothing new
    info, put = _plan_both(client, old, first, replace=False)
    assert info == old and set(put) == set(old.blob_ids())


def start(client: Any, trust_file: Path, records: Any) -> Any:
    """The first version of an empty store: the test trust keys and `records`."""
    trust = TrustRegistry.from_json(trust_file.read_bytes())
    return sync_state(client, trust=trust, records=records, guard=Guard(bootstrap=True))


@pytest.mark.redis
@requires_redis
def test_cli_sync_streams_records(
    redis_server: Any, tmp_path: Path, trust_file: Path, capsys: Any
) -> None:
    recs = unique(3000, seed=7)
    path = write_rows(tmp_path / "reg.jsonl", recs)
    url = redis_server.url
    boot = ["--bootstrap", "--trust", str(trust_file)]
    assert main(["sync", "--redis", url, *boot, "--records", str(path)]) == 0
    assert "records 3000" in capsys.readouterr().out
    assert main(["sync", "--redis", url, "--records", str(path)]) == 0
    assert "already up to date" in capsys.readouterr().out
    client = redis_server.client()
    info = read_manifest(client, L, read_current(client, L)).records
    assert info is not None and info.count == 3000
    from verifier.redis.format import fetch_records

    table = fetch_records(client, L, info)
    assert table.get(recs[42]["id"])["ck"] == recs[42]["ck"]
    gone = tmp_path / "gone.csv"
    gone.write_text("id\n" + "".join(r["id"] + "\n" for r in recs[:100]))
    assert main(["sync", "--redis", url, "--records-remove", str(gone)]) == 0
    info = read_manifest(client, L, read_current(client, L)).records
    assert info is not None and info.count == 2900
    assert recs[5]["id"] not in fetch_records(client, L, info)


@pytest.mark.redis
@requires_redis
@pytest.mark.slow
def test_malformed_row_late_in_a_big_file_writes_nothing(
    redis_server: Any, tmp_path: Path, trust_file: Path, capsys: Any
) -> None:
    url = redis_server.url
    recs = unique(60000, seed=8)
    small = write_rows(tmp_path / "a.jsonl", recs[:100])
    boot = ["--bootstrap", "--trust", str(trust_file)]
    assert main(["sync", "--redis", url, *boot, "--records", str(small)]) == 0
    client = redis_server.client()
    before = sorted(client.keys("*"))
    version = read_current(client, L)
    capsys.readouterr()
    bad = write_rows(tmp_path / "big.jsonl", recs)
    with bad.open("ab") as fh:
        fh.write(orjson.dumps(record(id=unrz(3), valid_until="2020-01-01")) + b"\n")
    assert main(["sync", "--redis", url, "--records", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "big.jsonl line 60001: valid_until is before valid_from" in err
    assert "nothing written" in err
    dup = write_rows(tmp_path / "dup.jsonl", [*recs, dict(recs[10])])
    assert main(["sync", "--redis", url, "--records", str(dup)]) == 2
    assert "dup.jsonl line 60001: a record with this id" in capsys.readouterr().err
    assert sorted(client.keys("*")) == before and read_current(client, L) == version


# Buffers that do not grow with the input: a 1 MiB piece being cut, read from the section
# files and encoded for Redis (a few copies of it), the old register's pieces being read
# (two, and a copy of a range across them), the spool's 1 MiB flush buffer.
FIXED = 5 * 1024 * 1024


@pytest.mark.redis
@requires_redis
@pytest.mark.slow
def test_records_sync_memory_stays_at_a_few_partitions(
    redis_server: Any, tmp_path: Path, trust_file: Path
) -> None:
    """A register of NPART partitions (its table ~12 MiB) is spooled, written, and then
    changed by an incremental sync, each with a traced peak below the fixed buffers
    plus 8 partitions, and below half the table (a whole-table planner holds the table
    several times over)."""
    client = redis_server.client()
    recs = unique(150_000, seed=9)
    path = write_rows(tmp_path / "big.jsonl", recs)
    spool, spool_peak = traced_peak(lambda: spool_records(path))
    assert isinstance(spool, RecordSpool)
    try:
        result, peak = traced_peak(lambda: start(client, trust_file, spool))
    finally:
        spool.close()
    info = read_manifest(client, L, read_current(client, L)).records
    table_bytes = sum(p[1] for p in info.pieces)
    partition = table_bytes / NPART
    assert result.records == 150_000 and table_bytes > 11_000_000
    # an incremental sync that changes a tenth: the old table is read a partition at a time
    change = write_rows(tmp_path / "change.jsonl", [dict(r, name="Х***") for r in recs[::10]])
    spool2 = spool_records(change)
    try:
        result2, peak2 = traced_peak(lambda: sync_state(client, records=spool2))
    finally:
        spool2.close()
    assert result2.changed and result2.records == 150_000
    print(
        f"\nrecords sync: table {table_bytes / 2**20:.1f} MiB, partition "
        f"{partition / 1024:.0f} KiB; traced peak: spool {spool_peak / 2**20:.2f} MiB, "
        f"first sync {peak / 2**20:.2f} MiB, incremental {peak2 / 2**20:.2f} MiB"
    )
    for p in (spool_peak, peak, peak2):
        assert p < FIXED + 8 * partition, f"{p / 2**20:.1f} MiB"
    assert max(spool_peak, peak, peak2) < table_bytes / 2
    table = RecordTable(b"".join(client.mget([L.blob(b) for b in info.blob_ids()])))
    assert len(table) == 150_000 and table.get(recs[7]["id"]) is not None
