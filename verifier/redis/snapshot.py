"""The per-machine snapshot file: one immutable, versioned file that every process of a
machine maps read-only (docs/redis.md, "One snapshot per machine").

    offset 0     b"QRVSNAP2" and a 4-byte big-endian header length
    offset 12    header JSON (version, seq, created, trust id, byte order, sections)
    offset 4096  sections, each starting on a 4096-byte boundary:
                 trust    the trust-file JSON
                 revoked  the revoked HashSet's slot table (fastpath._hashset.write_table),
                          or (format 4) a reference to it in the sets file
                 registry the registry HashSet's table (absent when no registry is loaded),
                          or a reference as for revoked
                 revoked_overlay / registry_overlay  (format 4, optional) the hashes added
                          then the hashes removed since the sets file was written, packed
                 records  the register records (fastpath._records.RecordTable.to_bytes())
                 pieces   JSON: the Redis pieces ([blob id, bytes]) the records came from
                 overlay  the records changed since the records file was written
                          (a RecordTable with tombstones, fastpath._records; optional)
                 drl      the EU revocation list per kid (verifier.redis.format, optional)
                 valuesets the EU value sets' canonical JSON (optional)

Each section carries its length and CRC-32 in the header, each table its shape and the
round keys it was built with (`table_view` needs them). The records usually live in a
file of their own beside the snapshot (`records` then names it); a version that changes
a few records keeps that file and carries the changed records as an `overlay` section
(its `count` is the merged view's record count), looked up over the file
(fastpath._records: overlay first, a tombstone is a miss). `pieces` always describes the
records FILE (the next full rewrite copies its unchanged pieces). A snapshot with an
overlay says "format": 3, so a reader that does not know overlays refuses it (keeps its
last good snapshot) instead of answering from the file alone.

The hash sets' tables likewise live in a sets file beside the snapshot
(`<name>.sets-<32 hex>`, write_sets_file); a version that changes a few hashes keeps it
and carries per set an overlay section (fastpath._hashset.layered_view: a member is in
the added overlay, or in the table and not in the removed overlay). Such a snapshot says
"format": 4 (a reader of formats 2-3 refuses it). Tables are in the
machine's byte order: the file is a local cache, rebuilt from Redis, never copied
between machines.

Writing is atomic: a temporary file in the same directory, fsync, rename, fsync of the
directory. A process that mapped the previous file keeps it (the old inode lives until
its last mapping goes), so a scan that read `store.replica` once sees one version.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import secrets
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from fastpath._hashset import HashSet, layered_view, table_view
from verifier.redis.format import (
    StoreDataError,
    parse_trust,
    read_drl_section,
    valuesets_of,
    write_drl_section,
)
from verifier.store import Replica

__all__ = ["MAGIC", "Snapshot", "map_snapshot", "read_header", "write_snapshot"]

MAGIC = b"QRVSNAP2"
ALIGN = 4096
HEADER_ROOM = ALIGN - len(MAGIC) - 4
MAX_TRUST_BYTES = 16 * 1024 * 1024


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@contextmanager
def _atomic_file(target: str, mode: str = "wb") -> Iterator[Any]:
    """A temporary file beside `target`, open for writing (`mode`): when the block ends
    without an exception it is flushed, fsynced and renamed over `target`; on any
    exception it is removed and `target` is left as it was."""
    tmp = f"{target}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


SYNC_EVERY = 32 << 20  # written bytes between two fdatasync calls
WRITE_STEP = 128 << 10  # bytes per write() call (see _CrcWriter.write)


class _CrcWriter:
    """A file wrapper that keeps the CRC-32 and length of what goes through it, and
    flushes to disk every SYNC_EVERY bytes: the file goes to the disk in steps while it
    is written, not in one burst of hundreds of MB at the final fsync (which stalled
    every process of a small virtual machine for tens of ms)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.crc = 0
        self.length = 0
        self.unsynced = 0

    def write(self, data: bytes | memoryview) -> int:
        """Write `data` in pieces of at most WRITE_STEP bytes: on a kernel without
        preemption (PREEMPT_NONE, the default of many distributions) a write() of a few
        MiB into the page cache runs unpreempted for milliseconds, which a request
        thread woken on that CPU waits out, whatever the writer's priority."""
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        view = memoryview(data).cast("B")
        written = 0
        for start in range(0, len(view), WRITE_STEP):
            written += int(self.fh.write(view[start : start + WRITE_STEP]))
        self.unsynced += written
        if self.unsynced >= SYNC_EVERY:
            self.unsynced = 0
            self.fh.flush()
            os.fdatasync(self.fh.fileno())
        return written


