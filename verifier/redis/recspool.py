"""Register records for `qrverify sync` in bounded memory (issue 12: a 10 M-record file).

The records file is read once as a stream: every row is validated (a malformed row raises
RecordsFileError naming its line, before anything is written), packed as
fastpath._records.RecordTable packs it, and spooled to anonymous temporary files, one per
partition of the top 8 bits of the table's key mix (256 partitions). A table's index is
ordered by bucket (the top bits of that mix) and then by key, and its data region follows
the index order, so partition after partition is also table order: the new table is built
one partition at a time against the old table's same partition (read from Redis' pieces
by byte range), and its bytes go out as the same 1 MiB content-addressed pieces, byte for
byte what the in-memory planner (sync.plan_records) publishes. The Redis layout is
unchanged.

Memory: about one partition (1/256 of the records) plus a few 1 MiB pieces. Temporary
space: the input spool, the merged register, and its sections (each about the packed
size of the records, ~70-100 bytes a record), in `$TMPDIR`; the files are unlinked from
the start, so a killed sync leaves none.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from fastpath._records import RecordTable, record_key
from verifier.records import RecordsFileError, _numbered, _removal_key, _rows
from verifier.redis.format import RECORDS_PIECE, Layout, RecordsInfo, StoreDataError, blob_id
from verifier.redis.spool import NPART, Parts, temporary_file, write_all

__all__ = [
    "DELTA_MAX_RECORDS",
    "NPART",
    "RecordSpool",
    "RecordsDelta",
    "mix64",
    "plan_records_stream",
    "spool_records",
    "spool_removals",
    "spool_table",
]

PART_BITS = 8  # NPART partitions (spool.NPART, 256) by the top 8 bits of the mix
BATCH = 1024  # rows packed per RecordTable.from_records call while spooling
HEADER = 64
ENTRY = 20
MAX_BITS = 28
MAX_SCAN = 4096
MAGIC = b"QRVREC2\x00"
DELTA_MAX_RECORDS = 65_536  # changed + removed records a version's delta describes
DELTA_MAX_BYTES = 8 << 20  # and their packed bytes
_M64 = (1 << 64) - 1
_ORDER: Any = sys.byteorder  # the C mix reads the key's words in native order
_ENT = struct.Struct("<16sQQH")  # key, mix, line, packed length; then the packed record


def mix64(key: bytes) -> int:
    """fastpath._records' 64-bit key mix (qrr_mix): the table's bucket is its top bits."""
    h = ((int.from_bytes(key[:8], _ORDER) * 0x9E3779B97F4A7C15) & _M64) ^ int.from_bytes(
        key[8:16], _ORDER
    )
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    h ^= h >> 33
    return h


Entry = tuple[bytes, int, int, bytes]  # key, mix, line, packed record


def _tempfile() -> IO[bytes]:
    return temporary_file("qrverify-rec-")


class RecordSpool:
    """Records (or, for removals, bare keys) partitioned by the top 8 bits of their key
    mix; `count` entries (duplicates included), `where` the file they came from."""

    def __init__(self, where: str = "register records") -> None:
        self._parts = Parts("qrverify-rec-")
        self.count = 0
        self.where = where

    def add(self, key: bytes, line: int, packed: bytes = b"", mix: int | None = None) -> None:
        m = mix64(key) if mix is None else mix
        self._parts.write(m >> 56, _ENT.pack(key, m, line, len(packed)) + packed)
        self.count += 1

    def entries(self, part: int) -> list[Entry]:
        data = self._parts.read(part)
        out: list[Entry] = []
        pos, n, size = 0, len(data), _ENT.size
        while pos < n:
            key, m, line, ln = _ENT.unpack_from(data, pos)
            pos += size
            out.append((key, m, line, data[pos : pos + ln]))
            pos += ln
        return out

    def close(self) -> None:
        self._parts.close()

    def __enter__(self) -> RecordSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- reading the input -------------------------------------------------------------------


def _table_entries(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, packed record) of every record of RecordTable bytes, in data order."""
    count = int.from_bytes(data[8:16], "little")
    index_off = int.from_bytes(data[32:40], "little")
    data_off = int.from_bytes(data[40:48], "little")
    data_len = int.from_bytes(data[48:56], "little")
    units = sorted(
        (unit, key)
        for key, unit in struct.iter_unpack("<16sI", data[index_off : index_off + ENTRY * count])
    )
    for i, (unit, key) in enumerate(units):
        end = units[i + 1][0] * 4 if i + 1 < len(units) else data_len
        yield key, data[data_off + unit * 4 : data_off + end]


