"""Sync planner and writer: bring Redis to the state of given trust and revocation data
(the `qrverify sync` command is a thin front over `sync_state`; no argparse here).

Without replace the files are added to what Redis holds (a union: trust keys, revoked
hashes, registry hashes); with --replace Redis ends up holding exactly the given files
(a part not given, e.g. no --trust, is kept; with --replace a revocation file without a
"registry" key removes the registry set).

How it stays safe (layout in verifier/redis/format.py and docs/redis.md):
0. The guard: an empty store (new, flushed, or restarted without persistence) takes a
   first version only with both trust keys and a revocation list, or with `bootstrap`;
   a version without issuer keys is never written; a version that drops more than
   `max_drop` of the revoked hashes needs `allow_drop` (recorded in the manifest, so
   verifiers, which refuse such drops otherwise, accept it).
1. All input is parsed and validated first; an error prints to stderr, exits 2, and
   nothing is written.
2. The new version's chunks, manifest and delta are written under new names (chunks are
   content-addressed, so unchanged ones are reused) with a one-hour expiry.
3. One Lua script checks that `current` still names the version this run started from,
   that every chunk exists, removes the expiries, flips `current` and publishes the new id.
   Readers see the old or the new version, never a mixture. Killed before the flip: the
   leftovers expire, and a rerun writes what is missing and flips. Killed after: done.
4. Old versions (all but the newest two) and the chunks only they used are deleted.

Memory: the input is spooled to temporary files (verifier/redis/spool.py) and each set is
planned and written one bucket at a time (plan_set_stream), so a sync needs about a
partition of its input (1/256) and a few buckets, whatever the input's size. plan_set is
the same computation all in memory, kept as the reference the tests compare against.
Register records likewise: spooled by verifier/redis/recspool.py and built one partition
at a time (plan_records_stream); plan_records is their in-memory reference.

Sequence numbers: each version's is max(previous + 1, the current time in milliseconds),
so a store rebuilt after a data loss still numbers its versions above what verifiers
hold (they refuse a lower one).
"""

from __future__ import annotations

import itertools
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from fastpath._hashset import HashSet, difference_sorted, union_sorted
from verifier.errors import QrverifyError
from verifier.redis.format import (
    CHUNK_ENTRIES,
    RECORDS_PIECE,
    DrlInfo,
    DrlKid,
    Layout,
    Manifest,
    RecordsInfo,
    SetInfo,
    StoreDataError,
    ValueSetsInfo,
    blob_id,
    fetch_blobs,
    fetch_records,
    fetch_set,
    read_current,
    read_manifest,
)

HASH_SIZE = 16
TARGET_BUCKET = 32768  # aim for ~512 KiB chunks
MIN_BUCKET = 4096  # re-bucket when the average falls below this
PENDING_TTL_MS = 3600 * 1000  # unpublished blobs of a killed run expire after an hour
DELTA_TTL_S = 24 * 3600  # followers more than a day behind reload in full
DELTA_MAX_ENTRIES = 262144  # larger changes: followers reload in full
KEEP_VERSIONS = 2
WRITE_BATCH_BYTES = 2 * 1024 * 1024
PROGRESS_MIN_ENTRIES = 100_000
DEFAULT_MAX_DROP = 0.5

# KEYS: current, versions, manifest, blobs...   ARGV: base ("" = none), vid, channel
_FLIP = """
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return {'conflict', cur or ''} end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {'missing', KEYS[i]} end
end
for i = 3, #KEYS do redis.call('PERSIST', KEYS[i]) end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return {'ok', ARGV[2]}
"""


class SyncError(QrverifyError):
    """The sync could not complete (the message says why); nothing was published."""


class SyncConflict(SyncError):
    """Another sync published a version while this one was writing."""


# ---- planning ----------------------------------------------------------------------------


def choose_bits(count: int, old_bits: int | None) -> int:
    """Bucket bits for a set of `count` hashes; keeps `old_bits` while it still fits, so
    small changes keep most chunks unchanged."""
    if old_bits is not None:
        avg = count / (1 << old_bits)
        if avg <= CHUNK_ENTRIES and (avg >= MIN_BUCKET or old_bits == 0):
            return old_bits
    bits = 0
    while bits < 20 and count > TARGET_BUCKET * (1 << bits):
        bits += 1
    return bits


def bucket_ranges(data: bytes, bits: int) -> list[tuple[int, int, int]]:
    """[(bucket, start, end)] entry ranges of each non-empty bucket of sorted packed data."""
    n = len(data) // HASH_SIZE
    if n == 0:
        return []
    if bits == 0:
        return [(0, 0, n)]
    shift = 64 - bits
    out: list[tuple[int, int, int]] = []
    start = 0
    while start < n:
        bucket = int.from_bytes(data[start * HASH_SIZE : start * HASH_SIZE + 8], "big") >> shift
        if bucket + 1 >= (1 << bits):
            end = n
        else:
            bound = ((bucket + 1) << shift).to_bytes(8, "big") + bytes(8)
            lo, hi = start + 1, n
            while lo < hi:  # first entry >= bound
                mid = (lo + hi) // 2
                if data[mid * HASH_SIZE : (mid + 1) * HASH_SIZE] < bound:
                    lo = mid + 1
                else:
                    hi = mid
            end = lo
        out.append((bucket, start, end))
        start = end
    return out


