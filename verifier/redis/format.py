"""The Redis format of the store: key layout, manifest, readers (docs/redis.md).

Layout (all keys share the hash tag ``{qrverify}``, so they live in one Redis Cluster slot
and one Lua script can touch them all):

    {ns}:current            the published version id "<seq>-<nonce>"; flipped atomically
    {ns}:manifest:<vid>     JSON: trust blob id, and per set the bucket bits, count and
                            ordered chunk list [[bucket, blob id, entries], ...]
    {ns}:blob:<id>          immutable content-addressed bytes (id = SHA-256 prefix, hex):
                            a chunk of sorted packed 16-byte hashes (<= 1 MiB), the
                            trust-file JSON, or a piece (<= 1 MiB) of the register
                            records' RecordTable bytes (manifest "records", optional)
                            or the value sets' canonical JSON (manifest "valuesets")
    {ns}:delta:<vid>        hash {base, ra, rd, ga, gd}: packed hashes added / removed
                            (revoked, registry) from version `base`; expires after a day.
                            Register records: x = "1" when xa / xd describe the whole
                            records change from `base` (absent: they do not, e.g.
                            --replace or more than 65,536 records; followers then
                            rewrite), xa the RecordTable bytes of the records added or
                            changed (empty: none), xd the sorted packed keys removed
    {ns}:versions           list of published versions (for garbage collection)
    channel {ns}:changes    each flip publishes the new version id

A set is split by the top `bits` bits of its hashes into buckets, each stored as one or
more sorted chunks, so a sync that changes a few hashes rewrites a few chunks. Readers
load a version by concatenating its chunks.

The EU revocation list (DRL, manifest "drl") is kept per kid: its declared hash types, its
expiry and its sorted hashes as chunks like a set's. A manifest that carries a DRL or value
sets says "format": 2, so a verifier that does not know them refuses the version instead of
ignoring them (fail closed); one without them stays "format": 1.

Everything read from Redis is checked (content addresses, counts, shapes); data this
package cannot use raises `StoreDataError` (not `redis.DataError`, which is a protocol
error of the client).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from verifier.errors import QrverifyError
from verifier.redis.connect import NETWORK_ERRORS, redact_url

__all__ = [
    "CHUNK_ENTRIES",
    "HASH_SIZE",
    "DrlInfo",
    "DrlKid",
    "DrlTable",
    "ValueSetsInfo",
    "NETWORK_ERRORS",
    "Layout",
    "Manifest",
    "RecordsInfo",
    "SetInfo",
    "StoreDataError",
    "blob_id",
    "fetch_blobs",
    "fetch_drl",
    "fetch_records",
    "fetch_set",
    "fetch_valuesets",
    "parse_trust",
    "read_drl_section",
    "valuesets_of",
    "write_drl_section",
    "read_current",
    "read_delta_chain",
    "read_manifest",
    "redact_url",
    "snapshot_extras",
]

HASH_SIZE = 16
CHUNK_ENTRIES = 65536  # 1 MiB of packed hashes
RECORDS_PIECE = CHUNK_ENTRIES * HASH_SIZE  # records blobs: 1 MiB each
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_TRUST_BYTES = 16 * 1024 * 1024
MAX_DELTA_CHAIN = 32
FETCH_BATCH_BYTES = 32 * 1024 * 1024
PACED_BATCH_BYTES = 1024 * 1024  # a paced fetch: about 1 MiB of blobs per round trip
MAX_PACE = 10.0
MAX_DRL_KIDS = 100_000
MAX_DRL_EXPIRES = 253402300799  # 9999-12-31T23:59:59Z
MAX_VALUESETS_BYTES = 64 * 1024 * 1024
_ID = re.compile(r"[0-9a-f]{32}")
_VID = re.compile(r"[0-9]{1,18}-[0-9a-f]{8,32}")


class StoreDataError(QrverifyError):
    """Redis (or a snapshot file) holds data the store cannot use: a missing blob, a bad
    manifest, counts that do not add up."""


def blob_id(data: bytes) -> str:
    """Content address of a blob: the first 16 bytes of its SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()[:32]