def _pack_batch(
    spool: RecordSpool, batch: list[tuple[int, bytes, tuple[Any, ...]]], where: str
) -> None:
    if not batch:
        return
    try:
        table = RecordTable.from_records(r for _, _, r in batch)
    except ValueError as exc:  # "record N: why", N counted in the batch
        text = str(exc)
        head, _, why = text.partition(": ")
        if head.startswith("record ") and head[7:].isdigit() and 0 < int(head[7:]) <= len(batch):
            line = batch[int(head[7:]) - 1][0]
            raise RecordsFileError(f"{where} line {line}: {why}") from None
        raise RecordsFileError(f"{where}: {text}") from None
    packed = dict(_table_entries(bytes(table.to_bytes())))
    for line, key, _ in batch:
        spool.add(key, line, packed[key])
    batch.clear()


def spool_records(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> RecordSpool:
    """A records file (JSON Lines or CSV, as verifier.records reads it) validated in full
    and spooled; RecordsFileError names the first bad line, or the line of the first
    record whose id an earlier record has. Memory does not grow with the file's size."""
    where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<records>"
    if not isinstance(source, (str, os.PathLike)):
        name = getattr(source, "name", None)
        where = name if isinstance(name, str) else where
    spool = RecordSpool(where)
    try:
        batch: list[tuple[int, bytes, tuple[Any, ...]]] = []
        in_batch: set[bytes] = set()
        rows = _numbered(source, fmt)
        while True:
            try:
                item = next(rows, None)
            except RecordsFileError:
                _pack_batch(spool, batch, where)  # an earlier bad line is named first
                raise
            if item is None:
                break
            number, rec = item
            key = bytes(record_key(rec[0]))
            if key in in_batch or len(batch) >= BATCH:  # a duplicate is found below
                _pack_batch(spool, batch, where)
                in_batch.clear()
                if progress is not None:
                    progress(spool.count)
            batch.append((number, key, rec))
            in_batch.add(key)
        _pack_batch(spool, batch, where)
        _check_unique(spool)
    except BaseException:
        spool.close()
        raise
    return spool


def _check_unique(spool: RecordSpool) -> None:
    first: int | None = None
    for part in range(NPART):
        seen: dict[bytes, int] = {}
        for key, _, line, _ in spool.entries(part):
            prev = seen.get(key)
            if prev is None:
                seen[key] = line
            elif first is None or line < first:  # entries of a partition are in file order
                first = line
    if first is not None:
        raise RecordsFileError(
            f"{spool.where} line {first}: a record with this id is already in the file "
            "(ids must be unique)"
        )


def spool_removals(
    source: str | os.PathLike[str] | IO[bytes], *, fmt: str | None = None
) -> RecordSpool:
    """The ids of a removal file (verifier.records.iter_removals' rules), spooled as keys;
    RecordsFileError names the bad line."""
    spool = RecordSpool()
    try:
        for number, obj, where in _rows(source, fmt, ("id",)):
            spool.where = where
            try:
                key = _removal_key(obj)
            except ValueError as exc:
                raise RecordsFileError(f"{where} line {number}: {exc}") from None
            spool.add(key, number)
    except BaseException:
        spool.close()
        raise
    return spool


def spool_table(table: Any) -> RecordSpool:
    """The records of a RecordTable (the API's already parsed form), spooled."""
    spool = RecordSpool()
    for key, packed in _table_entries(bytes(table.to_bytes())):
        spool.add(key, 0, packed)
    return spool


def spool_keys(packed: bytes | bytearray | memoryview) -> RecordSpool:
    """Packed 16-byte table keys (verifier.records.load_removals), spooled."""
    spool = RecordSpool()
    data = bytes(packed)
    for i in range(0, len(data) - len(data) % 16, 16):
        spool.add(data[i : i + 16], 0)
    return spool


# ---- the old register, one partition at a time ---------------------------------------------


class _OldTable:
    """A published RecordTable read by byte range from its pieces (a few cached)."""

    def __init__(self, client: Any, layout: Layout, info: RecordsInfo) -> None:
        self._client = client
        self._layout = layout
        self._pieces = info.pieces
        self._starts: list[int] = []
        pos = 0
        for _, size in info.pieces:
            self._starts.append(pos)
            pos += size
        self._total = pos
        self._cache: dict[int, bytes] = {}
        h = self.read(0, HEADER)
        if h[:8] != MAGIC:
            raise StoreDataError("register records unusable: not a record table")
        le = int.from_bytes
        self.count = le(h[8:16], "little")
        self.bits = le(h[16:20], "little")
        self.dir_off = le(h[24:32], "little")
        self.index_off = le(h[32:40], "little")
        self.data_off = le(h[40:48], "little")
        self.data_len = le(h[48:56], "little")
        if (
            self.count != info.count
            or not 1 <= self.bits <= MAX_BITS
            or self.dir_off != HEADER
            or self.index_off != HEADER + 4 * ((1 << self.bits) + 1)
            or self.data_off != self.index_off + ENTRY * self.count
            or self.data_off + self.data_len != self._total
        ):
            raise StoreDataError("register records unusable: header does not fit the pieces")

    def read(self, off: int, n: int) -> bytes:
        if n <= 0:
            return b""
        if off < 0 or off + n > self._total:
            raise StoreDataError("register records unusable: a range outside the table")
        from bisect import bisect_right

        from verifier.redis.format import fetch_blobs

        first = bisect_right(self._starts, off) - 1
        last = bisect_right(self._starts, off + n - 1) - 1
        want = [i for i in range(first, last + 1) if i not in self._cache]
        if want:
            got = fetch_blobs(self._client, self._layout, [self._pieces[i][0] for i in want])
            for i, blob in zip(want, got, strict=True):
                if len(blob) != self._pieces[i][1]:
                    raise StoreDataError("a records piece's size does not match the manifest")
                self._cache[i] = blob
        for i in [i for i in self._cache if i < first or i > last]:
            del self._cache[i]
        start = off - self._starts[first]
        if first == last:
            return self._cache[first][start : start + n]
        out = bytearray()
        for i in range(first, last + 1):
            lo = start if i == first else 0
            out += self._cache[i][lo : lo + n - len(out)]
        return bytes(out)

    def partition(self, part: int) -> list[tuple[bytes, int, bytes]]:
        """(key, mix, packed record) of the old records whose mix is in partition `part`."""
        if not self.count:
            return []
        bits = self.bits
        if bits >= PART_BITS:
            lo, hi = part << (bits - PART_BITS), (part + 1) << (bits - PART_BITS)
        else:
            lo = part >> (PART_BITS - bits)
            hi = lo + 1
        d = self.read(self.dir_off + 4 * lo, 4)
        i0 = int.from_bytes(d, "little")
        i1 = int.from_bytes(self.read(self.dir_off + 4 * hi, 4), "little")
        if not 0 <= i0 <= i1 <= self.count:
            raise StoreDataError("register records unusable: damaged bucket directory")
        index = self.read(self.index_off + ENTRY * i0, ENTRY * (i1 - i0))
        picked = []
        for key, unit in struct.iter_unpack("<16sI", index):
            m = mix64(key)
            if m >> 56 == part:
                picked.append((key, m, unit * 4))
        if not picked:
            return []
        lo_off = min(p[2] for p in picked)
        hi_off = min(max(p[2] for p in picked) + 1024, self.data_len)
        data = self.read(self.data_off + lo_off, hi_off - lo_off)
        out = []
        for key, m, off in picked:
            out.append((key, m, _record_at(data, off - lo_off)))
        return out


def _record_at(data: bytes, pos: int) -> bytes:
    """The packed record at `pos` (its size from its own fields), 4-byte aligned."""
    try:
        p = pos + 9 + (16 if data[pos] & 8 else 0) + 4
        for _ in range(3):
            p += 1 + data[p]
    except IndexError:
        raise StoreDataError("register records unusable: a damaged record") from None
    size = (p - pos + 3) & ~3
    if pos + size > len(data):
        raise StoreDataError("register records unusable: a damaged record")
    return data[pos : pos + size]


# ---- planning ----------------------------------------------------------------------------


class RecordsDelta:
    """What a sync changed in the register, for the followers' overlay (the delta's
    `x`, `xa`, `xd` fields, docs/redis.md): every record added or changed (its packed
    bytes differ from the old record's) and the keys of old records taken out, kept
    packed (about the records' packed size). `complete` is False when they do not
    describe the change (the first register, --replace, more than DELTA_MAX_RECORDS
    or DELTA_MAX_BYTES): followers then rewrite the records file."""

    def __init__(self) -> None:
        self.complete = False
        self._added = bytearray()  # key (16), u16 length, packed record; ...
        self._removed = bytearray()  # keys (16 bytes each)
        self._n = 0

    def reset(self, complete: bool) -> None:
        self.complete = complete
        self._added, self._removed, self._n = bytearray(), bytearray(), 0

    def note(self, added: tuple[bytes, bytes] | None = None, removed: bytes | None = None) -> None:
        if not self.complete:
            return
        if added is not None:
            key, packed = added
            self._added += key + len(packed).to_bytes(2, "little") + packed
            self._n += 1
        if removed is not None:
            self._removed += removed
            self._n += 1
        if self._n > DELTA_MAX_RECORDS or len(self._added) > DELTA_MAX_BYTES:
            self.reset(False)  # too large: followers rewrite the records file

    def _pairs(self) -> Iterator[tuple[memoryview, memoryview]]:
        view = memoryview(self._added)
        pos = 0
        while pos < len(view):
            n = int.from_bytes(view[pos + 16 : pos + 18], "little")
            yield view[pos : pos + 16], view[pos + 18 : pos + 18 + n]
            pos += 18 + n

    def fields(self) -> dict[str, bytes]:
        """The delta hash's fields: {} when incomplete, else x, xa (RecordTable bytes of
        the added or changed records; empty when none), xd (sorted packed keys)."""
        if not self.complete:
            return {}
        xa = bytes(RecordTable.from_packed(self._pairs()).to_bytes()) if self._added else b""
        keys = sorted({bytes(self._removed[i : i + 16]) for i in range(0, len(self._removed), 16)})
        return {"x": b"1", "xa": xa, "xd": b"".join(keys)}


def _bits_for(n: int) -> int:
    bits = 1
    while bits < MAX_BITS and (1 << bits) * 4 < n:
        bits += 1
    return bits


def plan_records_stream(
    client: Any,
    layout: Layout,
    old: RecordsInfo | None,
    new: RecordSpool | None,
    *,
    replace: bool,
    removed: RecordSpool | None = None,
    put: Callable[[str, bytes], None],
    delta: RecordsDelta | None = None,
) -> RecordsInfo | None:
    """sync.plan_records' result in bounded memory: `new` (spooled records, or None to
    keep `old`) replaces `old` with `replace`, else is merged into it (a record of `new`
    replaces the one with the same id); then the ids of `removed` are taken out. The
    pieces go to `put(blob id, bytes)` as they are made. `delta`, if given, gets the
    records changed from `old` (RecordsDelta; complete unless --replace replaced them
    or there are more than DELTA_MAX_RECORDS)."""
    if delta is not None:
        delta.reset(True)
    if new is None and (removed is None or not removed.count or old is None):
        return old  # unchanged: a complete, empty delta
    old_table = (
        _OldTable(client, layout, old)
        if old is not None and old.count and (new is None or not replace)
        else None
    )
    if delta is not None and old_table is None:
        # --replace (the old records are not read: the change is unknown) or a first
        # register (followers have no records file to layer it over)
        delta.reset(False)
    merged = RecordSpool()
    try:
        total = 0
        for part in range(NPART):
            gone = {k for k, _, _, _ in removed.entries(part)} if removed is not None else set()
            fresh = {k: (m, p) for k, m, _, p in new.entries(part)} if new is not None else {}
            had: set[bytes] = set()
            if old_table is not None:
                for key, m, packed in old_table.partition(part):
                    had.add(key)
                    if key in gone:
                        if delta is not None:
                            delta.note(removed=key)
                    elif key in fresh:
                        if delta is not None and fresh[key][1] != packed:
                            delta.note(added=(key, fresh[key][1]))
                    else:
                        merged.add(key, 0, packed, m)
                        total += 1
            for key, (m, packed) in fresh.items():
                if key not in gone:
                    merged.add(key, 0, packed, m)
                    total += 1
                    if delta is not None and key not in had:
                        delta.note(added=(key, packed))
        return _write_table(merged, total, put)
    finally:
        merged.close()


def _write_table(merged: RecordSpool, n: int, put: Callable[[str, bytes], None]) -> RecordsInfo:
    if n > 0xFFFFFFFF:
        raise StoreDataError("register records: too many records")
    bits = _bits_for(n)
    nb = 1 << bits
    sections = [_tempfile() for _ in range(3)]
    try:
        dir_f, index_f, data_f = sections
        write_all(dir_f, b"\0\0\0\0")
        done = 0  # index entries so far
        unit = 0  # data so far, in 4-byte units
        scan = 1
        group = 1 if bits >= PART_BITS else NPART
        per_group = (nb // NPART) if bits >= PART_BITS else nb
        for first in range(0, NPART, group):
            entries: list[tuple[int, bytes, bytes]] = []
            for part in range(first, first + group):
                entries += [(m >> (64 - bits), k, p) for k, m, _, p in merged.entries(part)]
            entries.sort()
            counts = [0] * per_group
            base = (first << (bits - PART_BITS)) if bits >= PART_BITS else 0
            index = bytearray()
            data: list[bytes] = []
            for bucket, key, packed in entries:
                counts[bucket - base] += 1
                if unit > 0xFFFFFFFF:
                    raise StoreDataError("register records: more than 16 GiB of records")
                index += key + unit.to_bytes(4, "little")
                data.append(packed)
                unit += len(packed) // 4
            dirs = bytearray()
            for c in counts:
                scan = max(scan, c)
                done += c
                dirs += done.to_bytes(4, "little")
            write_all(dir_f, dirs)
            write_all(index_f, index)
            write_all(data_f, b"".join(data))
        if scan > MAX_SCAN:
            raise StoreDataError("register records: too many ids share one bucket")
        data_len = unit * 4
        dir_off = HEADER
        index_off = dir_off + 4 * (nb + 1)
        data_off = index_off + ENTRY * n
        header = bytearray(HEADER)
        header[0:8] = MAGIC
        for pos, value, size in (
            (8, n, 8),
            (16, bits, 4),
            (20, scan if n else 0, 4),
            (24, dir_off, 8),
            (32, index_off, 8),
            (40, data_off, 8),
            (48, data_len, 8),
            (56, data_off + data_len, 8),
        ):
            header[pos : pos + size] = value.to_bytes(size, "little")
        pieces: list[tuple[str, int]] = []
        buf = bytearray(header)

        def emit(final: bool) -> None:
            nonlocal buf
            if len(buf) >= RECORDS_PIECE or (final and buf):
                piece = bytes(buf)
                buf = bytearray()
                bid = blob_id(piece)
                put(bid, piece)
                pieces.append((bid, len(piece)))

        for fh in sections:
            fh.flush()
            fh.seek(0)
            while True:  # the buffer never holds more than one piece
                chunk = fh.read(RECORDS_PIECE - len(buf))
                if not chunk:
                    break
                buf += chunk
                emit(False)
        emit(True)
        return RecordsInfo(n, tuple(pieces))
    finally:
        for fh in sections:
            fh.close()