def _pieces(data: bytes) -> list[bytes]:
    step = CHUNK_ENTRIES * HASH_SIZE
    return [data[i : i + step] for i in range(0, len(data), step)]


@dataclass
class SetPlan:
    info: SetInfo | None  # None: no such set (registry absent)
    blobs: dict[str, bytes] = field(default_factory=dict)
    added: bytes | None = b""  # None: delta unknown or too large
    removed: bytes | None = b""
    changed: bool = False
    n_added: int | None = None  # counts kept when the bytes were not (over the delta cap)
    n_removed: int | None = None

    def counts(self) -> tuple[int | None, int | None]:
        """(hashes added, removed), or None where unknown (a set written in full)."""
        a = self.n_added
        r = self.n_removed
        if a is None and self.added is not None:
            a = len(self.added) // HASH_SIZE
        if r is None and self.removed is not None:
            r = len(self.removed) // HASH_SIZE
        return a, r

    @property
    def delta_size(self) -> int | None:
        if self.added is None or self.removed is None:
            return None
        return (len(self.added) + len(self.removed)) // HASH_SIZE


def _chunks_of(bucket: int, content: bytes, blobs: dict[str, bytes]) -> list[tuple[int, str, int]]:
    out = []
    for piece in _pieces(content):
        bid = blob_id(piece)
        blobs[bid] = piece
        out.append((bucket, bid, len(piece) // HASH_SIZE))
    return out


def _full_plan(content: bytes, bits: int, added: bytes | None, removed: bytes | None) -> SetPlan:
    blobs: dict[str, bytes] = {}
    chunks: list[tuple[int, str, int]] = []
    for bucket, start, end in bucket_ranges(content, bits):
        chunks += _chunks_of(bucket, content[start * HASH_SIZE : end * HASH_SIZE], blobs)
    info = SetInfo(bits, len(content) // HASH_SIZE, tuple(chunks))
    return SetPlan(info, blobs, added, removed, True)


def plan_set(
    client: redis.Redis,
    layout: Layout,
    old: SetInfo | None,
    data: bytes | None,
    *,
    replace: bool,
    absent_removes: bool = False,
    default_empty: bool = False,
    removed: bytes | None = None,
) -> SetPlan:
    """How one set changes: `data` (packed, any order, duplicates allowed) is added to
    `old`, or replaces it, and then the hashes of `removed` are taken out. With data and
    removed None the set is kept as it is (an absent `old` stays absent, or becomes empty
    if `default_empty`), or dropped if `absent_removes`."""
    if data is None and not removed:
        if absent_removes:
            return SetPlan(None, added=None, removed=None, changed=old is not None)
        if old is None and default_empty:
            return SetPlan(SetInfo(0, 0, ()))
        return SetPlan(old)
    incoming = HashSet(data or b"")
    content = incoming.to_packed()  # sorted, unique
    gone = HashSet(removed).to_packed() if removed else b""
    if gone:
        content = difference_sorted(content, gone)
    if old is None:
        return _full_plan(content, choose_bits(len(content) // HASH_SIZE, None), None, None)
    estimate = len(content) // HASH_SIZE if replace else old.count + len(content) // HASH_SIZE
    bits = choose_bits(estimate, old.bits)
    if bits != old.bits:
        old_content = fetch_set(client, layout, old)
        new = content if replace else union_sorted(old_content, content)
        if gone:
            new = difference_sorted(new, gone)
        added = difference_sorted(new, old_content)
        dropped = difference_sorted(old_content, new)
        plan = _full_plan(new, bits, added, dropped)
        plan.changed = bool(added or dropped)
        return plan
    # Same bucketing: touch only the buckets that change.
    by_bucket: dict[int, list[tuple[int, str, int]]] = {}
    for chunk in old.chunks:
        by_bucket.setdefault(chunk[0], []).append(chunk)
    ranges = {b: (s, e) for b, s, e in bucket_ranges(content, bits)}
    gone_ranges = {b: (s, e) for b, s, e in bucket_ranges(gone, bits)}
    buckets = sorted(set(ranges) | set(gone_ranges) | (set(by_bucket) if replace else set()))
    blobs: dict[str, bytes] = {}
    added_parts: list[bytes] = []
    removed_parts: list[bytes] = []
    for bucket in buckets:
        start, end = ranges.get(bucket, (0, 0))
        part = content[start * HASH_SIZE : end * HASH_SIZE]
        gstart, gend = gone_ranges.get(bucket, (0, 0))
        gone_part = gone[gstart * HASH_SIZE : gend * HASH_SIZE]
        old_chunks = by_bucket.get(bucket, [])
        if replace and [blob_id(p) for p in _pieces(part)] == [c[1] for c in old_chunks]:
            continue
        old_part = b"".join(
            fetch_blobs(client, layout, [c[1] for c in old_chunks], [c[2] for c in old_chunks])
        )
        # Sorted merges within the bucket.
        new_part = part if replace else union_sorted(old_part, part)
        if gone_part:
            new_part = difference_sorted(new_part, gone_part)
        add = difference_sorted(new_part, old_part)
        rem = difference_sorted(old_part, new_part)
        if not add and not rem:
            continue
        added_parts.append(add)
        removed_parts.append(rem)
        new_chunks = _chunks_of(bucket, new_part, blobs)
        if new_chunks:
            by_bucket[bucket] = new_chunks
        else:
            by_bucket.pop(bucket, None)
    chunks = tuple(c for b in sorted(by_bucket) for c in by_bucket[b])
    added_all, removed_all = b"".join(added_parts), b"".join(removed_parts)
    info = SetInfo(bits, sum(c[2] for c in chunks), chunks)
    return SetPlan(info, blobs, added_all, removed_all, bool(added_all or removed_all))


# ---- planning in bounded memory -------------------------------------------------------------


class BlobWriter:
    """Writes blobs as the planner produces them, in pipelined batches of about
    WRITE_BATCH_BYTES, each with the pending expiry (only the flip makes them permanent),
    skipping blobs Redis already holds. `after_write(n)` after each batch that wrote
    something (tests crash a run there); a progress bar of bytes when asked."""

    def __init__(
        self,
        client: redis.Redis,
        layout: Layout,
        *,
        progress: bool = False,
        after_write: Hook | None = None,
    ) -> None:
        from tqdm import tqdm

        self._client = client
        self._layout = layout
        self._after = after_write
        self._batch: list[tuple[str, bytes]] = []
        self._bytes = 0
        self._seen: set[str] = set()
        self.written = 0
        self._bar = tqdm(
            unit="B",
            unit_scale=True,
            desc="sync",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        )

    def put(self, bid: str, data: bytes) -> None:
        if bid in self._seen:
            return
        self._seen.add(bid)
        self._batch.append((bid, data))
        self._bytes += len(data)
        if self._bytes >= WRITE_BATCH_BYTES:
            self.flush()

    def put_now(self, bid: str, data: bytes) -> None:
        """put, then write what is batched (1 MiB record pieces: nothing accumulates)."""
        self.put(bid, data)
        self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        pipe = self._client.pipeline(transaction=False)
        for bid, _ in self._batch:
            pipe.exists(self._layout.blob(bid))
        there = pipe.execute()
        n = 0
        for (bid, data), exists in zip(self._batch, there, strict=True):
            if not exists:
                pipe.set(self._layout.blob(bid), data, px=PENDING_TTL_MS)
                n += 1
        if n:
            pipe.execute()
        self.written += n
        self._bar.update(self._bytes)
        self._batch.clear()
        self._bytes = 0
        if n and self._after is not None:
            self._after(self.written)

    def close(self) -> None:
        self._bar.close()


class _OldSet:
    """A published set read one of its buckets at a time (the last one cached)."""

    def __init__(self, client: redis.Redis, layout: Layout, info: SetInfo) -> None:
        self.bits = info.bits
        self._client = client
        self._layout = layout
        self._by_bucket: dict[int, list[tuple[int, str, int]]] = {}
        for chunk in info.chunks:
            self._by_bucket.setdefault(chunk[0], []).append(chunk)
        self._cached: tuple[int, bytes] = (-1, b"")

    def load(self, unit: int) -> bytes:
        if self._cached[0] != unit:
            chunks = self._by_bucket.get(unit, [])
            data = b"".join(
                fetch_blobs(
                    self._client, self._layout, [c[1] for c in chunks], [c[2] for c in chunks]
                )
            )
            self._cached = (unit, data)
        return self._cached[1]


def _first_index(data: bytes, bound: int) -> int:
    """Index of the first packed entry whose top 64 bits are >= bound."""
    key = bound.to_bytes(8, "big") + bytes(8) if bound < (1 << 64) else None
    n = len(data) // HASH_SIZE
    if key is None:
        return n
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if data[mid * HASH_SIZE : (mid + 1) * HASH_SIZE] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _take(src: Any, lo: int, hi: int) -> bytes:
    """The entries of `src` (units of `src.bits` top bits, `src.load(unit)` sorted) whose
    top 64 bits lie in [lo, hi)."""
    shift = 64 - src.bits
    first, last = lo >> shift, (hi - 1) >> shift
    out: list[bytes] = []
    for unit in range(first, last + 1):
        content = src.load(unit)
        if not content:
            continue
        ulo, uhi = unit << shift, (unit + 1) << shift
        if lo <= ulo and uhi <= hi:
            out.append(content)
        else:
            start = _first_index(content, max(lo, ulo))
            end = _first_index(content, min(hi, uhi))
            out.append(content[start * HASH_SIZE : end * HASH_SIZE])
    return b"".join(out)


def plan_set_stream(
    client: redis.Redis,
    layout: Layout,
    old: SetInfo | None,
    data: Any,
    *,
    replace: bool,
    writer: BlobWriter,
    absent_removes: bool = False,
    default_empty: bool = False,
    removed: Any = None,
) -> SetPlan:
    """plan_set's result, in bounded memory: `data` and `removed` are spools
    (verifier.redis.spool, or packed bytes) read one partition at a time, the old set one
    bucket at a time, and the new chunks go to `writer` as they are made. Memory: about
    one partition of the input (1/256) plus one bucket, and the delta up to
    DELTA_MAX_ENTRIES (beyond, only its counts are kept and followers reload in full)."""
    from verifier.redis.spool import NPART, SortedParts, as_spool

    data_spool, gone_spool = as_spool(data), as_spool(removed)
    if data_spool is None and (gone_spool is None or not gone_spool.count):
        if absent_removes:
            return SetPlan(None, added=None, removed=None, changed=old is not None)
        if old is None and default_empty:
            return SetPlan(SetInfo(0, 0, ()))
        return SetPlan(old)
    parts = SortedParts(data_spool, gone_spool)
    gone = SortedParts(gone_spool) if gone_spool is not None and gone_spool.count else None
    try:
        count = parts.count
        if old is None:
            bits = choose_bits(count, None)
        else:
            bits = choose_bits(count if replace else old.count + count, old.bits)
        same = old is not None and bits == old.bits
        shift = 64 - bits
        # the buckets to look at: those the input or the removals touch, and, when the old
        # set is rewritten (replace, new bucketing), every bucket it has
        buckets: set[int] = set()
        for source in (parts, gone):
            if source is None:
                continue
            for unit in range(NPART):
                content = source.load(unit)
                if bits <= 8:
                    if content:
                        buckets.add(unit >> (8 - bits))
                else:
                    buckets.update(b for b, _, _ in bucket_ranges(content, bits))
        by_bucket: dict[int, list[tuple[int, str, int]]] = {}
        old_src: _OldSet | None = None
        if old is not None:
            for chunk in old.chunks:
                by_bucket.setdefault(chunk[0], []).append(chunk)
            if not same:
                old_src = _OldSet(client, layout, old)
                old_shift = 64 - old.bits
                for b in by_bucket:  # an old bucket's range in the new bucketing
                    lo, hi = b << old_shift, (b + 1) << old_shift
                    buckets.update(range(lo >> shift, ((hi - 1) >> shift) + 1))
                by_bucket = {}
            elif replace:
                buckets.update(by_bucket)
        track = old is not None
        added: list[bytes] | None = [] if track else None
        dropped: list[bytes] | None = [] if track else None
        n_add = n_rem = 0
        for bucket in sorted(buckets):
            lo, hi = bucket << shift, (bucket + 1) << shift
            part = _take(parts, lo, hi)
            gone_part = _take(gone, lo, hi) if gone is not None else b""
            old_chunks = by_bucket.get(bucket, []) if same else []
            if (
                same
                and replace
                and [blob_id(p) for p in _pieces(part)] == [c[1] for c in old_chunks]
            ):
                continue
            if old is None:
                old_part = b""
            elif same:
                old_part = b"".join(
                    fetch_blobs(
                        client, layout, [c[1] for c in old_chunks], [c[2] for c in old_chunks]
                    )
                )
            else:
                old_part = _take(old_src, lo, hi)
            new_part = part if replace or old is None else union_sorted(old_part, part)
            if gone_part:
                new_part = difference_sorted(new_part, gone_part)
            if track:
                add = difference_sorted(new_part, old_part)
                rem = difference_sorted(old_part, new_part)
                if same and not add and not rem:
                    continue
                n_add += len(add) // HASH_SIZE
                n_rem += len(rem) // HASH_SIZE
                if added is not None and dropped is not None:
                    added.append(add)
                    dropped.append(rem)
                    if n_add + n_rem > DELTA_MAX_ENTRIES:
                        added = dropped = None  # too large for a delta: counts only
            new_chunks: list[tuple[int, str, int]] = []
            for piece in _pieces(new_part):
                bid = blob_id(piece)
                writer.put(bid, piece)
                new_chunks.append((bucket, bid, len(piece) // HASH_SIZE))
            if new_chunks:
                by_bucket[bucket] = new_chunks
            else:
                by_bucket.pop(bucket, None)
        chunks = tuple(c for b in sorted(by_bucket) for c in by_bucket[b])
        info = SetInfo(bits, sum(c[2] for c in chunks), chunks)
        if not track:
            return SetPlan(info, added=None, removed=None, changed=True)
        return SetPlan(
            info,
            added=None if added is None else b"".join(added),
            removed=None if dropped is None else b"".join(dropped),
            changed=bool(n_add or n_rem),
            n_added=n_add,
            n_removed=n_rem,
        )
    finally:
        parts.close()
        if gone is not None:
            gone.close()


def merge_trust(old_json: bytes | None, new: Any, replace: bool) -> bytes:
    """Canonical trust JSON: the new registry, or (without replace) the union of keys."""
    from keys.registry import TrustRegistry

    if new is None:
        return old_json if old_json is not None else TrustRegistry.empty().to_json()
    if replace or old_json is None:
        return bytes(new.to_json())
    old = TrustRegistry.from_json(old_json)
    entries = list(old.to_dict()["keys"])
    seen = {orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in entries}
    for entry in new.to_dict()["keys"]:
        key = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        if key not in seen:
            seen.add(key)
            entries.append(entry)
    return bytes(TrustRegistry.from_dict({"keys": entries}).to_json())


def plan_records(
    client: redis.Redis,
    layout: Layout,
    old: RecordsInfo | None,
    new: Any,
    *,
    replace: bool,
    removed: bytes | None = None,
) -> tuple[RecordsInfo | None, dict[str, bytes]]:
    """The in-memory reference of recspool.plan_records_stream (which sync uses): the
    records of the next version and their pieces: `new` (a RecordTable, or None to
    keep `old`) replaces `old` with --replace, else is merged into it (a record of `new`
    replaces the one with the same id); then the records whose table keys `removed`
    (packed 16-byte keys, verifier.records.load_removals) lists are taken out (an id
    Redis does not hold is ignored)."""
    if new is None and (not removed or old is None):
        return old, {}
    from fastpath._records import RecordTable

    gone = HashSet(removed) if removed else None
    merged: Any = iter(()) if new is None else new.records()
    if old is not None and (new is None or not replace) and old.count:
        current = fetch_records(client, layout, old)
        kept = (r for r in current.records() if new is None or not new.count_present(r[0]))
        merged = itertools.chain(kept, merged)
    if gone is not None:
        merged = (r for r in merged if r[0] not in gone)
    merged = RecordTable.from_records(merged).records()
    # Rebuilt from table order (the index order), so the same records give the same
    # bytes whatever order the file had: a rerun publishes nothing.
    table = RecordTable.from_records(merged)
    data = bytes(table.to_bytes())
    blobs: dict[str, bytes] = {}
    pieces: list[tuple[str, int]] = []
    for start in range(0, len(data), RECORDS_PIECE):
        piece = data[start : start + RECORDS_PIECE]
        bid = blob_id(piece)
        blobs[bid] = piece
        pieces.append((bid, len(piece)))
    return RecordsInfo(len(table), tuple(pieces)), blobs


def plan_drl(
    old: DrlInfo | None, new: Any, *, replace: bool
) -> tuple[DrlInfo | None, dict[str, bytes]]:
    """The EU revocation list of the next version and its new chunks. `new` is
    verifier.revocations.parse_drl's result (kid -> (mask, expires, HashSet)) or None to
    keep `old`. Each kid of `new` replaces that kid's entry (the DRL lists a kid's
    batches in full); kids not in `new` are kept, or dropped with `replace`. Chunks are
    content-addressed sorted hashes, so an unchanged kid writes nothing."""
    if new is None:
        return old, {}
    kids: dict[bytes, DrlKid] = {}
    if old is not None and not replace:
        kids = {k.kid: k for k in old.kids}
    blobs: dict[str, bytes] = {}
    for kid, (mask, expires, hashes) in new.items():
        packed = hashes.to_packed()  # sorted, unique
        chunks: list[tuple[str, int]] = []
        for piece in _pieces(packed):
            bid = blob_id(piece)
            blobs[bid] = piece
            chunks.append((bid, len(piece) // HASH_SIZE))
        kids[kid] = DrlKid(kid, mask, expires, len(packed) // HASH_SIZE, tuple(chunks))
    ordered = tuple(kids[k] for k in sorted(kids))
    return DrlInfo(sum(k.count for k in ordered), ordered), blobs


def plan_valuesets(
    old: ValueSetsInfo | None, new: bytes | None
) -> tuple[ValueSetsInfo | None, dict[str, bytes]]:
    """The value sets of the next version: `new` (verifier.valuesets.codes_json bytes)
    replaces them as a whole; None keeps `old`."""
    if new is None:
        return old, {}
    bid = blob_id(new)
    return ValueSetsInfo(bid, len(new)), {bid: new}


# ---- writing -----------------------------------------------------------------------------


@dataclass
class SyncResult:
    version: str
    changed: bool
    keys: int
    revoked: int
    registry: int | None
    revoked_added: int | None = 0
    revoked_removed: int | None = 0
    registry_added: int | None = 0
    registry_removed: int | None = 0
    records: int | None = None
    drl: int | None = None  # DRL hashes (all kids), None when Redis holds no DRL
    drl_kids: int = 0
    valuesets: str | None = None  # content id of the value sets, None: the packaged ones
    blobs_written: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        def delta(a: int | None, r: int | None) -> str:
            return "" if a is None or r is None else f" (+{a} -{r})"

        head = (
            f"published version {self.version}"
            if self.changed
            else f"already up to date at version {self.version}"
        )
        reg = (
            "none"
            if self.registry is None
            else f"{self.registry}{delta(self.registry_added, self.registry_removed)}"
        )
        return (
            f"qrverify sync: {head}: keys {self.keys}, revoked {self.revoked}"
            f"{delta(self.revoked_added, self.revoked_removed)}, registry {reg}"
            f"{'' if self.records is None else f', records {self.records}'}"
            f"{'' if self.drl is None else f', drl {self.drl} ({self.drl_kids} kids)'}"
            f"{'' if self.valuesets is None else f', value sets {self.valuesets[:12]}'}"
            f" ({self.seconds:.2f} s)"
        )


Hook = Callable[[int], None]


@dataclass(frozen=True)
class Guard:
    """What a sync may do beyond adding: start an empty store from partial data
    (`bootstrap`), drop more than `max_drop` of the revoked hashes (`allow_drop`)."""

    bootstrap: bool = False
    allow_drop: bool = False
    max_drop: float = DEFAULT_MAX_DROP


def sync_state(
    client: redis.Redis,
    *,
    trust: Any = None,
    revocations: Any = None,
    replace: bool = False,
    namespace: str = "qrverify",
    progress: bool = False,
    after_write: Hook | None = None,
    attempts: int = 3,
    guard: Guard | None = None,
    records: Any = None,
    drl: Any = None,
    valuesets: bytes | None = None,
    records_removed: Any = None,
) -> SyncResult:
    """Write the new state and publish it (see the module docstring). `trust` is a
    TrustRegistry or None, `revocations` a verifier.revocations.Revocations (packed bytes)
    or a verifier.redis.spool.SpooledRevocations (bounded memory), or None.
    `records` is a verifier.redis.recspool.RecordSpool (spool_records: validated, bounded
    memory) or a fastpath._records.RecordTable (already parsed: a malformed file never
    gets here), or None to keep the records Redis holds. `drl` is
    verifier.revocations.parse_drl's result or None (see plan_drl); `valuesets` the
    canonical value sets (verifier.valuesets.codes_json) or None to keep Redis' own.
    `records_removed`: the table keys of register records to remove, spooled
    (recspool.spool_removals) or packed bytes (verifier.records.load_removals).
    `after_write(n)` is called after each batch of blobs (tests use it to crash a run).
    SyncError (nothing published) when the guard refuses."""
    from verifier.redis.recspool import RecordSpool, spool_keys, spool_table

    own: list[RecordSpool] = []  # spools made here from in-memory input, closed here
    if records is not None and not isinstance(records, RecordSpool):
        records = spool_table(records)
        own.append(records)
    if records_removed is not None and not isinstance(records_removed, RecordSpool):
        records_removed = spool_keys(records_removed)
        own.append(records_removed)
    try:
        return _sync_attempts(
            client,
            trust,
            revocations,
            replace,
            namespace,
            progress,
            after_write,
            attempts,
            guard,
            records,
            drl,
            valuesets,
            records_removed,
        )
    finally:
        for spool in own:
            spool.close()


def _sync_attempts(
    client: redis.Redis,
    trust: Any,
    revocations: Any,
    replace: bool,
    namespace: str,
    progress: bool,
    after_write: Hook | None,
    attempts: int,
    guard: Guard | None,
    records: Any,
    drl: Any,
    valuesets: bytes | None,
    records_removed: Any,
) -> SyncResult:
    layout = Layout(namespace)
    flip = client.register_script(_FLIP)
    started = time.perf_counter()
    guard = guard or Guard()
    for attempt in range(attempts):
        try:
            result = _sync_once(
                client,
                layout,
                flip,
                trust,
                revocations,
                replace,
                progress,
                after_write,
                guard,
                records,
                drl,
                valuesets,
                records_removed,
            )
        except SyncConflict:
            if attempt + 1 == attempts:
                raise
            continue
        result.seconds = time.perf_counter() - started
        return result
    raise SyncError("unreachable")  # pragma: no cover


def _sync_once(
    client: redis.Redis,
    layout: Layout,
    flip: Any,
    trust: Any,
    revocations: Any,
    replace: bool,
    progress: bool,
    after_write: Hook | None,
    guard: Guard,
    records: Any = None,
    drl: Any = None,
    valuesets: bytes | None = None,
    records_removed: Any = None,
) -> SyncResult:
    base_vid = read_current(client, layout)
    base: Manifest | None = None
    if base_vid is None and not guard.bootstrap and (trust is None or revocations is None):
        raise SyncError(
            "Redis holds no qrverify data (new, flushed, or restarted without persistence): "
            "its first version needs both --trust and a complete --revocations list, "
            "else verifiers would take a partial state as the truth; give --bootstrap to "
            "start from these files anyway"
        )
    if base_vid is not None:
        try:
            base = read_manifest(client, layout, base_vid)
        except StoreDataError as exc:
            if not replace:
                raise SyncError(f"{exc}; rerun with --replace to write a complete state") from None
    old_trust_json = None
    if base is not None:
        old_trust_json = fetch_blobs(client, layout, [base.trust_blob])[0]
    trust_json = merge_trust(old_trust_json, trust, replace)
    trust_id = blob_id(trust_json)
    from keys.registry import TrustRegistry

    trust_keys = len(TrustRegistry.from_json(trust_json))
    if trust_keys == 0:
        raise SyncError(
            "the new version would hold no issuer keys (verifiers refuse it); "
            "give --trust FILE with at least one usable key"
        )

    rev_data = None if revocations is None else revocations.revoked
    reg_data = None if revocations is None else revocations.registry
    rev_gone = None if revocations is None else revocations.removed
    reg_gone = None if revocations is None else revocations.registry_removed
    if replace and base is not None and rev_data is not None:
        _check_drop_early(base, rev_data, rev_gone, guard)
    if _has_entries(reg_gone) and reg_data is None and (base is None or base.registry is None):
        # removing from a registry that is not there would start an empty one, which
        # refuses every certificate the rules want in the register
        raise SyncError(
            "the removals list registry hashes, but the store holds no registry set "
            "to remove them from; nothing written"
        )
    writer = BlobWriter(client, layout, progress=progress, after_write=after_write)
    try:
        return _plan_and_publish(
            client,
            layout,
            flip,
            writer,
            base,
            base_vid,
            trust_json,
            trust_id,
            trust_keys,
            replace,
            guard,
            records,
            drl,
            valuesets,
            records_removed,
            rev_data,
            reg_data,
            rev_gone,
            reg_gone,
            revocations is not None,
        )
    finally:
        writer.close()


def _has_entries(value: Any) -> bool:
    """True for packed bytes or a spool holding at least one hash."""
    if value is None:
        return False
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value) > 0
    return bool(value.count)


def _check_drop_early(base: Manifest, data: Any, gone: Any, guard: Guard) -> None:
    """With --replace the new revoked count is the input's distinct hashes: a drop the
    guard refuses is found before anything is written."""
    if guard.allow_drop:
        return
    from verifier.redis.spool import SortedParts, as_spool

    parts = SortedParts(as_spool(data), as_spool(gone))
    try:
        count = parts.count
    finally:
        parts.close()
    if count < base.revoked.count * (1.0 - guard.max_drop):
        raise SyncError(
            f"the revoked set would shrink from {base.revoked.count} to {count} (more than "
            f"{guard.max_drop:.0%}); verifiers refuse such a version unless the drop is "
            "confirmed with --allow-drop"
        )


def _plan_and_publish(
    client: redis.Redis,
    layout: Layout,
    flip: Any,
    writer: BlobWriter,
    base: Manifest | None,
    base_vid: str | None,
    trust_json: bytes,
    trust_id: str,
    trust_keys: int,
    replace: bool,
    guard: Guard,
    records: Any,
    drl: Any,
    valuesets: bytes | None,
    records_removed: Any,
    rev_data: Any,
    reg_data: Any,
    rev_gone: Any,
    reg_gone: Any,
    have_revocations: bool,
) -> SyncResult:
    rev = plan_set_stream(
        client,
        layout,
        base.revoked if base else None,
        rev_data,
        replace=replace,
        writer=writer,
        default_empty=True,
        removed=rev_gone,
    )
    drop_registry = replace and have_revocations and reg_data is None
    reg = plan_set_stream(
        client,
        layout,
        base.registry if base else None,
        reg_data,
        replace=replace,
        writer=writer,
        absent_removes=drop_registry,
        removed=None if drop_registry else reg_gone,  # a dropped set has nothing to remove
    )
    rev_info = rev.info
    if rev_info is None:  # the revoked set always exists
        raise SyncError("internal error: no revoked set planned")
    # --allow-drop republishes an unchanged state so that verifiers which refused it (a
    # drop against what they hold) see the operator's confirmation.
    old_records = base.records if base is not None else None
    from verifier.redis.recspool import RecordsDelta, plan_records_stream

    rec_delta = RecordsDelta()
    rec_info = plan_records_stream(
        client,
        layout,
        old_records,
        records,
        replace=replace,
        removed=records_removed,
        put=writer.put_now,
        delta=rec_delta,
    )
    old_drl = base.drl if base is not None else None
    drl_info, drl_blobs = plan_drl(old_drl, drl, replace=replace)
    old_vs = base.valuesets if base is not None else None
    vs_info, vs_blobs = plan_valuesets(old_vs, valuesets)
    changed = (
        base is None
        or base.trust_blob != trust_id
        or rev.changed
        or reg.changed
        or rec_info != old_records
        or drl_info != old_drl
        or vs_info != old_vs
        or (guard.allow_drop and not base.drop_confirmed)
    )
    if not changed and base is not None:
        return _result(base, False, rev, reg)
    dropped = base is not None and rev_info.count < base.revoked.count * (1.0 - guard.max_drop)
    if dropped and not guard.allow_drop:
        raise SyncError(
            f"the revoked set would shrink from {base.revoked.count if base else 0} to "
            f"{rev_info.count} (more than {guard.max_drop:.0%}); verifiers refuse such a "
            "version unless the drop is confirmed with --allow-drop"
        )
    held = 0 if old_drl is None else old_drl.count
    kept = 0 if drl_info is None else drl_info.count
    if kept < held * (1.0 - guard.max_drop) and not guard.allow_drop:
        raise SyncError(
            f"the EU revocation list would shrink from {held} to {kept} hashes (more than "
            f"{guard.max_drop:.0%}); verifiers refuse such a version unless the drop is "
            "confirmed with --allow-drop"
        )

    seq = max((base.seq + 1) if base is not None else 1, int(time.time() * 1000))
    vid = f"{seq}-{secrets.token_hex(8)}"
    manifest = Manifest(
        vid,
        seq,
        base_vid,
        time.time(),
        trust_id,
        trust_keys,
        rev_info,
        reg.info,
        drop_confirmed=guard.allow_drop,
        records=rec_info,
        drl=drl_info,
        valuesets=vs_info,
    )
    blobs: dict[str, bytes] = {trust_id: trust_json}  # the small ones, kept for a rewrite
    blobs.update(drl_blobs)
    blobs.update(vs_blobs)
    for bid, data in blobs.items():
        writer.put(bid, data)
    writer.flush()
    written = writer.written
    client.set(layout.manifest(vid), manifest.to_json(), px=PENDING_TTL_MS)
    _write_delta(
        client,
        layout,
        vid,
        base_vid,
        rev,
        reg,
        same_registry=(base is not None and (base.registry is None) == (reg.info is None)),
        records=rec_delta.fields(),
    )
    keys = [layout.current, layout.versions, layout.manifest(vid)]
    keys += [layout.blob(b) for b in dict.fromkeys(manifest.blob_ids())]
    for _ in range(3):
        status, detail = (
            _text(x) for x in flip(keys=keys, args=[base_vid or "", vid, layout.channel])
        )
        if status == "ok":
            break
        if status == "conflict":
            raise SyncConflict(f"another sync published version {detail or '(none)'} meanwhile")
        missing = detail.rsplit(":", 1)[-1]
        if missing in blobs:  # garbage-collected by a concurrent sync: write it again
            client.set(layout.blob(missing), blobs[missing], px=PENDING_TTL_MS)
            continue
        raise SyncError(f"Redis lost data this version needs ({detail}); rerun the sync")
    else:
        raise SyncError("could not publish: chunks keep disappearing; rerun the sync")
    _collect_garbage(client, layout, vid)
    result = _result(manifest, True, rev, reg)
    result.blobs_written = written
    return result


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _result(manifest: Manifest, changed: bool, rev: SetPlan, reg: SetPlan) -> SyncResult:
    rev_added, rev_removed = rev.counts()
    reg_added, reg_removed = reg.counts()

    return SyncResult(
        version=manifest.version,
        changed=changed,
        keys=manifest.trust_keys,
        revoked=manifest.revoked.count,
        registry=None if manifest.registry is None else manifest.registry.count,
        revoked_added=rev_added,
        revoked_removed=rev_removed,
        registry_added=reg_added,
        registry_removed=reg_removed,
        records=None if manifest.records is None else manifest.records.count,
        drl=None if manifest.drl is None else manifest.drl.count,
        drl_kids=0 if manifest.drl is None else len(manifest.drl.kids),
        valuesets=None if manifest.valuesets is None else manifest.valuesets.blob,
    )


def _write_delta(
    client: redis.Redis,
    layout: Layout,
    vid: str,
    base_vid: str | None,
    rev: SetPlan,
    reg: SetPlan,
    *,
    same_registry: bool,
    records: dict[str, bytes] | None = None,
) -> None:
    """The delta of version `vid` from `base_vid` (followers apply it instead of a full
    load): the sets' added and removed hashes, and `records` (RecordsDelta.fields():
    x, xa, xd, or nothing when the records change is not described)."""
    if base_vid is None or not same_registry:
        return
    sizes = [rev.delta_size, reg.delta_size]
    if any(s is None for s in sizes) or sum(s or 0 for s in sizes) > DELTA_MAX_ENTRIES:
        return
    fields: dict[Any, Any] = {
        "base": base_vid,
        "ra": rev.added or b"",
        "rd": rev.removed or b"",
        "ga": reg.added or b"",
        "gd": reg.removed or b"",
        **(records or {}),
    }
    pipe = client.pipeline(transaction=True)
    pipe.delete(layout.delta(vid))
    pipe.hset(layout.delta(vid), mapping=fields)
    pipe.expire(layout.delta(vid), DELTA_TTL_S)
    pipe.execute()


def _collect_garbage(client: redis.Redis, layout: Layout, newest: str) -> None:
    """Delete versions older than the newest KEEP_VERSIONS and blobs only they used."""
    versions = [_text(v) for v in client.lrange(layout.versions, 0, -1)]
    keep = set(versions[-KEEP_VERSIONS:]) | {newest}
    drop = [v for v in versions if v not in keep]
    if not drop:
        return
    retained: set[str] = set()
    for vid in keep:
        try:
            retained.update(read_manifest(client, layout, vid).blob_ids())
        except StoreDataError:
            continue
    for vid in drop:
        try:
            dead = [b for b in read_manifest(client, layout, vid).blob_ids() if b not in retained]
        except StoreDataError:
            dead = []
        for start in range(0, len(dead), 1000):
            client.unlink(*[layout.blob(b) for b in dead[start : start + 1000]])
        client.unlink(layout.manifest(vid))
        client.lrem(layout.versions, 0, vid)