class Layout:
    """Key names for one namespace (the hash tag keeps them in one Cluster slot)."""

    def __init__(self, namespace: str = "qrverify") -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", namespace):
            raise ValueError("namespace: 1-64 characters of A-Z a-z 0-9 _ . -")
        tag = "{" + namespace + "}"
        self.namespace = namespace
        self.current = f"{tag}:current"
        self.versions = f"{tag}:versions"
        self.channel = f"{tag}:changes"
        self._tag = tag

    def manifest(self, vid: str) -> str:
        return f"{self._tag}:manifest:{vid}"

    def delta(self, vid: str) -> str:
        return f"{self._tag}:delta:{vid}"

    def blob(self, bid: str) -> str:
        return f"{self._tag}:blob:{bid}"


# ---- manifest ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SetInfo:
    bits: int
    count: int
    chunks: tuple[tuple[int, str, int], ...]  # (bucket, blob id, entries), in key order

    def to_obj(self) -> dict[str, Any]:
        return {"bits": self.bits, "count": self.count, "chunks": [list(c) for c in self.chunks]}

    @classmethod
    def from_obj(cls, obj: object, what: str) -> SetInfo:
        if not isinstance(obj, dict):
            raise StoreDataError(f"manifest: {what} must be an object")
        bits, count, chunks = obj.get("bits"), obj.get("count"), obj.get("chunks")
        if type(bits) is not int or not 0 <= bits <= 24:
            raise StoreDataError(f"manifest: {what}.bits invalid")
        if type(count) is not int or count < 0 or not isinstance(chunks, list):
            raise StoreDataError(f"manifest: {what}.count/chunks invalid")
        out: list[tuple[int, str, int]] = []
        total = 0
        last_bucket = -1
        for item in chunks:
            if (
                not isinstance(item, list)
                or len(item) != 3
                or type(item[0]) is not int
                or type(item[1]) is not str
                or type(item[2]) is not int
                or not _ID.fullmatch(item[1])
                or not 0 < item[2] <= CHUNK_ENTRIES
                or not last_bucket <= item[0] < (1 << bits)
            ):
                raise StoreDataError(f"manifest: {what}.chunks has an invalid entry")
            last_bucket = item[0]
            total += item[2]
            out.append((item[0], item[1], item[2]))
        if total != count:
            raise StoreDataError(f"manifest: {what}.count does not match its chunks")
        return cls(bits, count, tuple(out))

    def blob_ids(self) -> list[str]:
        return [c[1] for c in self.chunks]


@dataclass(frozen=True)
class RecordsInfo:
    """The register records of a version: the bytes of one RecordTable
    (fastpath._records), split into content-addressed pieces of at most RECORDS_PIECE
    bytes, in order."""

    count: int
    pieces: tuple[tuple[str, int], ...]  # (blob id, bytes)

    def to_obj(self) -> dict[str, Any]:
        return {"count": self.count, "pieces": [list(p) for p in self.pieces]}

    @classmethod
    def from_obj(cls, obj: object) -> RecordsInfo:
        if not isinstance(obj, dict):
            raise StoreDataError("manifest: records must be an object")
        count, pieces = obj.get("count"), obj.get("pieces")
        if type(count) is not int or count < 0 or not isinstance(pieces, list):
            raise StoreDataError("manifest: records.count/pieces invalid")
        out: list[tuple[str, int]] = []
        for item in pieces:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or type(item[0]) is not str
                or not _ID.fullmatch(item[0])
                or type(item[1]) is not int
                or not 0 < item[1] <= RECORDS_PIECE
            ):
                raise StoreDataError("manifest: records.pieces has an invalid entry")
            out.append((item[0], item[1]))
        return cls(count, tuple(out))

    def blob_ids(self) -> list[str]:
        return [p[0] for p in self.pieces]


