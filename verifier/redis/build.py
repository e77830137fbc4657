"""Building the machine's snapshot file of one Redis version, off the request path.

The machine's builder (verifier/redis/store.py: the process holding the snapshot lock)
decides which version to build (it reads `current` and applies the guard) and hands the
work to one long-lived child process at low CPU (nice 10) and I/O priority:

    python -m verifier.redis.build

The child reads JSON lines on stdin: first {"url", "namespace", "path"}, then one job a
line, {"version", "base": [st_dev, st_ino] of the file the builder has mapped, or null,
"pace": a number (optional, default 0; see build_version)}; for each it builds the file
(from the delta chain over the mapped base when there is one, else in full), renames it
into place and answers one JSON line on stdout:
{"ok": true, "full": bool} or {"ok": false, "kind": "data" | "redis", "error": one line}.
It exits at the end of its input, so it dies with the builder. The URL travels on stdin,
so a password never shows in the process list.

Why a process: parsing chunks and writing the file take CPU, memory bandwidth and I/O;
in a server's worker they competed with its requests (the GIL between its threads, and
the CPU of its scheduling group). The child runs at nice 10 and the lowest best-effort
I/O priority, in the builder's session, so the workers come first (nice 19 starved it on
a busy machine: a revocation then waited for CPU). It writes the file in pieces of at
most 128 KiB per write() (verifier/redis/snapshot.py WRITE_STEP): on a kernel without
preemption a write() of several MiB ran unpreempted for milliseconds, and a worker woken
on that CPU waited it out whatever the child's priority. A full load while the machine
serves is paced (the job's "pace"; verifier.redis.format.fetch_blobs): most of a fetch's
CPU is spent by Redis and the network stack, where the child's priority does not reach.

`build_version` is the work itself; a store made with `build_in_child=False` (tests)
calls it in-process.

Hash sets: the revoked and registry tables live in a sets file beside the snapshot. A
version whose delta chain from the mapped base changes a few hashes keeps that file and
writes the changed hashes as overlay sections of the small snapshot file (sets_overlay;
the base's overlay carried on, only real differences from the file kept, checked against
the manifest's counts). Past SETS_OVERLAY_MAX hashes per set the merged set with the
chain applied is written to a new sets file (a rebase); without a usable chain (missing,
malformed, not adding up) the sets are loaded from Redis in full.

Records: a version that changes a few register records keeps the base's records file and
carries the changed records (and tombstones for removed ones) as an overlay section of
the small snapshot file, built from the delta chain's `x`/`xa`/`xd` (records_overlay):
nothing is written for the ~1 GB file. Without a usable chain, or when the overlay would
grow past OVERLAY_MAX_ENTRIES / OVERLAY_MAX_BYTES, the records file is rewritten (a
rebase) piece by piece: a piece whose blob id and place are the same as in the mapped
base file is copied from the mapping, only changed pieces are fetched from Redis.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import select
import subprocess
import sys
import time
from typing import Any

from verifier.redis.format import MAX_PACE

EXIT_OK, EXIT_DATA, EXIT_REDIS = 0, 3, 4
NICE = 10  # low, but not so low that a busy machine starves the builder (revocations)
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "arm64": 30}
_IOPRIO_CLASS_BE, _IOPRIO_LOWEST = 2, 7
RETIRE_GRACE = 5.0  # seconds a replaced file is kept open (see _Child.release_old)


def lower_priority() -> None:
    """Nice NICE and the lowest best-effort I/O priority for this process (best effort:
    a platform without them runs at normal priority)."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except (AttributeError, OSError):
        pass
    number = _IOPRIO_SET.get(platform.machine())
    if number is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(number, 1, 0, (_IOPRIO_CLASS_BE << 13) | _IOPRIO_LOWEST)  # this process
    except (OSError, AttributeError):
        pass


