"""Redis-backed store: an in-process replica that follows Redis (docs/redis.md).

Layout (all keys share the hash tag ``{qrverify}``, so they live in one Redis Cluster slot
and one Lua script can touch them all):

    {ns}:current            the published version id "<seq>-<nonce>"; flipped atomically
    {ns}:manifest:<vid>     JSON: trust blob id, and per set the bucket bits, count and
                            ordered chunk list [[bucket, blob id, entries], ...]
    {ns}:blob:<id>          immutable content-addressed bytes (id = SHA-256 prefix, hex):
                            a chunk of sorted packed 16-byte hashes (<= 1 MiB), or the
                            trust-file JSON
    {ns}:delta:<vid>        hash {base, ra, rd, ga, gd}: packed hashes added / removed
                            (revoked, registry) from version `base`; expires after a day
    {ns}:versions           list of published versions (for garbage collection)
    channel {ns}:changes    each flip publishes the new version id

A set is split by the top `bits` bits of its hashes into buckets, each stored as one or
more sorted chunks, so a sync that changes a few hashes rewrites a few chunks. Readers
load a version by concatenating its chunks (sorted input: `HashSet` builds in one pass).

Following: the follower thread subscribes to the channel and also polls `current` every
`poll_interval` seconds (pub/sub is the fast path, polling the safety net). A new version
is applied from the delta chain when it reaches the replica's version, else by a full
load of the manifest; either way the new state replaces the old one in one step.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from fastpath._hashset import HashSet, apply_changes
from verifier.errors import QrverifyError
from verifier.redis.connect import NETWORK_ERRORS, RedisFailure, describe, redact_url
from verifier.redis.connect import connect as connect_redis
from verifier.store import Replica, StoreUnavailable

__all__ = [
    "CHUNK_ENTRIES",
    "DataError",
    "Layout",
    "Manifest",
    "RedisStore",
    "SetInfo",
    "StoreUnavailable",
    "blob_id",
    "redact_url",
]

log = logging.getLogger("qrverify.store")

HASH_SIZE = 16
CHUNK_ENTRIES = 65536  # 1 MiB of packed hashes
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_TRUST_BYTES = 16 * 1024 * 1024
MAX_DELTA_CHAIN = 32
FETCH_BATCH_BYTES = 32 * 1024 * 1024
_ID = re.compile(r"[0-9a-f]{32}")
_VID = re.compile(r"[0-9]{1,18}-[0-9a-f]{8,32}")


class DataError(QrverifyError):
    """Redis holds data this store cannot use (missing blob, bad manifest, bad counts)."""


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
        return {"bits": self.bits, "count": self.count,
                "chunks": [list(c) for c in self.chunks]}

    @classmethod
    def from_obj(cls, obj: object, what: str) -> SetInfo:
        if not isinstance(obj, dict):
            raise DataError(f"manifest: {what} must be an object")
        bits, count, chunks = obj.get("bits"), obj.get("count"), obj.get("chunks")
        if type(bits) is not int or not 0 <= bits <= 24:
            raise DataError(f"manifest: {what}.bits invalid")
        if type(count) is not int or count < 0 or not isinstance(chunks, list):
            raise DataError(f"manifest: {what}.count/chunks invalid")
        out: list[tuple[int, str, int]] = []
        total = 0
        last_bucket = -1
        for item in chunks:
            if (not isinstance(item, list) or len(item) != 3 or type(item[0]) is not int
                    or type(item[1]) is not str or type(item[2]) is not int
                    or not _ID.fullmatch(item[1]) or not 0 < item[2] <= CHUNK_ENTRIES
                    or not last_bucket <= item[0] < (1 << bits)):
                raise DataError(f"manifest: {what}.chunks has an invalid entry")
            last_bucket = item[0]
            total += item[2]
            out.append((item[0], item[1], item[2]))
        if total != count:
            raise DataError(f"manifest: {what}.count does not match its chunks")
        return cls(bits, count, tuple(out))

    def blob_ids(self) -> list[str]:
        return [c[1] for c in self.chunks]


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

    def to_json(self) -> bytes:
        return orjson.dumps({
            "format": 1, "version": self.version, "seq": self.seq, "base": self.base,
            "created": self.created,
            "trust": {"blob": self.trust_blob, "keys": self.trust_keys},
            "revoked": self.revoked.to_obj(),
            "registry": None if self.registry is None else self.registry.to_obj(),
        })

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        if len(data) > MAX_MANIFEST_BYTES:
            raise DataError("manifest too large")
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise DataError("manifest is not valid JSON") from None
        if not isinstance(obj, dict) or obj.get("format") != 1:
            raise DataError("manifest: unknown format")
        vid, seq, base, created = obj.get("version"), obj.get("seq"), obj.get("base"), \
            obj.get("created")
        trust = obj.get("trust")
        if (type(vid) is not str or not _VID.fullmatch(vid) or type(seq) is not int
                or (base is not None and type(base) is not str)
                or type(created) not in (int, float) or not isinstance(trust, dict)
                or type(trust.get("blob")) is not str or not _ID.fullmatch(trust["blob"])
                or type(trust.get("keys")) is not int):
            raise DataError("manifest: invalid header fields")
        registry = obj.get("registry")
        return cls(vid, seq, base, float(created or 0), trust["blob"], trust["keys"],
                   SetInfo.from_obj(obj.get("revoked"), "revoked"),
                   None if registry is None else SetInfo.from_obj(registry, "registry"))

    def blob_ids(self) -> list[str]:
        ids = [self.trust_blob] + self.revoked.blob_ids()
        if self.registry is not None:
            ids += self.registry.blob_ids()
        return ids


# ---- reading -----------------------------------------------------------------------------


def _raw(value: object, what: str) -> bytes:
    """A Redis reply that must be bytes (the client runs without decode_responses)."""
    if not isinstance(value, bytes):
        raise DataError(f"{what}: unexpected reply type from Redis")
    return value


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def read_current(client: redis.Redis, layout: Layout) -> str | None:
    vid = _text(client.get(layout.current))
    if vid is not None and not _VID.fullmatch(vid):
        raise DataError("the current-version pointer is malformed")
    return vid


def read_manifest(client: redis.Redis, layout: Layout, vid: str) -> Manifest:
    data = client.get(layout.manifest(vid))
    if data is None:
        raise DataError(f"manifest of version {vid} is missing")
    manifest = Manifest.from_json(_raw(data, "manifest"))
    if manifest.version != vid:
        raise DataError(f"manifest of version {vid} names another version")
    return manifest


def fetch_blobs(client: redis.Redis, layout: Layout, ids: Sequence[str],
                sizes: Sequence[int] | None = None) -> list[bytes]:
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
                raise DataError(f"blob {bid} is missing")
            value = _raw(value, "blob")
            if blob_id(value) != bid:
                raise DataError(f"blob {bid} does not match its content address")
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
                raise DataError("a chunk's size does not match the manifest")
    return out


def fetch_set(client: redis.Redis, layout: Layout, info: SetInfo) -> bytes:
    """All hashes of a set, packed and sorted."""
    blobs = fetch_blobs(client, layout, info.blob_ids(), [c[2] for c in info.chunks])
    return b"".join(blobs)


def build_set(client: redis.Redis, layout: Layout, info: SetInfo) -> HashSet:
    result = HashSet(fetch_set(client, layout, info))
    if len(result) != info.count:
        raise DataError("a set's chunks hold duplicate hashes")
    return result


def _parse_trust(data: bytes) -> Any:
    from keys.registry import TrustFileError, TrustRegistry

    if len(data) > MAX_TRUST_BYTES:
        raise DataError("trust blob too large")
    try:
        return TrustRegistry.from_json(data)
    except TrustFileError as exc:
        raise DataError(f"trust keys in Redis are invalid: {exc}") from None


def load_replica(client: redis.Redis, layout: Layout, vid: str,
                 previous: Replica | None = None) -> tuple[Replica, bytes]:
    """A full replica of version `vid` and its trust JSON (the TrustRegistry object of
    `previous` is reused when the keys are the same)."""
    manifest = read_manifest(client, layout, vid)
    trust_json = fetch_blobs(client, layout, [manifest.trust_blob])[0]
    if previous is not None and previous.trust_id == manifest.trust_blob:
        trust = previous.trust
    else:
        trust = _parse_trust(trust_json)
    revoked = build_set(client, layout, manifest.revoked)
    registry = None if manifest.registry is None else build_set(
        client, layout, manifest.registry)
    replica = Replica(trust, revoked, registry, version=vid, trust_id=manifest.trust_blob)
    return replica, trust_json


def _packed(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) % HASH_SIZE:
        raise DataError(f"delta field {what} is malformed")
    return value


def read_delta_chain(client: redis.Redis, layout: Layout, start: str,
                     target: str) -> list[dict[bytes, bytes]] | None:
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


# ---- local snapshot file -----------------------------------------------------------------

_SNAP_MAGIC = b"QRVSNAP1\n"


def write_snapshot(path: str | os.PathLike[str], replica: Replica, trust_json: bytes,
                   confirmed_at: float) -> None:
    """Write the replica to `path` atomically (temp file, fsync, rename)."""
    revoked = replica.revoked.to_packed()
    registry = None if replica.registry is None else replica.registry.to_packed()
    body = [trust_json, revoked, registry or b""]
    digest = hashlib.sha256()
    for part in body:
        digest.update(part)
    header = orjson.dumps({
        "version": replica.version, "trust_id": replica.trust_id, "confirmed": confirmed_at,
        "lengths": [len(trust_json), len(revoked), None if registry is None else len(registry)],
        "sha256": digest.hexdigest(),
    })
    target = os.fspath(path)
    tmp = f"{target}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(_SNAP_MAGIC + len(header).to_bytes(4, "big") + header)
        for part in body:
            fh.write(part)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def read_snapshot(path: str | os.PathLike[str]) -> tuple[Replica, bytes, float]:
    """(replica, trust JSON, wall-clock time it was last confirmed against Redis);
    DataError if the file is not a complete, intact snapshot."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.startswith(_SNAP_MAGIC) or len(data) < len(_SNAP_MAGIC) + 4:
        raise DataError("not a qrverify snapshot file")
    pos = len(_SNAP_MAGIC)
    hlen = int.from_bytes(data[pos:pos + 4], "big")
    pos += 4
    try:
        header = orjson.loads(data[pos:pos + hlen])
        tlen, rlen, glen = header["lengths"]
        vid, trust_id, confirmed = header["version"], header["trust_id"], header["confirmed"]
        expected = header["sha256"]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DataError("snapshot header is corrupt") from None
    pos += hlen
    if (type(tlen) is not int or type(rlen) is not int or (glen is not None and type(glen)
            is not int) or type(vid) is not str or type(trust_id) is not str
            or type(confirmed) not in (int, float) or rlen % HASH_SIZE or (glen or 0) % HASH_SIZE
            or len(data) != pos + tlen + rlen + (glen or 0)):
        raise DataError("snapshot file is truncated or corrupt")
    if hashlib.sha256(data[pos:]).hexdigest() != expected:
        raise DataError("snapshot file checksum mismatch")
    trust = _parse_trust(data[pos:pos + tlen])
    revoked = HashSet(memoryview(data)[pos + tlen:pos + tlen + rlen])
    registry = None if glen is None else HashSet(
        memoryview(data)[pos + tlen + rlen:pos + tlen + rlen + glen])
    replica = Replica(trust, revoked, registry, version=vid, trust_id=trust_id)
    return replica, bytes(data[pos:pos + tlen]), float(confirmed)