@dataclass(frozen=True)
class DrlKid:
    """One kid of the EU revocation list: its declared hash types (bits of
    verifier.revocations.DRL_TYPE_BITS), expiry (epoch seconds) and hashes (sorted,
    unique) as chunks (blob id, entries) of at most CHUNK_ENTRIES."""

    kid: bytes
    mask: int
    expires: int
    count: int
    chunks: tuple[tuple[str, int], ...]

    def to_obj(self) -> list[Any]:
        return [
            base64.b64encode(self.kid).decode("ascii"),
            self.mask,
            self.expires,
            self.count,
            [list(c) for c in self.chunks],
        ]

    @classmethod
    def from_obj(cls, item: object) -> DrlKid:
        bad = StoreDataError("manifest: drl.kids has an invalid entry")
        if not isinstance(item, list) or len(item) != 5:
            raise bad
        kid_text, mask, expires, count, chunks = item
        try:
            kid = (
                binascii.a2b_base64(kid_text, strict_mode=True)
                if type(kid_text) is str and len(kid_text) <= 100
                else b""
            )
        except (binascii.Error, ValueError):
            kid = b""
        if (
            not 0 < len(kid) <= 64
            or type(mask) is not int
            or not 0 < mask <= 7
            or type(expires) is not int
            or not 0 <= expires <= MAX_DRL_EXPIRES
            or type(count) is not int
            or not isinstance(chunks, list)
        ):
            raise bad
        out: list[tuple[str, int]] = []
        total = 0
        for chunk in chunks:
            if (
                not isinstance(chunk, list)
                or len(chunk) != 2
                or type(chunk[0]) is not str
                or not _ID.fullmatch(chunk[0])
                or type(chunk[1]) is not int
                or not 0 < chunk[1] <= CHUNK_ENTRIES
            ):
                raise bad
            total += chunk[1]
            out.append((chunk[0], chunk[1]))
        if total != count:
            raise StoreDataError("manifest: a drl kid's count does not match its chunks")
        return cls(kid, mask, expires, count, tuple(out))


@dataclass(frozen=True)
class DrlInfo:
    """The EU revocation list of a version: one DrlKid per kid, ordered by kid."""

    count: int
    kids: tuple[DrlKid, ...]

    def to_obj(self) -> dict[str, Any]:
        return {"count": self.count, "kids": [k.to_obj() for k in self.kids]}

    @classmethod
    def from_obj(cls, obj: object) -> DrlInfo:
        if not isinstance(obj, dict):
            raise StoreDataError("manifest: drl must be an object")
        count, kids = obj.get("count"), obj.get("kids")
        if type(count) is not int or count < 0 or not isinstance(kids, list):
            raise StoreDataError("manifest: drl.count/kids invalid")
        if len(kids) > MAX_DRL_KIDS:
            raise StoreDataError("manifest: drl has too many kids")
        out = tuple(DrlKid.from_obj(k) for k in kids)
        if any(a.kid >= b.kid for a, b in zip(out, out[1:], strict=False)):
            raise StoreDataError("manifest: drl kids are not in order")
        if sum(k.count for k in out) != count:
            raise StoreDataError("manifest: drl.count does not match its kids")
        return cls(count, out)

    @property
    def ident(self) -> str:
        """A content address of the whole list (same entries, same id)."""
        return blob_id(orjson.dumps(self.to_obj()))

    def blob_ids(self) -> list[str]:
        return [c[0] for k in self.kids for c in k.chunks]


@dataclass(frozen=True)
class ValueSetsInfo:
    """The EU value sets of a version: one blob, verifier.valuesets.codes_json."""

    blob: str
    size: int

    def to_obj(self) -> dict[str, Any]:
        return {"blob": self.blob, "bytes": self.size}

    @classmethod
    def from_obj(cls, obj: object) -> ValueSetsInfo:
        if (
            not isinstance(obj, dict)
            or type(obj.get("blob")) is not str
            or not _ID.fullmatch(obj["blob"])
            or type(obj.get("bytes")) is not int
            or not 0 < obj["bytes"] <= MAX_VALUESETS_BYTES
        ):
            raise StoreDataError("manifest: valuesets invalid")
        return cls(obj["blob"], obj["bytes"])


