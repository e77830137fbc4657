"""RedisStore: a Store that follows Redis through one snapshot file per machine.

Every process of a machine (the serve supervisor, each worker, a `verify --redis`) maps
the same snapshot file read-only (verifier/redis/snapshot.py); no process keeps a private
copy of the sets. One process per machine, the *builder*, holds an exclusive lock on
`<snapshot>.lock` and follows Redis: it subscribes to the change channel and polls
`current`; for a new version it checks the guard (below), builds the next file off the
request path (from the delta chain when it reaches the mapped version, else by a full
load) and renames it into place. Every process watches the file (one `stat` every
`poll_interval`) and maps a new one when it appears; a process whose builder died takes
the lock over. A restarted worker maps the current file without needing Redis.

The guard: a version with no issuer keys (unless `trust_override` supplies them), with a
lower sequence number than the mapped one, or whose revoked set shrinks by more than
`max_drop` of the mapped one (unless its manifest records an operator-confirmed drop),
or whose EU revocation list (DRL) shrinks by more than that share (same confirmation) is
refused: the last good version stays in service and `status()["refused"]` says why.

Readiness: a process is ready while its snapshot was confirmed against Redis within
`max_age` seconds. The builder confirms by touching the file's modification time, so a
worker behind an unreachable Redis stays ready as long as the machine's snapshot is young.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import tempfile
import threading
import time
from typing import Any

import redis

from verifier.redis.build import BuildProcess, build_version
from verifier.redis.connect import (
    NETWORK_ERRORS,
    RedisFailure,
    connect,
    describe,
    parse_url,
)
from verifier.redis.format import (
    Layout,
    Manifest,
    StoreDataError,
    read_current,
    read_manifest,
    redact_url,
)
from verifier.redis.snapshot import Snapshot, map_snapshot
from verifier.store import Replica, ReplicaStore, StoreUnavailable

__all__ = ["RedisStore", "StoreUnavailable", "default_snapshot_path", "make_client"]

log = logging.getLogger("qrverify.store")

DEFAULT_MAX_DROP = 0.5
TOUCH_INTERVAL = 1.0
RETIRE_GRACE = 1.0  # seconds a replaced snapshot stays referenced (see _release_retired)
BUILD_TIMEOUT = 1800.0
# a full load while serving spreads its fetches out: a pause as long as each round trip
# (verifier.redis.format.fetch_blobs); the first build of a machine runs at full speed
FETCH_PACE = 1.0


def make_client(url: str, *, timeout: float = 10.0) -> Any:
    """The reader's Redis client for `url` (one server, Cluster or Sentinel; no I/O).
    RedisFailure for a URL it cannot use."""
    return connect(url, role="reader", connect_timeout=2.0, timeout=timeout)


def default_snapshot_path(url: str, namespace: str = "qrverify") -> str:
    """The machine's snapshot file for this Redis and namespace: in $QRVERIFY_SNAPSHOT_DIR,
    else in a directory private to this user under the temporary directory."""
    base = os.environ.get("QRVERIFY_SNAPSHOT_DIR") or os.path.join(
        tempfile.gettempdir(), f"qrverify-{os.getuid()}"
    )
    os.makedirs(base, mode=0o700, exist_ok=True)
    st = os.stat(base)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise StoreUnavailable(
            f"snapshot directory {base} must belong to this user with "
            "mode 0700 (set QRVERIFY_SNAPSHOT_DIR or --snapshot)"
        )
    name = hashlib.sha256(f"{redact_url(url)}\n{namespace}".encode()).hexdigest()[:16]
    return os.path.join(base, f"{namespace}-{name}.snap")


class _Refused(Exception):
    """The guard refused a version (the message says why)."""


class RedisStore(ReplicaStore):
    """A Store over the machine's mapped snapshot. Create with `RedisStore.connect(...)`."""

    def __init__(
        self,
        url: str,
        layout: Layout,
        path: str,
        *,
        trust_override: Any,
        max_age: float,
        poll_interval: float,
        max_drop: float,
    ) -> None:
        self._url_raw = url
        self._url = redact_url(url)
        self._layout = layout
        self._path = path
        self._trust_override = trust_override
        self._max_age = float(max_age)
        self._poll = float(poll_interval)
        self._max_drop = float(max_drop)
        self._build_in_child = True  # builds in a child process (build.py)
        self._builder: BuildProcess | None = None
        self._client: Any = None
        self._lock_fd: int | None = None
        self._snap: Snapshot | None = None
        self._retired: list[tuple[float, Snapshot]] = []  # (when replaced, snapshot)
        self._trust_cache: dict[str, Any] = {}
        self._records_cache: dict[str, Any] = {}  # the records file mapped
        self._sets_cache: dict[str, Any] = {}  # the sets file's tables mapped
        self._confirmed_wall = 0.0  # builder: last time Redis' current was checked
        self._touched = 0.0
        self._connected = False
        self._soft_problem: str | None = None  # Redis unreachable: ready until max_age
        self._hard_problem: str | None = None  # Redis has no / unusable data
        self._refused: dict[str, Any] | None = None
        self._data_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # serialises refresh() and the follower
        self.updates = 0  # versions mapped since start
        self.full_loads = 0  # new versions this process built by a full reload

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        trust_override: Any = None,
        snapshot_path: str | os.PathLike[str] | None = None,
        max_age: float = 60.0,
        follow: bool = True,
        namespace: str = "qrverify",
        poll_interval: float = 0.25,
        max_drop: float = DEFAULT_MAX_DROP,
        start_timeout: float = 30.0,
        build_in_child: bool = True,
    ) -> RedisStore:
        """Map the machine's snapshot, bringing it up to date first when this process
        becomes the builder, and start following. StoreUnavailable with a clear message
        when there is neither a usable Redis nor a usable snapshot."""
        layout = Layout(namespace)
        try:
            parse_url(url)  # a configuration error fails at once
        except RedisFailure as exc:
            raise StoreUnavailable(str(exc)) from None
        path = (
            os.fspath(snapshot_path)
            if snapshot_path is not None
            else default_snapshot_path(url, namespace)
        )
        if not 0.0 <= max_drop <= 1.0:
            raise ValueError("max_drop: a share between 0 and 1")
        store = cls(
            url,
            layout,
            path,
            trust_override=trust_override,
            max_age=max_age,
            poll_interval=poll_interval,
            max_drop=max_drop,
        )
        store._build_in_child = build_in_child
        try:
            store._start(start_timeout)
        except BaseException:
            store.close()
            raise
        if follow:
            store.start()
        return store

    def _start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._watch()  # map whatever the machine has
            if self._take_lock():
                problem = self._first_build()
                if self._snap is not None:
                    if problem:
                        log.warning("starting from the local snapshot: %s", problem)
                    return
                hint = f" (no usable snapshot at {self._path} either)"
                raise StoreUnavailable(f"{problem}{hint}")
            if self._snap is not None:
                return
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    f"no snapshot at {self._path} yet and another process is building it"
                )
            time.sleep(min(self._poll, 0.2))

    def _first_build(self) -> str | None:
        """The builder's first round; the problem as text, or None."""
        for attempt in range(3):
            try:
                self._client_or_connect()
                self._build_once()
                self._connected = True
                return self._hard_problem
            except NETWORK_ERRORS as exc:
                self._soft_problem = describe(exc, self._url)
                return self._soft_problem
            except RedisFailure as exc:
                if exc.category == "configuration":
                    raise StoreUnavailable(str(exc)) from None
                self._soft_problem = str(exc)
                return self._soft_problem
            except redis.RedisError as exc:  # auth, cluster, server
                self._soft_problem = describe(exc, self._url)
                return self._soft_problem
            except StoreDataError as exc:
                # e.g. a sync garbage-collected what we were reading: try again
                self._hard_problem = f"Redis at {self._url} holds unusable data: {exc}"
                if attempt < 2:
                    time.sleep(0.2)
        return self._hard_problem

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="qrverify-redis-follower", daemon=True
            )
            self._thread.start()

    # -- Store interface --------------------------------------------------------------------

    @property
    def snapshot_path(self) -> str:
        return self._path

    @property
    def builder_pid(self) -> int | None:
        """The process id of this builder's child (verifier/redis/build.py), if running."""
        builder = self._builder
        return None if builder is None else builder.pid

    @property
    def is_builder(self) -> bool:
        return self._lock_fd is not None

    def status(self) -> dict[str, Any]:
        replica = self._replica
        counts = replica.counts()
        age = self._age()
        reason: str | None = None
        if self._hard_problem and self.is_builder and self._refused is None:
            reason = self._hard_problem
        elif age > self._max_age:
            reason = f"snapshot is {age:.0f} s old (max {self._max_age:g} s)"
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
            "seq": replica.seq,
            "refused": self._refused,
            "role": "builder" if self.is_builder else "reader",
            "connected": self._connected if self.is_builder else None,
            "redis": self._url,
        }

    def _age(self) -> float:
        if self.is_builder and self._confirmed_wall:
            return max(0.0, time.time() - self._confirmed_wall)
        try:
            return max(0.0, time.time() - os.stat(self._path).st_mtime)
        except OSError:
            return float("inf")

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._thread = None
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001, S110 - closing must not fail
                pass
            self._client = None
        self._release_lock()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the replica ------------------------------------------------------------------------

    @property
    def _replica(self) -> Replica:  # type: ignore[override]
        snap = self._snap
        if snap is None:
            raise StoreUnavailable("no snapshot mapped")
        return snap.replica

    def _install(self, snap: Snapshot) -> None:
        old = self._snap
        self._snap = snap
        if old is not None:
            # kept a moment, then let go of by the follower thread (_release_retired),
            # not by whichever request happens to drop the last reference
            self._retired.append((time.monotonic(), old))
        if old is None or old.replica.version != snap.replica.version:
            self.updates += 1
            log.info("store: serving version %s (seq %d)", snap.replica.version, snap.replica.seq)

    def _watch(self) -> bool:
        """Map the machine's snapshot file if it is not the one mapped. True if changed."""
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return False
        current = self._snap
        if current is not None and current.file_id == (st.st_dev, st.st_ino):
            return False
        t0 = time.perf_counter()
        try:
            # checksums on the first file this process maps; shapes and counts always
            snap = map_snapshot(
                self._path,
                trust_cache=self._trust_cache,
                records_cache=self._records_cache,
                sets_cache=self._sets_cache,
                trust_override=self._trust_override,
                verify=current is None,
            )
        except (OSError, StoreDataError) as exc:
            log.warning("cannot map the snapshot %s: %s", self._path, exc)
            return False
        if current is not None:
            # The builder checked the drop against the manifest (which may confirm it);
            # a reader checks what the file itself shows.
            try:
                self._guard(
                    snap.replica.seq,
                    len(snap.replica.trust),
                    len(snap.replica.revoked),
                    True,
                    current.replica,
                    snap.replica.drl_hashes(),
                )
            except _Refused as exc:
                self._refuse(snap.replica.version, str(exc))
                return False
        t1 = time.perf_counter()
        self._install(snap)
        log.debug("store: mapped in %.3f s, swapped in %.3f s", t1 - t0, time.perf_counter() - t1)
        return True

    def _release_retired(self) -> None:
        """Drop replaced snapshots RETIRE_GRACE seconds after the swap (scans that read
        `store.replica` before it have finished by then): the unmapping then happens on
        the follower thread, with the GIL released."""
        now = time.monotonic()
        while self._retired and now - self._retired[0][0] >= RETIRE_GRACE:
            self._retired.pop(0)

    # -- the guard -----------------------------------------------------------------------------

    def _guard(
        self,
        seq: int,
        keys: int,
        revoked: int,
        drop_confirmed: bool,
        current: Replica | None,
        drl: int = 0,
    ) -> None:
        if keys == 0 and self._trust_override is None:
            raise _Refused("it has no issuer keys")
        if current is None:
            return
        if seq < current.seq:
            raise _Refused(
                f"its sequence number {seq} is lower than {current.seq} of the "
                "version in service (a failover lost a sync?)"
            )
        floor = len(current.revoked) * (1.0 - self._max_drop)
        if revoked < floor and not drop_confirmed:
            raise _Refused(
                f"it drops revocations from {len(current.revoked)} to {revoked} "
                f"(more than {self._max_drop:.0%}; `sync --allow-drop` confirms "
                "a deliberate drop)"
            )
        held = current.drl_hashes()
        if drl < held * (1.0 - self._max_drop) and not drop_confirmed:
            raise _Refused(
                f"it drops EU revocation list hashes from {held} to {drl} "
                f"(more than {self._max_drop:.0%}; `sync --allow-drop` confirms "
                "a deliberate drop)"
            )

    def _refuse(self, version: str, why: str) -> None:
        if self._refused is None or self._refused.get("version") != version:
            log.warning(
                "store: refusing version %s: %s; keeping version %s",
                version,
                why,
                self._snap.replica.version if self._snap else "(none)",
            )
        self._refused = {"version": version, "reason": why}

    # -- the builder -------------------------------------------------------------------------

    def _take_lock(self) -> bool:
        if self._lock_fd is not None:
            return True
        fd = os.open(self._path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _release_lock(self) -> None:
        builder, self._builder = self._builder, None
        if builder is not None:
            builder.close()
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    def _client_or_connect(self) -> Any:
        if self._client is None:
            self._client = make_client(self._url_raw)
        return self._client

    def refresh(self) -> bool:
        """One round of what the follower does (build if builder, then watch the file);
        True if the mapped version changed. Network errors propagate."""
        with self._lock:
            before = self._snap
            if self._take_lock():
                self._client_or_connect()
                self._build_once()
            self._watch()
            self._release_retired()
            return self._snap is not before

    def _confirm(self) -> None:
        now = time.time()
        self._confirmed_wall = now
        self._hard_problem = None
        if now - self._touched >= TOUCH_INTERVAL:
            try:
                os.utime(self._path, (now, now))
                self._touched = now
            except OSError:
                pass

    def _build_once(self) -> None:
        """Bring the machine's snapshot to Redis' current version (builder only)."""
        client = self._client_or_connect()
        vid = read_current(client, self._layout)
        current = self._snap.replica if self._snap is not None else None
        if vid is None:
            self._hard_problem = (
                "Redis holds no qrverify data (flushed, or restarted without persistence); "
                + (
                    f"keeping version {current.version} until `qrverify sync` writes a new one"
                    if current is not None
                    else "run `qrverify sync --bootstrap` first"
                )
            )
            self._confirmed_wall = self._confirmed_wall or 0.0
            return
        if current is not None and vid == current.version:
            self._refused = None
            self._confirm()
            return
        if self._refused is not None and self._refused.get("version") == vid:
            self._confirm()  # still the refused version: keep the last good one
            return
        manifest = read_manifest(client, self._layout, vid)
        try:
            self._guard(
                manifest.seq,
                manifest.trust_keys,
                manifest.revoked.count,
                manifest.drop_confirmed,
                current,
                0 if manifest.drl is None else manifest.drl.count,
            )
        except _Refused as exc:
            self._refuse(vid, str(exc))
            self._confirm()
            return
        self._build(manifest, current)
        self._refused = None
        self._watch()
        self._confirm()

    def _build(self, manifest: Manifest, current: Replica | None) -> None:
        """Write the snapshot file of `manifest`'s version: in the builder child process
        (verifier/redis/build.py, low priority) unless the store was made with
        `build_in_child=False`."""
        base = self._snap if current is not None else None
        pace = FETCH_PACE if current is not None else 0.0
        started = time.perf_counter()
        if self._build_in_child:
            if self._builder is None:
                self._builder = BuildProcess(self._url_raw, self._layout.namespace, self._path)
            full = self._builder.build(
                manifest.version, None if base is None else base.file_id, BUILD_TIMEOUT, pace
            )
        else:
            full = build_version(
                self._client_or_connect(),
                self._layout,
                self._path,
                manifest.version,
                base,
                pace=pace,
            )
        if full and current is not None:
            self.full_loads += 1
        log.info(
            "store: wrote snapshot of version %s in %.2f s%s",
            manifest.version,
            time.perf_counter() - started,
            " (full load)" if full else "",
        )

    # -- following -----------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.1
        pubsub: Any = None
        while not self._stop.is_set():
            wait = self._poll
            try:
                if self._take_lock():
                    client = self._client_or_connect()
                    if pubsub is None:
                        pubsub = client.pubsub(ignore_subscribe_messages=True)
                        pubsub.subscribe(self._layout.channel)
                    pubsub.get_message(timeout=self._poll)  # a change, or the poll interval
                    while pubsub.get_message(timeout=0) is not None:
                        pass
                    with self._lock:
                        self._build_once()
                    if not self._connected:
                        log.info("connected to Redis at %s", self._url)
                    self._connected = True
                    self._soft_problem = None
                    self._data_errors = 0
                    backoff = 0.1
                    wait = 0.0
            except NETWORK_ERRORS as exc:
                if self._connected:
                    log.warning("lost Redis: %s; serving the snapshot", describe(exc, self._url))
                self._connected = False
                self._soft_problem = describe(exc, self._url)
                pubsub = _drop(pubsub)
                wait = backoff * random.uniform(0.8, 1.2)  # noqa: S311 - jitter
                backoff = min(backoff * 2, 5.0)
            except StoreDataError as exc:
                self._data_errors += 1
                if self._data_errors >= 2:
                    self._hard_problem = (
                        f"Redis data unusable, keeping version {self._replica.version}: {exc}"
                    )
                    log.warning("%s", self._hard_problem)
                wait = 0.05 if self._data_errors < 2 else 1.0
            except (redis.RedisError, RedisFailure) as exc:  # auth, configuration, cluster
                problem = describe(exc, self._url)
                if problem != self._soft_problem:
                    log.warning("store follower: %s; serving the snapshot", problem)
                self._connected = False
                self._soft_problem = problem
                pubsub = _drop(pubsub)
                wait = 1.0
            except Exception:  # noqa: BLE001 - the follower must survive anything
                log.exception("store follower error")
                pubsub = _drop(pubsub)
                wait = 1.0
            try:
                with self._lock:
                    self._watch()
                    self._release_retired()
            except Exception:  # noqa: BLE001
                log.exception("store snapshot watch error")
            if wait:
                self._stop.wait(wait)
        _drop(pubsub)


def _drop(pubsub: Any) -> Any:
    """Close a pub/sub connection; returns None (the caller's new value)."""
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # noqa: BLE001, S110 - already broken
            pass
    return None