# ---- the store ---------------------------------------------------------------------------


class RedisStore:
    """A Store whose replica follows Redis. Create with `RedisStore.connect(...)`.

    Hot-path reads use only the in-process replica. The follower thread (a daemon)
    applies new versions, reconnects with exponential backoff (0.1 s doubling to 5 s,
    jittered) and keeps the last good replica whatever happens to Redis.
    """

    def __init__(self, client: redis.Redis, url: str, layout: Layout, replica: Replica,
                 trust_json: bytes, confirmed: float, *, trust_override: Any = None,
                 snapshot_path: str | os.PathLike[str] | None = None, max_age: float = 60.0,
                 poll_interval: float = 0.25, problem: str | None = None) -> None:
        self._client = client
        self._url = redact_url(url)
        self._layout = layout
        self._replica = replica
        self._trust_json = trust_json
        self._data_errors = 0
        self._trust_override = trust_override
        self._snapshot_path = snapshot_path
        self._max_age = float(max_age)
        self._poll = float(poll_interval)
        # monotonic time when the replica was last known to equal Redis' current version
        self._confirmed = time.monotonic() - max(0.0, time.time() - confirmed)
        self._connected = problem is None
        self._soft_problem: str | None = problem   # Redis unreachable: ready until max_age
        self._hard_problem: str | None = None      # Redis has no / unusable data: not ready
        self._snapshot_written = 0.0 if problem is None else time.monotonic()
        self._snapshot_dirty = snapshot_path is not None and problem is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()   # serialises updates (follower vs refresh())
        self.updates = 0                # versions applied since start (for tests/metrics)
        self.full_loads = 0

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, *, trust_override: Any = None,
                snapshot_path: str | os.PathLike[str] | None = None, max_age: float = 60.0,
                follow: bool = True, namespace: str = "qrverify",
                poll_interval: float = 0.25) -> RedisStore:
        """Load the current version from Redis (or, if Redis is unreachable or empty, from
        `snapshot_path`) and start following. Raises StoreUnavailable with a clear message
        when neither works."""
        layout = Layout(namespace)
        safe = redact_url(url)
        try:
            client = connect_redis(url, role="reader", connect_timeout=2.0, timeout=10.0)
        except RedisFailure as exc:
            raise StoreUnavailable(str(exc)) from None
        problem: str | None = None
        replica: Replica | None = None
        trust_json = b""
        confirmed = time.time()
        for attempt in range(3):
            try:
                vid = read_current(client, layout)
                if vid is None:
                    problem = (f"Redis at {safe} holds no qrverify data: run "
                               f"`qrverify sync --redis URL --trust FILE` first")
                    break
                replica, trust_json = load_replica(client, layout, vid)
                confirmed = time.time()
                break
            except NETWORK_ERRORS as exc:
                problem = describe(exc, safe)
                break
            except (redis.RedisError, RedisFailure) as exc:  # auth, configuration, server
                client.close()
                raise StoreUnavailable(describe(exc, safe)) from None
            except DataError as exc:  # e.g. a sync garbage-collected what we were reading
                problem = f"Redis at {safe} holds unusable data: {exc}"
                if attempt < 2:
                    time.sleep(0.2)
        if replica is None:
            if snapshot_path is not None and os.path.exists(snapshot_path):
                try:
                    replica, trust_json, confirmed = read_snapshot(snapshot_path)
                except (OSError, DataError) as exc:
                    client.close()
                    raise StoreUnavailable(f"{problem}; and the local snapshot "
                                           f"{os.fspath(snapshot_path)} is unusable: {exc}"
                                           ) from None
                log.warning("starting from local snapshot: %s", problem)
            else:
                client.close()
                hint = "" if snapshot_path is None else (
                    f" (no local snapshot at {os.fspath(snapshot_path)} yet)")
                raise StoreUnavailable(f"{problem}{hint}")
        else:
            problem = None
        store = cls(client, url, layout, replica, trust_json, confirmed,
                    trust_override=trust_override, snapshot_path=snapshot_path,
                    max_age=max_age, poll_interval=poll_interval, problem=problem)
        if problem is None:
            store._maybe_write_snapshot(force=True)
        if follow:
            store.start()
        return store

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qrverify-redis-follower",
                                            daemon=True)
            self._thread.start()

    # -- Store interface (hot path: no I/O) ---------------------------------------------

    @property
    def trust(self) -> Any:
        override = self._trust_override
        return override if override is not None else self._replica.trust

    def is_revoked(self, uci: bytes, cuci: bytes, sig: bytes) -> bool:
        return bool(self._replica.revoked.contains_any(uci, cuci, sig))

    def in_registry(self, uci: bytes) -> bool | None:
        registry = self._replica.registry
        return None if registry is None else uci in registry

    @property
    def replica(self) -> Replica:
        return self._replica

    def status(self) -> dict[str, Any]:
        replica = self._replica
        counts = replica.counts()
        if self._trust_override is not None:
            counts["keys"] = len(self._trust_override)
            counts["skipped_keys"] = len(self._trust_override.skipped)
        age = max(0.0, time.monotonic() - self._confirmed)
        reason: str | None = None
        if self._hard_problem:
            reason = self._hard_problem
        elif age > self._max_age:
            reason = f"replica is {age:.0f} s old (max {self._max_age:g} s)"
            if self._soft_problem:
                reason += f": {self._soft_problem}"
        elif counts["keys"] == 0:
            reason = "no issuer keys loaded"
        return {
            "ready": reason is None,
            "reason": reason,
            "age_seconds": round(age, 3),
            "counts": counts,
            "source": "redis",
            "version": replica.version,
            "connected": self._connected,
            "redis": self._url,
        }

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._thread = None
        try:
            self._maybe_write_snapshot(force=False, final=True)
        except Exception:  # noqa: BLE001 - closing must not fail
            log.warning("could not write the local snapshot on close", exc_info=True)
        self._client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- following ------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Check Redis once and apply a new version if there is one (what the follower
        does each round). True if the replica changed. Network errors propagate."""
        with self._lock:
            return self._check_once()

    def _run(self) -> None:
        backoff = 0.1
        pubsub: Any = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self._client.pubsub(  # type: ignore[no-untyped-call]
                        ignore_subscribe_messages=True)
                    pubsub.subscribe(self._layout.channel)
                # Wait for a change notification, at most one poll interval.
                pubsub.get_message(timeout=self._poll)
                while pubsub.get_message(timeout=0) is not None:
                    pass
                with self._lock:
                    self._check_once()
                self._data_errors = 0
                if not self._connected:
                    log.info("reconnected to Redis at %s", self._url)
                self._connected = True
                self._soft_problem = None
                backoff = 0.1
            except NETWORK_ERRORS as exc:
                if self._connected:
                    log.warning("lost Redis at %s: %s; serving from the replica", self._url, exc)
                self._connected = False
                self._soft_problem = f"cannot reach Redis at {self._url}: {exc}"
                pubsub = self._drop_pubsub(pubsub)
                self._stop.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                backoff = min(backoff * 2, 5.0)
            except DataError as exc:
                # A blob garbage-collected under a slow load is retried at once; data
                # that stays unusable (corrupt manifest, ...) makes the store not ready.
                self._data_errors += 1
                if self._data_errors >= 2:
                    self._hard_problem = (f"Redis data unusable, keeping version "
                                          f"{self._replica.version}: {exc}")
                    log.warning("%s", self._hard_problem)
                self._stop.wait(0.05 if self._data_errors < 2 else 1.0)
            except (redis.RedisError, RedisFailure) as exc:  # auth, configuration, cluster
                problem = describe(exc, self._url)
                if problem != self._soft_problem:
                    log.warning("store follower: %s; serving from the replica", problem)
                self._soft_problem = problem
                pubsub = self._drop_pubsub(pubsub)
                self._stop.wait(1.0)
            except Exception:  # noqa: BLE001 - the follower must survive anything
                log.exception("store follower error")
                pubsub = self._drop_pubsub(pubsub)
                self._stop.wait(1.0)
            try:
                self._maybe_write_snapshot(force=False)
            except OSError:
                log.warning("could not write the local snapshot", exc_info=True)
        self._drop_pubsub(pubsub)

    @staticmethod
    def _drop_pubsub(pubsub: Any) -> None:
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001, S110 - already broken
                pass
        return None

    def _check_once(self) -> bool:
        vid = read_current(self._client, self._layout)
        if vid is None:
            self._hard_problem = (
                "Redis holds no qrverify data (flushed, or restarted without persistence); "
                f"keeping the last good replica (version {self._replica.version}) until "
                "`qrverify sync` writes a new one")
            return False
        changed = False
        if vid != self._replica.version:
            self._update_to(vid)
            changed = True
        self._confirmed = time.monotonic()
        self._hard_problem = None
        return changed

    def _update_to(self, vid: str) -> None:
        old = self._replica
        manifest = read_manifest(self._client, self._layout, vid)
        chain = read_delta_chain(self._client, self._layout, old.version, vid)
        if chain is not None and self._apply_deltas(old, manifest, chain):
            log.info("store: applied %d change(s), now at version %s", len(chain), vid)
        else:
            replica, trust_json = load_replica(self._client, self._layout, vid, previous=old)
            self._replica, self._trust_json = replica, trust_json
            self.full_loads += 1
            log.info("store: loaded version %s", vid)
        self.updates += 1
        self._snapshot_dirty = self._snapshot_path is not None

    def _apply_deltas(self, old: Replica, manifest: Manifest,
                      chain: Iterable[dict[bytes, bytes]]) -> bool:
        """Apply the delta chain in place, in one atomic step; False -> do a full load."""
        if (manifest.registry is None) != (old.registry is None):
            return False
        ops: list[tuple[HashSet, bytes | None, bytes | None]] = []
        expect_rev = len(old.revoked)
        expect_reg = 0 if old.registry is None else len(old.registry)
        for delta in chain:
            ra, rd = _packed(delta.get(b"ra", b""), "ra"), _packed(delta.get(b"rd", b""), "rd")
            ga, gd = _packed(delta.get(b"ga", b""), "ga"), _packed(delta.get(b"gd", b""), "gd")
            if old.registry is None and (ga or gd):
                return False
            ops.append((old.revoked, ra, rd))
            expect_rev += (len(ra) - len(rd)) // HASH_SIZE
            if old.registry is not None:
                ops.append((old.registry, ga, gd))
                expect_reg += (len(ga) - len(gd)) // HASH_SIZE
        if expect_rev != manifest.revoked.count or (
                manifest.registry is not None and expect_reg != manifest.registry.count):
            return False   # the deltas do not add up: reload in full
        trust, trust_json = old.trust, self._trust_json
        if manifest.trust_blob != old.trust_id:
            trust_json = fetch_blobs(self._client, self._layout, [manifest.trust_blob])[0]
            trust = _parse_trust(trust_json)
        # Copy-free: mutate the live sets in one GIL-held call, then publish the new
        # replica object (same sets, new version and maybe new trust).
        apply_changes(ops)
        if len(old.revoked) != manifest.revoked.count or (
                old.registry is not None and manifest.registry is not None
                and len(old.registry) != manifest.registry.count):
            raise DataError("replica counts differ from the manifest after applying changes")
        self._trust_json = trust_json
        self._replica = Replica(trust, old.revoked, old.registry, version=manifest.version,
                                trust_id=manifest.trust_blob)
        return True

    # -- local snapshot -------------------------------------------------------------------

    def _maybe_write_snapshot(self, *, force: bool, final: bool = False) -> None:
        if self._snapshot_path is None or not self._snapshot_dirty:
            return
        if not (force or final) and time.monotonic() - self._snapshot_written < 10.0:
            return
        replica, trust_json = self._replica, self._trust_json
        confirmed = time.time() - (time.monotonic() - self._confirmed)
        write_snapshot(self._snapshot_path, replica, trust_json, confirmed)
        self._snapshot_written = time.monotonic()
        self._snapshot_dirty = False