def build_version(
    client: Any,
    layout: Any,
    path: str,
    version: str,
    base: Any = None,
    retired: list[int] | None = None,
    pace: float = 0.0,
) -> bool:
    """Write the snapshot file of `version` to `path` (atomically), its register records
    to a records file beside it (unless the base's is the same). `base` is the mapped
    snapshot (verifier.redis.snapshot.Snapshot) of an earlier version or None; the sets
    follow the delta chain from it when Redis still has one, else they are loaded in
    full. Records files no longer named are deleted (descriptors of them go to `retired`
    if given, else are closed). `pace` spreads the fetches of a full load out (see
    verifier.redis.format.fetch_blobs). Returns True for a full load. StoreDataError for
    unusable data, redis errors for Redis problems."""
    from verifier.redis.format import (
        fetch_blobs,
        parse_trust,
        read_delta_chain,
        read_manifest,
        snapshot_extras,
    )
    from verifier.redis.snapshot import (
        SETS_SUFFIX,
        records_file_name,
        remove_records_files,
        sets_file_name,
        sets_file_stem,
        write_records_file,
        write_sets_file,
        write_snapshot,
    )

    manifest = read_manifest(client, layout, version)
    current = None if base is None else base.replica
    if current is not None and current.trust_id == manifest.trust_blob:
        trust_json = base.trust_json
    else:
        trust_json = fetch_blobs(client, layout, [manifest.trust_blob])[0]
        parse_trust(trust_json)  # refuse unusable keys before writing
    chain = None
    if current is not None:
        chain = read_delta_chain(client, layout, current.version, manifest.version)
    sets_name = sets_file_name(path, manifest.revoked, manifest.registry)
    old_sets = None if base is None else base.sets_ref
    sets_over: dict[str, tuple[bytes, bytes, int]] | None = None
    full = False
    if old_sets is not None and sets_file_stem(str(old_sets.get("file"))) == sets_name:
        sets_ref = old_sets  # the file holds exactly these sets: nothing is written
    elif old_sets is not None and (sets_over := sets_overlay(current, manifest, chain)) is not None:
        sets_ref = old_sets  # a few hashes changed: the file stays, they ride over it
    else:
        sets = None if chain is None else _apply_chain(current, manifest, chain)
        full = sets is None
        if sets is None:
            revoked = _full_set(client, layout, manifest.revoked, pace)
            registry = (
                None
                if manifest.registry is None
                else _full_set(client, layout, manifest.registry, pace)
            )
        else:
            revoked, registry = sets
        sets_ref = write_sets_file(path, sets_name, revoked, registry)
        del revoked, registry, sets  # the tables are in the file now
    ref = None
    pieces = None
    overlay = None
    if manifest.records is not None:
        pieces = [list(p) for p in manifest.records.pieces]
        name = records_file_name(path, manifest.records.pieces)
        old_ref = None if base is None else base.records_ref
        if old_ref is not None and old_ref.get("file") == name:
            ref = old_ref  # the same records: the file stays, nothing is written for them
        elif (overlay := records_overlay(base, manifest.records, chain)) is not None:
            # a few records changed: the base's file stays, the changes ride over it
            ref = old_ref
            pieces = [list(p) for p in base.records_pieces]  # the FILE's pieces
        else:
            ref = write_records_file(
                path,
                manifest.records.pieces,
                _record_chunks(client, layout, manifest.records, base, pace),
                manifest.records.count,
            )
    write_snapshot(
        path,
        version=manifest.version,
        seq=manifest.seq,
        trust_json=trust_json,
        trust_id=manifest.trust_blob,
        revoked=None,
        registry=None,
        sets_ref=sets_ref,
        sets_overlay=sets_over,
        records_ref=ref,
        records_pieces=pieces,
        records_overlay=overlay,
        **snapshot_extras(client, layout, manifest, current),
    )
    # records files no version in service names any more (a worker still mapping one
    # keeps it until it moves); `retired` gets their descriptors to close later
    held = remove_records_files(path, {ref["file"]} if ref is not None else set())
    held += remove_records_files(path, {sets_ref["file"]}, SETS_SUFFIX)
    if retired is None:
        for fd in held:
            os.close(fd)
    else:
        retired.extend(held)
    return full


OVERLAY_MAX_ENTRIES = 262_144  # records (changed + tombstones) layered over a records file
OVERLAY_MAX_BYTES = 32 << 20