@dataclass(frozen=True)
class Manifest:
    version: str
    seq: int
    base: str | None
    created: float
    trust_blob: str
    trust_keys: int
    revoked: SetInfo
    registry: SetInfo | None
    drop_confirmed: bool = False  # `sync --allow-drop`: verifiers accept a large drop
    records: RecordsInfo | None = None  # register records (CONTRACT section 4), if any
    drl: DrlInfo | None = None  # the EU revocation list (kid-scoped), if any
    valuesets: ValueSetsInfo | None = None  # EU value sets replacing the packaged ones

    def to_json(self) -> bytes:
        obj: dict[str, Any] = {
            "format": 2 if self.drl is not None or self.valuesets is not None else 1,
            "version": self.version,
            "seq": self.seq,
            "base": self.base,
            "created": self.created,
            "trust": {"blob": self.trust_blob, "keys": self.trust_keys},
            "revoked": self.revoked.to_obj(),
            "registry": None if self.registry is None else self.registry.to_obj(),
        }
        if self.drop_confirmed:
            obj["drop_confirmed"] = True
        if self.records is not None:
            obj["records"] = self.records.to_obj()
        if self.drl is not None:
            obj["drl"] = self.drl.to_obj()
        if self.valuesets is not None:
            obj["valuesets"] = self.valuesets.to_obj()
        return orjson.dumps(obj)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        if len(data) > MAX_MANIFEST_BYTES:
            raise StoreDataError("manifest too large")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StoreDataError("manifest is not valid JSON") from None
        if not isinstance(obj, dict) or obj.get("format") not in (1, 2):
            raise StoreDataError("manifest: unknown format")
        vid, seq, base, created = (
            obj.get("version"),
            obj.get("seq"),
            obj.get("base"),
            obj.get("created"),
        )
        trust = obj.get("trust")
        if (
            type(vid) is not str
            or not _VID.fullmatch(vid)
            or type(seq) is not int
            or (base is not None and type(base) is not str)
            or type(created) not in (int, float)
            or not isinstance(trust, dict)
            or type(trust.get("blob")) is not str
            or not _ID.fullmatch(trust["blob"])
            or type(trust.get("keys")) is not int
        ):
            raise StoreDataError("manifest: invalid header fields")
        registry = obj.get("registry")
        drop = obj.get("drop_confirmed", False)
        if type(drop) is not bool:
            raise StoreDataError("manifest: drop_confirmed invalid")
        records = obj.get("records")
        drl, valuesets = obj.get("drl"), obj.get("valuesets")
        if obj["format"] == 1 and (drl is not None or valuesets is not None):
            raise StoreDataError("manifest: format 1 cannot carry a DRL or value sets")
        return cls(
            vid,
            seq,
            base,
            float(created or 0),
            trust["blob"],
            trust["keys"],
            SetInfo.from_obj(obj.get("revoked"), "revoked"),
            None if registry is None else SetInfo.from_obj(registry, "registry"),
            drop,
            None if records is None else RecordsInfo.from_obj(records),
            None if drl is None else DrlInfo.from_obj(drl),
            None if valuesets is None else ValueSetsInfo.from_obj(valuesets),
        )

    def blob_ids(self) -> list[str]:
        ids = [self.trust_blob] + self.revoked.blob_ids()
        if self.registry is not None:
            ids += self.registry.blob_ids()
        if self.records is not None:
            ids += self.records.blob_ids()
        if self.drl is not None:
            ids += self.drl.blob_ids()
        if self.valuesets is not None:
            ids.append(self.valuesets.blob)
        return ids


# ---- reading -----------------------------------------------------------------------------


def _raw(value: object, what: str) -> bytes:
    """A Redis reply that must be bytes (the client runs without decode_responses)."""
    if not isinstance(value, bytes):
        raise StoreDataError(f"{what}: unexpected reply type from Redis")
    return value


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def read_current(client: redis.Redis, layout: Layout) -> str | None:
    vid = _text(client.get(layout.current))
    if vid is not None and not _VID.fullmatch(vid):
        raise StoreDataError("the current-version pointer is malformed")
    return vid


