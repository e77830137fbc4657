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
    {ns}:delta:<vid>        hash {base, ra, rd, ga, gd}: packed hashes added / removed
                            (revoked, registry) from version `base`; expires after a day
    {ns}:versions           list of published versions (for garbage collection)
    channel {ns}:changes    each flip publishes the new version id

A set is split by the top `bits` bits of its hashes into buckets, each stored as one or
more sorted chunks, so a sync that changes a few hashes rewrites a few chunks. Readers
load a version by concatenating its chunks.

Everything read from Redis is checked (content addresses, counts, shapes); data this
package cannot use raises `StoreDataError` (not `redis.DataError`, which is a protocol
error of the client).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from verifier.errors import QrverifyError
from verifier.redis.connect import NETWORK_ERRORS, redact_url

__all__ = [
    "CHUNK_ENTRIES",
    "HASH_SIZE",
    "NETWORK_ERRORS",
    "Layout",
    "Manifest",
    "RecordsInfo",
    "SetInfo",
    "StoreDataError",
    "blob_id",
    "fetch_blobs",
    "fetch_records",
    "fetch_set",
    "parse_trust",
    "read_current",
    "read_delta_chain",
    "read_manifest",
    "redact_url",
]

HASH_SIZE = 16
CHUNK_ENTRIES = 65536  # 1 MiB of packed hashes
RECORDS_PIECE = CHUNK_ENTRIES * HASH_SIZE  # records blobs: 1 MiB each
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_TRUST_BYTES = 16 * 1024 * 1024
MAX_DELTA_CHAIN = 32
FETCH_BATCH_BYTES = 32 * 1024 * 1024
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

    def to_json(self) -> bytes:
        obj: dict[str, Any] = {
            "format": 1,
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
        return orjson.dumps(obj)

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        if len(data) > MAX_MANIFEST_BYTES:
            raise StoreDataError("manifest too large")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise StoreDataError("manifest is not valid JSON") from None
        if not isinstance(obj, dict) or obj.get("format") != 1:
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
        )

    def blob_ids(self) -> list[str]:
        ids = [self.trust_blob] + self.revoked.blob_ids()
        if self.registry is not None:
            ids += self.registry.blob_ids()
        if self.records is not None:
            ids += self.records.blob_ids()
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
    client: redis.Redis, layout: Layout, ids: Sequence[str], sizes: Sequence[int] | None = None
) -> list[bytes]:
    """The blobs, in order, checked against their content address (and entry counts)."""
    out: list[bytes] = []
    batch: list[str] = []
    budget = 0

    def flush() -> None:
        if not batch:
            return
        values = client.mget([layout.blob(b) for b in batch])
        for bid, value in zip(batch, values, strict=True):
            if value is None:
                raise StoreDataError(f"blob {bid} is missing")
            value = _raw(value, "blob")
            if blob_id(value) != bid:
                raise StoreDataError(f"blob {bid} does not match its content address")
            out.append(value)
        batch.clear()

    for i, bid in enumerate(ids):
        batch.append(bid)
        budget += (sizes[i] * HASH_SIZE) if sizes else HASH_SIZE * CHUNK_ENTRIES
        if budget >= FETCH_BATCH_BYTES or len(batch) >= 256:
            flush()
            budget = 0
    flush()
    if sizes is not None:
        for i, value in enumerate(out):
            if len(value) != sizes[i] * HASH_SIZE:
                raise StoreDataError("a chunk's size does not match the manifest")
    return out


def fetch_set(client: redis.Redis, layout: Layout, info: SetInfo) -> bytes:
    """All hashes of a set, packed and sorted."""
    blobs = fetch_blobs(client, layout, info.blob_ids(), [c[2] for c in info.chunks])
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