def _records_bytes(records: Any) -> memoryview | None:
    """The bytes of a RecordTable or of a buffer holding one (not copied)."""
    if records is None:
        return None
    if isinstance(records, (bytes, bytearray, memoryview)):
        return memoryview(records)
    return memoryview(records.to_bytes())


def write_snapshot(
    path: str | os.PathLike[str],
    *,
    version: str,
    seq: int,
    trust_json: bytes,
    trust_id: str,
    revoked: HashSet | None,
    registry: HashSet | None,
    sets_ref: dict[str, Any] | None = None,
    sets_overlay: dict[str, tuple[bytes, bytes, int]] | None = None,
    records: Any = None,
    records_pieces: list[list[Any]] | None = None,
    records_count: int | None = None,
    records_ref: dict[str, Any] | None = None,
    records_overlay: tuple[bytes, int] | None = None,
    created: float | None = None,
    drl: tuple[str, Any] | None = None,
    valuesets: tuple[str, bytes] | None = None,
) -> int:
    """Write a snapshot atomically; returns its size in bytes. The register records are
    either `records` (a RecordTable or its bytes: a section of this file) or `records_ref`
    (a records file beside it, from `write_records_file`). `records_pieces` (the
    manifest's [blob id, bytes] list the records were assembled from) is kept in a
    `pieces` section, so the next build can copy unchanged pieces. `records_overlay`
    (RecordTable bytes, the merged view's count) layers changed records over them.

    The hash sets are either `revoked` / `registry` (tables in this file) or `sets_ref`
    (a sets file beside it, from `write_sets_file`; `revoked` and `registry` are then
    ignored), with `sets_overlay` {"revoked" | "registry": (added packed, removed packed,
    merged count)} layered over that file's tables."""
    if records_overlay is not None and records is None and records_ref is None:
        raise ValueError("a records overlay needs records")
    if sets_overlay and sets_ref is None:
        raise ValueError("a sets overlay needs a sets file")
    if sets_ref is None and revoked is None:
        raise ValueError("a snapshot needs the revoked set")
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    records_data = _records_bytes(records)
    sections: dict[str, Any] = {}
    with _atomic_file(target) as fh:
        pos = ALIGN
        fh.seek(pos)

        def section(name: str, write: Any, extra: dict[str, Any] | None = None) -> None:
            nonlocal pos
            fh.seek(pos)
            crc = _CrcWriter(fh)
            write(crc)
            sections[name] = {
                "offset": pos,
                "length": crc.length,
                "crc": crc.crc,
                **(extra or {}),
            }
            pos = _align(pos + crc.length)

        def table_extra(s: HashSet) -> dict[str, Any]:
            info = s.table_info()
            return {
                "cap": info["cap"],
                "count": info["count"],
                "has_zero": info["has_zero"],
                "seed": info["seed"].hex(),
            }

        section("trust", lambda w: w.write(trust_json))
        if sets_ref is not None:
            for name in ("revoked", "registry"):
                entry = sets_ref.get(name)
                if entry is not None:
                    sections[name] = {"file": sets_ref["file"], **entry}
            for name, (added, removed, merged) in (sets_overlay or {}).items():
                if name not in sections or not (added or removed):
                    continue
                section(
                    f"{name}_overlay",
                    lambda w, a=added, r=removed: (w.write(a), w.write(r)),
                    {"added": len(added) // 16, "removed": len(removed) // 16, "count": merged},
                )
        else:
            if revoked is None:  # checked above; narrows the type
                raise ValueError("a snapshot needs the revoked set")
            section("revoked", revoked.write_table, table_extra(revoked))
            if registry is not None:
                section("registry", registry.write_table, table_extra(registry))
        if records_data is not None:
            section(
                "records",
                lambda w: w.write(records_data),
                {
                    "count": records_count
                    if records_count is not None
                    else None
                    if isinstance(records, (bytes, bytearray, memoryview))
                    else len(records)
                },
            )
        if records_ref is not None:
            sections["records"] = dict(records_ref)
        if records_pieces is not None and (records_data is not None or records_ref):
            pieces = orjson.dumps(records_pieces)
            section("pieces", lambda w: w.write(pieces))
        if records_overlay is not None:
            overlay, merged = records_overlay
            section("overlay", lambda w: w.write(overlay), {"count": merged})
        if drl is not None:
            section("drl", lambda w: write_drl_section(w, drl[1]), {"id": drl[0]})
        if valuesets is not None:
            section("valuesets", lambda w: w.write(valuesets[1]), {"id": valuesets[0]})
        fh.truncate(pos)
        head: dict[str, Any] = {
            "format": 4 if sets_ref is not None else 2 if records_overlay is None else 3,
            "version": version,
            "seq": seq,
            "created": time.time() if created is None else created,
            "trust_id": trust_id,
            "byteorder": sys.byteorder,
            "sections": sections,
        }
        header = orjson.dumps(head)
        if len(header) > HEADER_ROOM:
            raise ValueError("snapshot header too large")
        fh.seek(0)
        fh.write(MAGIC + len(header).to_bytes(4, "big") + header)
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return pos


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a snapshot file (version, seq, sections with offsets and lengths),
    read without mapping it; StoreDataError if it is not a snapshot file."""
    with open(path, "rb") as fh:
        head = fh.read(ALIGN)
    if len(head) < len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
        raise StoreDataError("not a qrverify snapshot file (format 2)")
    hlen = int.from_bytes(head[len(MAGIC) : len(MAGIC) + 4], "big")
    if hlen > HEADER_ROOM:
        raise StoreDataError("snapshot header too large")
    try:
        header = orjson.loads(head[len(MAGIC) + 4 : len(MAGIC) + 4 + hlen])
    except orjson.JSONDecodeError:
        raise StoreDataError("snapshot header is corrupt") from None
    if not isinstance(header, dict):
        raise StoreDataError("snapshot header: unknown format")
    return header


SETS_SUFFIX = ".sets-"
SETS_FORMAT = 4  # a snapshot whose hash sets live in a sets file (maybe with overlays)


def sets_file_name(snapshot_path: str, revoked: Any, registry: Any) -> str:
    """The name stem of the sets file for the sets of a manifest (content-addressed by
    the manifest's chunk lists, `SetInfo.to_obj()`): `<snapshot file name>.sets-<32
    hex>`; write_sets_file adds `-<8 random hex>`, so a file a snapshot names is never
    replaced in place (its tables' round keys are those of the process that wrote it)."""
    digest = hashlib.sha256(
        orjson.dumps([revoked.to_obj(), None if registry is None else registry.to_obj()])
    ).hexdigest()[:32]
    return os.path.basename(snapshot_path) + SETS_SUFFIX + digest


def sets_file_stem(name: str) -> str:
    """The sets_file_name part of a sets file's name (without its random suffix)."""
    return name.rsplit("-", 1)[0]


def write_sets_file(
    snapshot_path: str, name: str, revoked: HashSet, registry: HashSet | None
) -> dict[str, Any]:
    """Write the revoked and registry tables to a file of their own beside the
    snapshot (`name` from sets_file_name, plus a random suffix), atomically (temporary
    file, fsync, rename), each page-aligned with its shape, round keys, length and
    CRC-32. Returns the reference write_snapshot's `sets_ref` takes: {"file",
    "revoked": {...}, "registry": {...} or None}. A version that changes a few hashes
    then writes only a small snapshot with overlays."""
    directory = os.path.dirname(os.path.abspath(snapshot_path))
    name = f"{name}-{secrets.token_hex(4)}"
    target = os.path.join(directory, name)
    ref: dict[str, Any] = {"file": name, "registry": None}
    with _atomic_file(target) as fh:
        pos = 0
        for what, table in (("revoked", revoked), ("registry", registry)):
            if table is None:
                continue
            fh.seek(pos)
            crc = _CrcWriter(fh)
            table.write_table(crc)
            if crc.length != table.nbytes:
                raise StoreDataError(f"sets file: the {what} table was not written whole")
            info = table.table_info()
            ref[what] = {
                "offset": pos,
                "length": crc.length,
                "crc": crc.crc,
                "cap": info["cap"],
                "count": info["count"],
                "has_zero": info["has_zero"],
                "seed": info["seed"].hex(),
            }
            pos = _align(pos + crc.length)
        fh.truncate(max(pos, ALIGN))
    return ref


def _sets_file(
    directory: str,
    sections: dict[str, Any],
    verify: bool,
    counts: bool,
    cache: dict[str, Any] | None,
) -> tuple[dict[str, Any], HashSet, HashSet | None]:
    """The read-only tables of the sets file a snapshot references: (reference, revoked
    table, registry table or None). Checked like sections (shape always; CRC-32 with
    `verify`, counts with `counts`); `cache` keeps the tables of the last sets file
    mapped, so a version that keeps the file maps nothing new for its sets."""
    rev = sections.get("revoked")
    reg = sections.get("registry")
    if not isinstance(rev, dict) or (reg is not None and not isinstance(reg, dict)):
        raise StoreDataError("snapshot header: sets sections invalid")
    name = rev.get("file")
    if not _side_file_name(name, SETS_SUFFIX) or (reg is not None and reg.get("file") != name):
        raise StoreDataError("snapshot header: sets file name invalid")
    key = orjson.dumps([rev, reg]).decode()
    if cache is not None and key in cache:
        return cache[key]  # type: ignore[no-any-return]
    try:
        with open(os.path.join(directory, name), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < ALIGN:
                raise StoreDataError("snapshot sets file is too short")
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise StoreDataError(f"snapshot sets file unusable: {exc.strerror}") from None
    view = memoryview(mm)
    tables: list[HashSet | None] = []
    for what, entry in (("revoked", rev), ("registry", reg)):
        if entry is None:
            tables.append(None)
            continue
        part = _checked_part(
            entry, what, size, view, verify, low=0, kind="table", where="sets file"
        )
        tables.append(_table(part, entry, what, counts))
    revoked = tables[0]
    if revoked is None:  # for mypy: the revoked entry is required above
        raise StoreDataError("snapshot has no revoked table")
    ref = {
        "file": name,
        "revoked": {k: v for k, v in rev.items() if k != "file"},
        "registry": None if reg is None else {k: v for k, v in reg.items() if k != "file"},
    }
    got = (ref, revoked, tables[1])
    if cache is not None:
        cache.clear()
        cache[key] = got
    return got


OVERLAY_MAX_KEYS = 1 << 20  # per side: a reader's cap (the builder rebases far below it)


def _layered(
    table: HashSet, sections: dict[str, Any], name: str, size: int, view: memoryview, verify: bool
) -> HashSet:
    """`table` with the snapshot's `<name>_overlay` section (added keys, then removed
    keys, packed) layered over it, or `table` itself when there is none. The merged
    count must be the header's."""
    got = _section(sections, f"{name}_overlay", size, view, optional=True, verify=verify)
    if got is None:
        return table
    part, entry = got
    added = _int(entry.get("added"), f"{name}_overlay.added")
    removed = _int(entry.get("removed"), f"{name}_overlay.removed")
    count = _int(entry.get("count"), f"{name}_overlay.count")
    if (
        added > OVERLAY_MAX_KEYS
        or removed > OVERLAY_MAX_KEYS
        or (added + removed) * 16 != len(part)
    ):
        raise StoreDataError(f"snapshot {name} overlay: sizes do not match")
    try:
        return layered_view(table, part[: added * 16], part[added * 16 :], count)
    except (TypeError, ValueError) as exc:
        raise StoreDataError(f"snapshot {name} overlay unusable: {exc}") from None


@dataclass(frozen=True)
class Snapshot:
    """A mapped snapshot: the replica built over the mapping, and where it came from."""

    replica: Replica
    created: float
    file_id: tuple[int, int]  # (st_dev, st_ino): a new file means a new version
    size: int
    trust_json: bytes
    records_view: memoryview | None = None  # the records section (a slice of the mapping)
    records_pieces: tuple[tuple[str, int], ...] | None = None  # what they were built from
    records_ref: dict[str, Any] | None = None  # the records file, when not a section
    records_overlay: memoryview | None = None  # the overlay section over that file
    sets_ref: dict[str, Any] | None = None  # the sets file, when the tables are not sections


def _int(value: object, what: str, low: int = 0) -> int:
    if type(value) is not int or value < low:
        raise StoreDataError(f"snapshot header: {what} invalid")
    return value


def _section(
    sections: dict[str, Any],
    name: str,
    size: int,
    view: memoryview,
    *,
    optional: bool = False,
    verify: bool = True,
) -> tuple[memoryview, dict[str, Any]] | None:
    entry = sections.get(name)
    if entry is None:
        if optional:
            return None
        raise StoreDataError(f"snapshot has no {name} section")
    if not isinstance(entry, dict):
        raise StoreDataError(f"snapshot header: {name} section invalid")
    return _checked_part(entry, name, size, view, verify), entry


def _checked_part(
    entry: dict[str, Any],
    name: str,
    size: int,
    view: memoryview,
    verify: bool,
    *,
    low: int = ALIGN,
    kind: str = "section",
    where: str = "file",
) -> memoryview:
    """The bytes a header entry names ({"offset", "length", "crc"}): a page-aligned offset
    of at least `low`, inside the mapped `size`, and (with `verify`) its CRC-32."""
    offset = _int(entry.get("offset"), f"{name}.offset", low)
    length = _int(entry.get("length"), f"{name}.length")
    crc = _int(entry.get("crc"), f"{name}.crc")
    if offset % ALIGN or offset + length > size:
        raise StoreDataError(f"snapshot {name} {kind} lies outside the {where}")
    part = view[offset : offset + length]
    if verify and zlib.crc32(part) != crc:
        raise StoreDataError(f"snapshot {name} {kind} checksum mismatch")
    return part


def _table(part: memoryview, entry: dict[str, Any], name: str, counts: bool) -> HashSet:
    try:
        seed = bytes.fromhex(entry["seed"])
        return table_view(
            part,
            _int(entry.get("cap"), f"{name}.cap", 1),
            _int(entry.get("count"), f"{name}.count"),
            bool(entry.get("has_zero")),
            seed,
            counts,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreDataError(f"snapshot {name} table unusable: {exc}") from None


RECORDS_SUFFIX = ".rec-"


def records_file_name(snapshot_path: str, pieces: Any) -> str:
    """The records file of a snapshot for a records version (content-addressed by the
    manifest's piece list): `<snapshot file name>.rec-<32 hex>`, in the same directory."""
    digest = hashlib.sha256(orjson.dumps([list(p) for p in pieces])).hexdigest()[:32]
    return os.path.basename(snapshot_path) + RECORDS_SUFFIX + digest


def write_records_file(snapshot_path: str, pieces: Any, chunks: Any, count: int) -> dict[str, Any]:
    """Write the register records to their own file beside the snapshot, atomically
    (temporary file, fsync, rename): `chunks` yields the bytes of one RecordTable in
    order (buffers; nothing is assembled in memory). The written table's structure and
    count are checked (StoreDataError) before the rename. Returns the reference
    write_snapshot's `records_ref` takes. A version that keeps its records then rewrites
    only the small snapshot file."""
    from fastpath._records import RecordTable  # type: ignore[import-not-found,unused-ignore]

    directory = os.path.dirname(os.path.abspath(snapshot_path))
    name = records_file_name(snapshot_path, pieces)
    target = os.path.join(directory, name)
    with _atomic_file(target, "w+b") as fh:
        crc = _CrcWriter(fh)
        for chunk in chunks:
            crc.write(chunk)
        fh.flush()
        if crc.length == 0:
            raise StoreDataError("register records are empty")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                found = len(RecordTable(view))  # the table's structure
            except ValueError as exc:
                raise StoreDataError(f"register records unusable: {exc}") from None
            finally:
                view.release()
        if found != count:
            raise StoreDataError("register records: count does not match the manifest")
    return {"file": name, "length": crc.length, "crc": crc.crc, "count": count}


def remove_records_files(
    snapshot_path: str, keep: set[str], suffix: str = RECORDS_SUFFIX
) -> list[int]:
    """Delete the records files (with `suffix` ".sets-": the sets files) of this
    snapshot not named in `keep`; returns read-only descriptors of the deleted files
    (the caller closes them later, so that it, not a worker, is the last to let go of
    their pages)."""
    directory = os.path.dirname(os.path.abspath(snapshot_path))
    prefix = os.path.basename(snapshot_path) + suffix
    held: list[int] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return held
    for name in names:
        if not name.startswith(prefix) or name in keep or ".tmp-" in name:
            continue
        full = os.path.join(directory, name)
        try:
            held.append(os.open(full, os.O_RDONLY))
            os.unlink(full)
        except OSError:
            pass
    return held


def _side_file_name(name: object, suffix: str) -> TypeGuard[str]:
    """True for the plain name of a file beside the snapshot (records or sets): no path,
    not hidden, of the kind `suffix` says."""
    return (
        type(name) is str
        and suffix in name
        and "/" not in name
        and not name.startswith(".")
        and len(name) <= 255
    )


def _records_file(
    directory: str, entry: dict[str, Any], verify: bool, cache: dict[str, Any] | None
) -> tuple[memoryview, dict[str, Any]]:
    """The mapped records file a snapshot references (checked like a section)."""
    name = entry.get("file")
    if not _side_file_name(name, RECORDS_SUFFIX):
        raise StoreDataError("snapshot header: records file name invalid")
    length = _int(entry.get("length"), "records.length")
    crc = _int(entry.get("crc"), "records.crc")
    key = f"{name}:{length}:{crc}"
    if cache is not None and key in cache:
        return cache[key], entry
    try:
        with open(os.path.join(directory, name), "rb") as fh:
            if os.fstat(fh.fileno()).st_size < max(length, 1):
                raise StoreDataError("snapshot records file is too short")
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise StoreDataError(f"snapshot records file unusable: {exc.strerror}") from None
    part = memoryview(mm)[:length]
    if verify and zlib.crc32(part) != crc:
        raise StoreDataError("snapshot records file checksum mismatch")
    if cache is not None:
        cache.clear()
        cache[key] = part
    return part, entry


def _pieces(part: memoryview) -> tuple[tuple[str, int], ...] | None:
    """The records' piece list, or None if it is unusable (the next build then fetches
    every piece)."""
    try:
        data = orjson.loads(bytes(part))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    out: list[tuple[str, int]] = []
    for item in data:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or type(item[0]) is not str
            or type(item[1]) is not int
            or item[1] < 0
        ):
            return None
        out.append((item[0], item[1]))
    return tuple(out)


def _records(
    part: memoryview, over: tuple[memoryview, dict[str, Any]] | None = None, counts: bool = True
) -> Any:
    """The RecordTable of the records (layered over by the overlay section, if any): its
    count is the header's, computed from the overlay's keys and compared with `counts`."""
    try:
        from fastpath._records import RecordTable  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise StoreDataError(
            "snapshot holds register records but this build cannot read them"
        ) from None
    try:
        if over is None:
            return RecordTable(part)
        count = _int(over[1].get("count"), "overlay.count")
        table = RecordTable(part, overlay=RecordTable(over[0]), count=None if counts else count)
    except ValueError as exc:
        raise StoreDataError(f"snapshot records section unusable: {exc}") from None
    if len(table) != count:
        raise StoreDataError("snapshot records overlay: count does not match")
    return table


def _valuesets(part: memoryview, entry: dict[str, Any]) -> Any:
    """The ValueSets of a "valuesets" section: the process's object for that content id
    when it has one (no rebuild per version), else built and checked."""
    bid = entry.get("id")
    if type(bid) is not str:
        raise StoreDataError("snapshot header: valuesets.id invalid")
    return valuesets_of(bid, bytes(part))[1]


def map_snapshot(
    path: str | os.PathLike[str],
    *,
    trust_cache: dict[str, Any] | None = None,
    trust_override: Any = None,
    verify: bool = True,
    check_counts: bool | None = None,
    records_cache: dict[str, Any] | None = None,
    sets_cache: dict[str, Any] | None = None,
) -> Snapshot:
    """Map a snapshot read-only and build its replica over the mapping (no copy of the
    tables). Every table's shape and count, and (with `verify`) every section's CRC-32,
    are checked first: StoreDataError if the file is not a complete, intact snapshot of
    this machine. `trust_cache` maps trust ids to TrustRegistry objects already built;
    `records_cache` keeps the mapping of the records file the last snapshot referenced
    (a version that keeps its records maps nothing new for them); `sets_cache` the same
    for the sets file (the tables are reused; only the small overlays are new).

    A process verifies the checksums of the first file it maps (a file left by a crash
    may be torn); a file that replaces it while it runs was written, fsynced and renamed
    by the machine's builder, so the checks of shape suffice there. `check_counts`
    (default: `verify`) counts every table's entries, reading it whole; without it the
    tables' pages are only touched once each (faulted in here, with the GIL released,
    not by the first lookups), a few ms for 10 M hashes instead of ~50-100."""
    counts = verify if check_counts is None else check_counts
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if st.st_size < ALIGN:
            raise StoreDataError("not a qrverify snapshot file (too short)")
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mm)
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise StoreDataError("not a qrverify snapshot file (format 2)")
    hlen = int.from_bytes(view[len(MAGIC) : len(MAGIC) + 4], "big")
    if hlen > HEADER_ROOM:
        raise StoreDataError("snapshot header too large")
    try:
        header = orjson.loads(bytes(view[len(MAGIC) + 4 : len(MAGIC) + 4 + hlen]))
    except orjson.JSONDecodeError:
        raise StoreDataError("snapshot header is corrupt") from None
    if not isinstance(header, dict) or header.get("format") not in (2, 3, SETS_FORMAT):
        raise StoreDataError("snapshot header: unknown format")
    if header.get("byteorder") != sys.byteorder:
        raise StoreDataError("snapshot was written on a machine of another byte order")
    version, trust_id = header.get("version"), header.get("trust_id")
    seq = _int(header.get("seq"), "seq")
    created = header.get("created")
    sections = header.get("sections")
    if (
        type(version) is not str
        or type(trust_id) is not str
        or not isinstance(created, (int, float))
        or not isinstance(sections, dict)
    ):
        raise StoreDataError("snapshot header fields invalid")
    size = st.st_size
    trust_part, _ = _section(sections, "trust", size, view)  # type: ignore[misc]
    # (the trust section is small: always checked)
    if len(trust_part) > MAX_TRUST_BYTES:
        raise StoreDataError("snapshot trust section too large")
    trust_json = bytes(trust_part)
    rev_entry = sections.get("revoked")
    sets_ref = None
    if isinstance(rev_entry, dict) and "file" in rev_entry:
        if header.get("format") != SETS_FORMAT:
            raise StoreDataError("snapshot header: a sets file needs format 4")
        sets_ref, revoked, registry = _sets_file(
            os.path.dirname(os.path.abspath(path)), sections, verify, counts, sets_cache
        )
        revoked = _layered(revoked, sections, "revoked", size, view, verify)
        if registry is not None:
            registry = _layered(registry, sections, "registry", size, view, verify)
        elif "registry_overlay" in sections:
            raise StoreDataError("snapshot has a registry overlay but no registry")
    else:
        if "revoked_overlay" in sections or "registry_overlay" in sections:
            raise StoreDataError("snapshot has a sets overlay but no sets file")
        rev_part, rev_entry = _section(
            sections,
            "revoked",
            size,
            view,  # type: ignore[misc]
            verify=verify,
        )
        revoked = _table(rev_part, rev_entry, "revoked", counts)
        reg = _section(sections, "registry", size, view, optional=True, verify=verify)
        registry = None if reg is None else _table(reg[0], reg[1], "registry", counts)
    rec_entry = sections.get("records")
    if isinstance(rec_entry, dict) and "file" in rec_entry:
        rec: tuple[memoryview, dict[str, Any]] | None = _records_file(
            os.path.dirname(os.path.abspath(path)), rec_entry, verify, records_cache
        )
    else:
        rec = _section(sections, "records", size, view, optional=True, verify=verify)
    over = _section(sections, "overlay", size, view, optional=True, verify=verify)
    if over is not None and rec is None:
        raise StoreDataError("snapshot has a records overlay but no records")
    records = None if rec is None else _records(rec[0], over, counts)
    pieces = None
    if rec is not None:
        got = _section(sections, "pieces", size, view, optional=True, verify=True)
        pieces = None if got is None else _pieces(got[0])
    drl_part = _section(sections, "drl", size, view, optional=True, verify=verify)
    drl = None if drl_part is None else read_drl_section(drl_part[0])
    drl_id = "" if drl_part is None else str(drl_part[1].get("id", ""))
    vs_part = _section(sections, "valuesets", size, view, optional=True)
    valuesets = None if vs_part is None else _valuesets(vs_part[0], vs_part[1])
    if trust_override is not None:
        trust = trust_override
    elif trust_cache is not None and trust_id in trust_cache:
        trust = trust_cache[trust_id]
    else:
        trust = parse_trust(trust_json)
        if trust_cache is not None:
            trust_cache.clear()
            trust_cache[trust_id] = trust
    replica = Replica(
        trust,
        revoked,
        registry,
        version=version,
        trust_id=trust_id,
        seq=seq,
        records=records,
        drl=drl,
        drl_id=drl_id,
        valuesets=valuesets,
    )
    return Snapshot(
        replica,
        float(created),
        (st.st_dev, st.st_ino),
        size,
        trust_json,
        None if rec is None else rec[0],
        pieces,
        dict(rec[1]) if rec is not None and "file" in rec[1] else None,
        None if over is None else over[0],
        sets_ref,
    )