def read_manifest(client: redis.Redis, layout: Layout, vid: str) -> Manifest:
    data = client.get(layout.manifest(vid))
    if data is None:
        raise StoreDataError(f"manifest of version {vid} is missing")
    manifest = Manifest.from_json(_raw(data, "manifest"))
    if manifest.version != vid:
        raise StoreDataError(f"manifest of version {vid} names another version")
    return manifest


def fetch_blobs(
    client: redis.Redis,
    layout: Layout,
    ids: Sequence[str],
    sizes: Sequence[int] | None = None,
    *,
    pace: float = 0.0,
) -> list[bytes]:
    """The blobs, in order, checked against their content address (and entry counts).

    `pace` > 0 spreads the fetch out (for the builder of a machine that is serving):
    about PACED_BATCH_BYTES of blobs per round trip, and after each round trip a pause
    of `pace` times what it took (1.0: the fetch takes twice as long, busy at most half of
    the time). Most of a fetch's CPU is spent outside the fetching process: Redis building
    and sending its replies, the network stack's softirqs (on another machine's Redis,
    still the NIC's on this one). The fetching process' low priority does not reach them;
    without pauses they took both CPUs of a two-core machine for the ~0.4 s of a 10 M set,
    and its workers' requests waited behind them."""
    if not 0.0 <= pace <= MAX_PACE:
        raise ValueError(f"pace must be within 0 and {MAX_PACE}")
    limit = PACED_BATCH_BYTES if pace > 0 else FETCH_BATCH_BYTES
    out: list[bytes] = []
    batch: list[str] = []
    budget = 0

    def flush() -> None:
        if not batch:
            return
        started = time.perf_counter()
        values = client.mget([layout.blob(b) for b in batch])
        for bid, value in zip(batch, values, strict=True):
            if value is None:
                raise StoreDataError(f"blob {bid} is missing")
            value = _raw(value, "blob")
            if blob_id(value) != bid:
                raise StoreDataError(f"blob {bid} does not match its content address")
            out.append(value)
        batch.clear()
        if pace > 0:
            time.sleep((time.perf_counter() - started) * pace)

    for i, bid in enumerate(ids):
        batch.append(bid)
        budget += (sizes[i] * HASH_SIZE) if sizes else HASH_SIZE * CHUNK_ENTRIES
        if budget >= limit or len(batch) >= 256:
            flush()
            budget = 0
    flush()
    if sizes is not None:
        for i, value in enumerate(out):
            if len(value) != sizes[i] * HASH_SIZE:
                raise StoreDataError("a chunk's size does not match the manifest")
    return out


def fetch_set(client: redis.Redis, layout: Layout, info: SetInfo, *, pace: float = 0.0) -> bytes:
    """All hashes of a set, packed and sorted (`pace`: see fetch_blobs)."""
    blobs = fetch_blobs(client, layout, info.blob_ids(), [c[2] for c in info.chunks], pace=pace)
    return b"".join(blobs)


def fetch_records(client: redis.Redis, layout: Layout, info: RecordsInfo) -> Any:
    """The RecordTable of a version's records, checked against the manifest."""
    from fastpath._records import RecordTable

    blobs = fetch_blobs(client, layout, info.blob_ids())
    if any(len(b) != p[1] for b, p in zip(blobs, info.pieces, strict=True)):
        raise StoreDataError("a records piece's size does not match the manifest")
    try:
        table = RecordTable(b"".join(blobs))
    except ValueError as exc:
        raise StoreDataError(f"register records unusable: {exc}") from None
    if len(table) != info.count:
        raise StoreDataError("register records: count does not match the manifest")
    return table


#: kid -> (type mask, expiry epoch, fastpath HashSet): what the engine reads as `snap.drl`
DrlTable = dict[bytes, tuple[int, int, Any]]


def fetch_drl(client: redis.Redis, layout: Layout, info: DrlInfo) -> DrlTable:
    """The DRL of a version as HashSets per kid, checked against the manifest."""
    from fastpath._hashset import HashSet

    out: DrlTable = {}
    for kid in info.kids:
        blobs = fetch_blobs(client, layout, [c[0] for c in kid.chunks], [c[1] for c in kid.chunks])
        hashes = HashSet(b"".join(blobs))
        if len(hashes) != kid.count:
            raise StoreDataError("a drl kid's chunks hold duplicate hashes")
        out[kid.kid] = (kid.mask, kid.expires, hashes)
    return out