def records_overlay(base: Any, info: Any, chain: Any) -> tuple[bytes, int] | None:
    """The records overlay of the new version over the base snapshot's records file:
    (RecordTable bytes, record count of the merged view), or None when the file must be
    rewritten: no file or piece list in the base, a delta of the chain that does not
    describe its records change (no `x`), an overlay over OVERLAY_MAX_ENTRIES or
    OVERLAY_MAX_BYTES (a rebase), or a result that does not add up to the manifest's
    count (fail closed: never serve a wrong count). The base's own overlay is carried
    on; only records that differ from the file are kept, tombstones only for keys the
    file holds."""
    from fastpath._records import TOMBSTONE, RecordTable
    from verifier.redis.format import StoreDataError, packed_field

    if (
        chain is None
        or base is None
        or base.records_ref is None
        or base.records_view is None
        or not base.records_pieces
    ):
        return None
    if any(delta.get(b"x") != b"1" for delta in chain):
        return None
    changes: dict[bytes, bytes | None] = {}  # key -> packed record, None: removed
    try:
        if base.records_overlay is not None:
            for key, packed in RecordTable(base.records_overlay).packed():
                changes[key] = None if packed[0] & TOMBSTONE else packed
        for delta in chain:
            added = delta.get(b"xa", b"")
            if added:
                for key, packed in RecordTable(added).packed():
                    if packed[0] & TOMBSTONE:
                        return None
                    changes[key] = packed
            removed = packed_field(delta.get(b"xd", b""), "xd")
            for i in range(0, len(removed), 16):
                changes[removed[i : i + 16]] = None
            if len(changes) > OVERLAY_MAX_ENTRIES:
                return None
        file_table = RecordTable(base.records_view)
    except (ValueError, StoreDataError):
        return None  # an unusable delta: the pieces, the truth, are rewritten
    count = len(file_table)
    kept: list[tuple[bytes, bytes]] = []
    tombs = bytearray()
    size = 0
    for key, change in changes.items():
        old = file_table.packed_of(key)
        if change is None:
            if old is not None:
                tombs += key
                count -= 1
        elif change != old:
            kept.append((key, change))
            size += len(change)
            count += old is None
        if size > OVERLAY_MAX_BYTES:
            return None
    if count != info.count or not (kept or tombs):
        # An empty overlay over a file whose pieces differ from the manifest's would
        # claim equal records (their bytes are canonical): the delta is wrong.
        return None
    try:
        data = bytes(RecordTable.from_packed(kept, bytes(tombs)).to_bytes())
    except ValueError:
        return None
    return data, count


SETS_OVERLAY_MAX = 262_144  # hashes per set (added + removed) layered over a sets file