_VALUESETS_CACHE: dict[str, tuple[bytes, Any]] = {}


def valuesets_of(bid: str, data: bytes | None = None) -> tuple[bytes, Any]:
    """(canonical JSON, fastpath ValueSets) of value-set blob `bid`: from this process's
    cache (so every snapshot with the same value sets shares one object, and the engine's
    re-scan cache stays valid), else built from `data` (StoreDataError if unusable, or
    KeyError when `data` is None and it is not cached)."""
    hit = _VALUESETS_CACHE.get(bid)
    if hit is not None:
        return hit
    if data is None:
        raise KeyError(bid)
    from verifier.valuesets import ValueSetError, from_codes_json

    if blob_id(data) != bid:
        raise StoreDataError("value sets do not match their content address")
    try:
        built = (bytes(data), from_codes_json(bytes(data), f"value sets {bid[:12]} from Redis"))
    except ValueSetError as exc:
        raise StoreDataError(str(exc)) from None
    while len(_VALUESETS_CACHE) >= 2:
        _VALUESETS_CACHE.pop(next(iter(_VALUESETS_CACHE)))
    _VALUESETS_CACHE[bid] = built
    return built


def fetch_valuesets(client: redis.Redis, layout: Layout, info: ValueSetsInfo) -> tuple[str, bytes]:
    """(blob id, canonical JSON) of a version's value sets, checked (cached per process)."""
    try:
        return info.blob, valuesets_of(info.blob)[0]
    except KeyError:
        pass
    data = fetch_blobs(client, layout, [info.blob])[0]
    if len(data) != info.size:
        raise StoreDataError("the value sets' size does not match the manifest")
    return info.blob, valuesets_of(info.blob, data)[0]


def snapshot_extras(
    client: redis.Redis, layout: Layout, manifest: Manifest, current: Any = None
) -> dict[str, Any]:
    """write_snapshot's `drl` and `valuesets` arguments for `manifest`, each (content
    id, data) or None: the DRL tables of `current` (a Replica) when its list is the same
    one (`drl_id`), else fetched; the value sets from this process's cache or fetched."""
    drl: tuple[str, DrlTable] | None = None
    if manifest.drl is not None:
        ident = manifest.drl.ident
        old = getattr(current, "drl", None)
        if old is not None and getattr(current, "drl_id", None) == ident:
            drl = (ident, old)
        else:
            drl = (ident, fetch_drl(client, layout, manifest.drl))
    valuesets = (
        None if manifest.valuesets is None else fetch_valuesets(client, layout, manifest.valuesets)
    )
    return {"drl": drl, "valuesets": valuesets}


# ---- the snapshot file's drl section ----------------------------------------------------------

_DRL_MAGIC = b"QRVDRL01"
_DRL_ALIGN = 64


def _pad(n: int) -> int:
    return (n + _DRL_ALIGN - 1) // _DRL_ALIGN * _DRL_ALIGN


def write_drl_section(out: Any, drl: Mapping[bytes, tuple[int, int, Any]]) -> None:
    """The snapshot file's "drl" section: magic, index length (8 bytes big-endian), the
    index JSON [[kid b64, mask, expires, offset, bytes, cap, count, has_zero, seed hex]],
    then each kid's HashSet slot table (write_table) at a 64-byte aligned offset from
    the section's start, so read_drl_section maps them without a copy."""
    kids = sorted(drl)
    infos = [drl[k][2].table_info() for k in kids]
    sizes = [int(drl[k][2].nbytes) for k in kids]
    room = _pad(len(_DRL_MAGIC) + 8 + 256 * (len(kids) + 1))
    while True:  # the tables start after a room for the index; grow it if too small
        index: list[list[Any]] = []
        pos = room
        for kid, info, size in zip(kids, infos, sizes, strict=True):
            mask, expires, _ = drl[kid]
            index.append(
                [
                    base64.b64encode(kid).decode("ascii"),
                    mask,
                    expires,
                    pos,
                    size,
                    info["cap"],
                    info["count"],
                    bool(info["has_zero"]),
                    info["seed"].hex(),
                ]
            )
            pos = _pad(pos + size)
        head = orjson.dumps(index)
        if len(_DRL_MAGIC) + 8 + len(head) <= room:
            break
        room = _pad(len(_DRL_MAGIC) + 8 + len(head) + 64 * (len(kids) + 1))
    out.write(_DRL_MAGIC + len(head).to_bytes(8, "big") + head)
    written = len(_DRL_MAGIC) + 8 + len(head)
    for kid, entry in zip(kids, index, strict=True):
        if entry[3] > written:
            out.write(bytes(entry[3] - written))
            written = entry[3]
        drl[kid][2].write_table(out)
        written += entry[4]


def read_drl_section(part: memoryview) -> DrlTable:
    """The DrlTable over a mapped "drl" section (read-only views, no copy)."""
    from fastpath._hashset import table_view

    bad = "snapshot drl section unusable"
    if len(part) < len(_DRL_MAGIC) + 8 or bytes(part[: len(_DRL_MAGIC)]) != _DRL_MAGIC:
        raise StoreDataError(bad)
    hlen = int.from_bytes(part[len(_DRL_MAGIC) : len(_DRL_MAGIC) + 8], "big")
    start = len(_DRL_MAGIC) + 8
    if hlen > len(part) - start:
        raise StoreDataError(bad)
    try:
        index = orjson.loads(bytes(part[start : start + hlen]))
    except orjson.JSONDecodeError:
        raise StoreDataError(bad) from None
    if not isinstance(index, list) or len(index) > MAX_DRL_KIDS:
        raise StoreDataError(bad)
    out: DrlTable = {}
    for entry in index:
        try:
            kid_text, mask, expires, offset, size, cap, count, has_zero, seed = entry
            kid = binascii.a2b_base64(kid_text, strict_mode=True)
            if (
                not all(type(v) is int for v in (mask, expires, offset, size, cap, count))
                or not 0 < mask <= 7
                or not 0 <= expires <= MAX_DRL_EXPIRES
                or offset < start + hlen
                or offset + size > len(part)
                or not 0 < len(kid) <= 64
            ):
                raise ValueError("index entry out of range")
            table = table_view(
                part[offset : offset + size], cap, count, bool(has_zero), bytes.fromhex(seed)
            )
        except (TypeError, ValueError, binascii.Error) as exc:
            raise StoreDataError(f"{bad}: {exc}") from None
        out[kid] = (mask, expires, table)
    return out


def parse_trust(data: bytes) -> Any:
    """The TrustRegistry of a trust blob; StoreDataError if it is not a valid trust file."""
    from keys.registry import TrustFileError, TrustRegistry

    if len(data) > MAX_TRUST_BYTES:
        raise StoreDataError("trust blob too large")
    try:
        return TrustRegistry.from_json(data)
    except TrustFileError as exc:
        raise StoreDataError(f"trust keys are invalid: {exc}") from None


def packed_field(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) % HASH_SIZE:
        raise StoreDataError(f"delta field {what} is malformed")
    return value


def read_delta_chain(
    client: redis.Redis, layout: Layout, start: str, target: str
) -> list[dict[bytes, bytes]] | None:
    """Deltas leading from version `start` to `target`, oldest first, or None if the
    chain is broken (expired, too long, or started elsewhere)."""
    chain: list[dict[bytes, bytes]] = []
    vid = target
    while vid != start:
        if len(chain) >= MAX_DELTA_CHAIN:
            return None
        reply = client.hgetall(layout.delta(vid))
        if not reply or b"base" not in reply:
            return None
        delta = {_raw(k, "delta"): _raw(v, "delta") for k, v in reply.items()}
        chain.append(delta)
        vid = delta[b"base"].decode("ascii", "replace")
    chain.reverse()
    return chain