def sets_overlay(
    current: Any, manifest: Any, chain: Any
) -> dict[str, tuple[bytes, bytes, int]] | None:
    """The overlays of the new version's hash sets over the base snapshot's sets file:
    {"revoked" | "registry": (added packed, removed packed, merged count)}, or None when
    the sets must be written to a new file: no chain, a registry that appears or goes, an
    overlay over SETS_OVERLAY_MAX hashes (a rebase), a malformed delta, or a result that
    does not add up to the manifest's count (fail closed). The base's own overlay is
    carried on; only real differences from the file are kept (added: not in the file;
    removed: in the file); a set equal to the file's gets no overlay (an empty dict: a
    change undone keeps the file as it is)."""
    from verifier.redis.format import StoreDataError, packed_field

    if chain is None or current is None:
        return None
    if (manifest.registry is None) != (current.registry is None):
        return None
    wanted = [("revoked", current.revoked, manifest.revoked, "ra", "rd")]
    if current.registry is not None:
        wanted.append(("registry", current.registry, manifest.registry, "ga", "gd"))
    out: dict[str, tuple[bytes, bytes, int]] = {}
    for name, served, info, f_add, f_del in wanted:
        layers = served.layers()
        table = served if layers is None else layers[0]
        changes: dict[bytes, bool] = {}  # hash -> member of the new set
        try:
            if layers is not None:
                for key in layers[2]:
                    changes[key] = False
                for key in layers[1]:
                    changes[key] = True
            for delta in chain:
                removed = packed_field(delta.get(f_del.encode(), b""), f_del)
                added = packed_field(delta.get(f_add.encode(), b""), f_add)
                if (len(changes) + (len(removed) + len(added)) // 16) > 2 * SETS_OVERLAY_MAX:
                    return None
                for i in range(0, len(removed), 16):
                    changes[removed[i : i + 16]] = False
                for i in range(0, len(added), 16):
                    changes[added[i : i + 16]] = True
                if len(changes) > SETS_OVERLAY_MAX:
                    return None
        except StoreDataError:
            return None  # an unusable delta: the sets are rebuilt from the chunks
        plus = sorted(k for k, member in changes.items() if member and k not in table)
        minus = sorted(k for k, member in changes.items() if not member and k in table)
        count = len(table) + len(plus) - len(minus)
        if count != info.count:
            return None
        if plus or minus:
            out[name] = (b"".join(plus), b"".join(minus), count)
    return out


def _full_set(client: Any, layout: Any, info: Any, pace: float) -> Any:
    from fastpath._hashset import HashSet
    from verifier.redis.format import StoreDataError, fetch_set

    result = HashSet(fetch_set(client, layout, info, pace=pace))
    if len(result) != info.count:
        raise StoreDataError("a set's chunks hold duplicate hashes")
    return result


def _record_chunks(client: Any, layout: Any, info: Any, base: Any, pace: float) -> Any:
    """The bytes of the RecordTable of `info`, piece by piece, in order: a piece the
    mapped base holds at the same place with the same blob id comes from the mapping,
    the others from Redis (fetched up to 64 at a time, checked against their ids)."""
    from verifier.redis.format import StoreDataError, fetch_blobs

    old: set[tuple[int, str, int]] = set()
    view = None
    if base is not None and base.records_pieces and base.replica.records is not None:
        view = base.records_view
        pos = 0
        for bid, size in base.records_pieces:
            old.add((pos, bid, size))
            pos += size

    def reusable(at: int, bid: str, size: int) -> bool:
        return view is not None and (at, bid, size) in old and at + size <= len(view)

    pieces = list(info.pieces)
    pos, i = 0, 0
    while i < len(pieces):
        bid, size = pieces[i]
        if reusable(pos, bid, size):
            yield view[pos : pos + size]  # type: ignore[index]
            pos += size
            i += 1
            continue
        batch: list[tuple[str, int]] = []
        end = pos
        while i < len(pieces) and len(batch) < 64 and not reusable(end, *pieces[i]):
            batch.append(pieces[i])
            end += pieces[i][1]
            i += 1
        blobs = fetch_blobs(client, layout, [b for b, _ in batch], pace=pace)
        for (_, want), blob in zip(batch, blobs, strict=True):
            if len(blob) != want:
                raise StoreDataError("a records piece's size does not match the manifest")
            yield blob
        pos = end


def _apply_chain(current: Any, manifest: Any, chain: Any) -> Any:
    """Writable copies of the mapped sets with the delta chain applied, or None when the
    chain does not fit (then the caller loads in full)."""
    from fastpath._hashset import apply_changes
    from verifier.redis.format import HASH_SIZE, StoreDataError, packed_field

    if current is None or (manifest.registry is None) != (current.registry is None):
        return None
    ops_rev: list[tuple[bytes, bytes]] = []
    ops_reg: list[tuple[bytes, bytes]] = []
    expect_rev = len(current.revoked)
    expect_reg = 0 if current.registry is None else len(current.registry)
    for delta in chain:
        try:
            ra, rd, ga, gd = (
                packed_field(delta.get(f.encode(), b""), f) for f in ("ra", "rd", "ga", "gd")
            )
        except StoreDataError:
            return None  # a malformed delta: load in full
        if current.registry is None and (ga or gd):
            return None
        ops_rev.append((ra, rd))
        ops_reg.append((ga, gd))
        expect_rev += (len(ra) - len(rd)) // HASH_SIZE
        expect_reg += (len(ga) - len(gd)) // HASH_SIZE
    if expect_rev != manifest.revoked.count or (
        manifest.registry is not None and expect_reg != manifest.registry.count
    ):
        return None
    revoked = current.revoked.copy()
    registry = None if current.registry is None else current.registry.copy()
    ops: list[tuple[Any, bytes | None, bytes | None]] = []
    for (ra, rd), (ga, gd) in zip(ops_rev, ops_reg, strict=True):
        ops.append((revoked, ra, rd))
        if registry is not None:
            ops.append((registry, ga, gd))
    apply_changes(ops)
    if len(revoked) != manifest.revoked.count or (
        registry is not None
        and manifest.registry is not None
        and len(registry) != manifest.registry.count
    ):
        return None  # the chain does not add up to the manifest's counts: load in full
    return revoked, registry


class BuildProcess:
    """The builder's child process (started on first use, restarted after it dies)."""

    def __init__(self, url: str, namespace: str, path: str) -> None:
        self._setup = json.dumps({"url": url, "namespace": namespace, "path": path})
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        # -P: the child does not put the working directory first on sys.path
        self._proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-P", "-m", "verifier.redis.build"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._send(self._setup)
        return self._proc

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _send(self, line: str) -> None:
        import redis

        proc = self._proc
        if proc is None or proc.stdin is None:
            raise redis.ConnectionError("snapshot build process not running")
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            self.close()
            raise redis.ConnectionError("snapshot build process ended") from None

    def build(
        self, version: str, base: tuple[int, int] | None, timeout: float, pace: float = 0.0
    ) -> bool:
        """Build `version` over the mapped file `base` ((st_dev, st_ino) or None), its
        fetches spread out by `pace` (build_version); True for a full load.
        StoreDataError for unusable data; redis.ConnectionError for a Redis problem, a
        dead child or a timeout (the child is then ended)."""
        import redis

        from verifier.redis.format import StoreDataError

        proc = self._start()
        job = {"version": version, "base": None if base is None else list(base), "pace": pace}
        self._send(json.dumps(job))
        out = proc.stdout
        if out is None:
            raise redis.ConnectionError("snapshot build process not running")
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else b""
        if not line:
            self.close()
            why = "timed out" if not ready else "ended"
            raise redis.ConnectionError(f"snapshot build process {why}")
        try:
            reply = json.loads(line)
            ok, full = bool(reply["ok"]), bool(reply.get("full"))
        except (ValueError, KeyError, TypeError):
            self.close()
            raise redis.ConnectionError("snapshot build process answered garbage") from None
        if ok:
            return full
        why = str(reply.get("error") or "snapshot build failed")
        if reply.get("kind") == "data":
            raise StoreDataError(why)
        raise redis.ConnectionError(f"snapshot build: {why}")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            proc.wait(timeout=5)  # it ends at the end of its input
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class _Child:
    """The child's state: one Redis client and the mapping of the machine's file."""

    def __init__(self, url: str, namespace: str, path: str) -> None:
        from verifier.redis.connect import connect
        from verifier.redis.format import Layout

        self.url, self.path = url, path
        self.layout = Layout(namespace)
        self.client = connect(url, role="reader", connect_timeout=2.0, timeout=60.0)
        self.base: Any = None
        self.retired: list[tuple[float, int]] = []  # (when replaced, descriptor)
        self.sets_cache: dict[str, Any] = {}  # the sets file's tables, mapped once

    def _base(self, file_id: Any) -> Any:
        """The mapped snapshot the builder serves (the file at `path`, if it is still the
        one the builder named), or None (then the version is loaded in full)."""
        from verifier.redis.format import StoreDataError
        from verifier.redis.snapshot import map_snapshot

        if not isinstance(file_id, list) or len(file_id) != 2:
            self.base = None
            return None
        want = (int(file_id[0]), int(file_id[1]))
        if self.base is not None and self.base.file_id == want:
            return self.base
        self.base = None
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) != want:
                return None
            # the builder has checked this file; the tables' counts are checked again
            # here, since their writable copies grow from them
            # (the sets file's tables are counted once, when first mapped)
            snap = map_snapshot(
                self.path, verify=False, check_counts=True, sets_cache=self.sets_cache
            )
        except (OSError, StoreDataError):
            return None
        if snap.file_id != want:
            return None
        self.base = snap
        return snap

    def job(self, job: dict[str, Any]) -> dict[str, Any]:
        import redis

        from verifier.redis.connect import RedisFailure, describe
        from verifier.redis.format import StoreDataError

        try:
            old = os.open(self.path, os.O_RDONLY)
        except OSError:
            old = -1
        try:
            base = self._base(job.get("base"))
            held: list[int] = []
            full = build_version(
                self.client,
                self.layout,
                self.path,
                str(job["version"]),
                base,
                held,
                float(job.get("pace", 0.0)),
            )
            now = time.monotonic()
            self.retired.extend((now, fd) for fd in held)
        except StoreDataError as exc:
            return {"ok": False, "kind": "data", "error": str(exc)[:500]}
        except (redis.RedisError, RedisFailure, OSError) as exc:
            return {"ok": False, "kind": "redis", "error": describe(exc)[:500]}
        finally:
            self.base = None  # the next job names the file the builder maps then
            _trim_heap()
            if old >= 0:
                self.retired.append((time.monotonic(), old))
        return {"ok": True, "full": full}

    def release_old(self, everything: bool = False) -> None:
        """Let go of replaced files once the workers have had RETIRE_GRACE seconds to map
        the new one. The last process to let go of a deleted file frees its page cache
        (about 0.1 s for 10 M hashes, in the kernel): this one, at low priority, rather
        than a worker, maybe on a thread answering a request."""
        now = time.monotonic()
        while self.retired and (everything or now - self.retired[0][0] >= RETIRE_GRACE):
            _, fd = self.retired.pop(0)
            try:
                _drop_cache(fd)
            finally:
                os.close(fd)


def _trim_heap() -> None:
    """Give the C heap's free memory back to the system after a build (glibc keeps freed
    blocks of the fetched chunks otherwise: ~150 MB idle after a 10 M full load)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _drop_cache(fd: int, step: int = 32 << 20) -> None:
    """Drop a replaced file's pages from the page cache in steps (pages some process
    still maps stay), so freeing them is spread out and done here."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        size = os.fstat(fd).st_size
        for start in range(0, size, step):
            os.posix_fadvise(fd, start, step, os.POSIX_FADV_DONTNEED)
            time.sleep(0.002)
    except OSError:
        pass


class _Lines:
    """Lines from a file descriptor with a timeout (no buffering hidden from select)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def next(self, timeout: float) -> bytes | None:
        """The next line; b"" at the end of the input, None after `timeout` seconds."""
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return b""
            self.buf += chunk
            if len(self.buf) > 1 << 20:
                return b""  # no job line is that long
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"


def _pace_ok(job: dict[str, Any]) -> bool:
    pace = job.get("pace", 0.0)
    return type(pace) in (int, float) and 0.0 <= pace <= MAX_PACE


def main() -> int:
    lower_priority()
    lines = _Lines(sys.stdin.fileno())
    try:
        setup = json.loads(lines.next(60.0) or b"")
        url, namespace, path = (str(setup[k]) for k in ("url", "namespace", "path"))
    except (ValueError, KeyError, TypeError):
        print("snapshot build: bad setup line", file=sys.stderr)
        return EXIT_DATA
    try:
        child = _Child(url, namespace, path)
    except Exception as exc:  # noqa: BLE001 - reported, then the builder retries
        print(f"snapshot build: {exc}", file=sys.stderr)
        return EXIT_REDIS
    out = sys.stdout
    try:
        while True:
            line = lines.next(1.0)
            child.release_old()
            if line is None:
                continue
            if not line:
                break
            try:
                job = json.loads(line)
                if not isinstance(job, dict) or "version" not in job or not _pace_ok(job):
                    raise ValueError
            except ValueError:
                reply: dict[str, Any] = {"ok": False, "kind": "data", "error": "bad job line"}
            else:
                reply = child.job(job)
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        child.release_old(everything=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
