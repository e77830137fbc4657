"""Bounded-memory input for `qrverify sync`: packed 16-byte hashes spooled to anonymous
temporary files, one per partition of their first byte (256 partitions).

The planner (verifier/redis/sync.py) then reads one partition at a time, sorted and
without duplicates, so the memory a sync needs is about one partition (1/256 of the
input) plus one bucket of the set, whatever the input's size. The files are unlinked
from the start (`tempfile.TemporaryFile`): a sync that is killed leaves nothing behind.

    spool = Spool()
    spool += raw16            # one hash (the JSON Lines parser's sink)
    spool.add_packed(packed)  # many
    spool.finish()
    spool.sorted_part(p)      # partition p: ascending, unique
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from fastpath._hashset import HashSet, difference_sorted

__all__ = [
    "HASH_SIZE",
    "NPART",
    "Parts",
    "SortedParts",
    "Spool",
    "SpooledRevocations",
    "spool_revocations",
    "temporary_file",
    "write_all",
]

HASH_SIZE = 16
NPART = 256  # partitions: the first byte of a hash
FLUSH_BYTES = 1 << 20  # buffered across all partitions before they go to their files


def temporary_file(prefix: str) -> IO[bytes]:
    """An anonymous temporary file, unbuffered: the callers write large buffers, and 256
    open files with 8 KiB buffers each would cost 2 MiB for nothing."""
    return tempfile.TemporaryFile(prefix=prefix, buffering=0)


def write_all(fh: IO[bytes], data: bytes | bytearray | memoryview) -> None:
    """Write all of `data` (an unbuffered file may take less than asked)."""
    view = memoryview(data)
    while view:
        n = fh.write(view)
        if not n:
            raise OSError("temporary file: short write")
        view = view[n:]


class Parts:
    """NPART byte streams in temporary files (made on first use), with at most
    FLUSH_BYTES buffered across all of them."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._bufs = [bytearray() for _ in range(NPART)]
        self._files: list[IO[bytes] | None] = [None] * NPART
        self._buffered = 0

    def write(self, part: int, data: bytes | bytearray) -> None:
        """Append to stream `part` (buffered)."""
        self._bufs[part] += data
        self._buffered += len(data)
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def write_now(self, part: int, data: bytes | bytearray | memoryview) -> None:
        """Append to stream `part` straight to its file (a large buffer)."""
        fh = self._files[part]
        if fh is None:
            fh = self._files[part] = temporary_file(self._prefix)
        write_all(fh, data)

    def flush(self) -> None:
        for part, buf in enumerate(self._bufs):
            if buf:
                self.write_now(part, buf)
                self._bufs[part] = bytearray()
        self._buffered = 0

    def read(self, part: int) -> bytes:
        """Stream `part` as written (what is buffered included)."""
        self.flush()
        fh = self._files[part]
        if fh is None:
            return b""
        fh.seek(0)
        return fh.read()

    def close(self) -> None:
        for i, fh in enumerate(self._files):
            if fh is not None:
                fh.close()
                self._files[i] = None
        self._bufs = [bytearray() for _ in range(NPART)]
        self._buffered = 0


class Spool:
    """Packed hashes, partitioned by their first byte into temporary files."""

    def __init__(self) -> None:
        self._parts = Parts("qrverify-sync-")
        self.count = 0  # entries added (duplicates included)
        self._finished = False

    def __iadd__(self, raw: bytes) -> Spool:
        """Add one 16-byte hash (the revocations parser appends entries this way)."""
        self._parts.write(raw[0], raw)
        self.count += 1
        return self

    def add_packed(self, packed: bytes | bytearray | memoryview) -> None:
        """Add a buffer of concatenated 16-byte hashes (sorted first, so each partition
        is one slice)."""
        if len(packed) % HASH_SIZE:
            raise ValueError("packed hashes: length is not a multiple of 16")
        data = HashSet(packed).to_packed() if len(packed) else b""
        self.count += len(packed) // HASH_SIZE
        n = len(data) // HASH_SIZE
        start = 0
        while start < n:
            first = data[start * HASH_SIZE]
            lo, hi = start + 1, n
            while lo < hi:  # first entry of a later partition
                mid = (lo + hi) // 2
                if data[mid * HASH_SIZE] <= first:
                    lo = mid + 1
                else:
                    hi = mid
            self._parts.write_now(first, data[start * HASH_SIZE : lo * HASH_SIZE])
            start = lo

    def finish(self) -> Spool:
        """Flush what is buffered; the spool is then read-only."""
        self._parts.flush()
        self._finished = True
        return self

    def part(self, part: int) -> bytes:
        """Partition `part` as added (any order, duplicates kept)."""
        if not self._finished:
            self.finish()
        return self._parts.read(part)

    def sorted_part(self, part: int) -> bytes:
        raw = self.part(part)
        return HashSet(raw).to_packed() if raw else b""

    def close(self) -> None:
        self._parts.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemorySpool:
    """A Spool's read side over hashes already in memory (a caller that passes packed
    bytes holds them anyway): sorted once, partitions are slices, nothing touches disk."""

    def __init__(self, packed: bytes | bytearray | memoryview) -> None:
        if len(packed) % HASH_SIZE:
            raise ValueError("packed hashes: length is not a multiple of 16")
        self.count = len(packed) // HASH_SIZE
        self._data = HashSet(packed).to_packed() if len(packed) else b""
        n = len(self._data) // HASH_SIZE
        self._starts: list[int] = []
        pos = 0
        for part in range(NPART):
            self._starts.append(pos)
            pos = self._next(pos, part, n)
        self._starts.append(n)

    def _next(self, pos: int, part: int, n: int) -> int:
        lo, hi = pos, n  # the first entry of a later partition
        while lo < hi:
            mid = (lo + hi) // 2
            if self._data[mid * HASH_SIZE] <= part:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def finish(self) -> MemorySpool:
        return self

    def part(self, part: int) -> bytes:
        return self._data[self._starts[part] * HASH_SIZE : self._starts[part + 1] * HASH_SIZE]

    sorted_part = part  # already sorted and unique

    def close(self) -> None:
        self._data = b""


class SortedParts:
    """The partitions of an input spool, each sorted and unique, with the hashes of a
    removal spool taken out (a second set of temporary files); `count` is the number of
    distinct hashes that remain. Read back one partition at a time (`load`), with the
    last one cached."""

    bits = 8  # a unit is one partition: the first byte

    def __init__(self, data: AnySpool | None, removed: AnySpool | None = None) -> None:
        # input already in memory stays there (its partitions as slices), else to disk
        self._mem: list[bytes] | None = (
            [b""] * NPART if data is None or isinstance(data, MemorySpool) else None
        )
        self._parts = Parts("qrverify-sync-")
        self.count = 0
        self.present: list[bool] = [False] * NPART
        for part in range(NPART):
            content = data.sorted_part(part) if data is not None else b""
            if content and removed is not None:
                gone = removed.sorted_part(part)
                if gone:
                    content = difference_sorted(content, gone)
            if content:
                if self._mem is not None:
                    self._mem[part] = content
                else:
                    self._parts.write_now(part, content)
                self.count += len(content) // HASH_SIZE
                self.present[part] = True
        self._cached: tuple[int, bytes] = (-1, b"")

    def load(self, unit: int) -> bytes:
        if self._mem is not None:
            return self._mem[unit]
        if self._cached[0] != unit:
            self._cached = (unit, self._parts.read(unit) if self.present[unit] else b"")
        return self._cached[1]

    def close(self) -> None:
        self._parts.close()
        self._mem = None if self._mem is None else []
        self._cached = (-1, b"")


AnySpool = Spool | MemorySpool


def as_spool(value: Any) -> AnySpool | None:
    """A finished spool from a spool (as is), packed bytes (kept in memory: the caller
    holds them anyway), or None."""
    if value is None:
        return None
    if isinstance(value, (Spool, MemorySpool)):
        return value.finish()
    return MemorySpool(value)


@dataclass
class SpooledRevocations:
    """verifier.revocations.Revocations with its lists spooled (sync_state takes
    either): `registry` / `removed` / `registry_removed` None when the input has none."""

    revoked: Spool
    registry: Spool | None = None
    removed: Spool | None = None
    type_counts: dict[str, int] = field(default_factory=dict)
    registry_removed: Spool | None = None

    @property
    def revoked_count(self) -> int:
        return self.revoked.count

    @property
    def registry_count(self) -> int | None:
        return None if self.registry is None else self.registry.count

    def close(self) -> None:
        for spool in (self.revoked, self.registry, self.removed, self.registry_removed):
            if spool is not None:
                spool.close()


def spool_revocations(
    path: str | os.PathLike[str] | None,
    *,
    remove: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SpooledRevocations:
    """The revocation file `path` (any form load_revocations reads) spooled, plus the
    `remove` file's hashes as removals: its revoked and removed entries leave the revoked
    set, its registry entries the registry set. Memory does not grow with the files'
    size. RevocationFileError as load_revocations."""
    from verifier.revocations import load_revocations_into

    revoked, registry, removed, registry_gone = Spool(), Spool(), Spool(), Spool()
    spools = (revoked, registry, removed, registry_gone)
    try:
        counts: dict[str, int] = {}
        seen_registry = seen_removed = seen_registry_gone = False
        if path is not None:
            counts, seen_registry, seen_removed = load_revocations_into(
                path, revoked, registry, removed, progress
            )
        if remove is not None:
            _, seen_registry_gone, _ = load_revocations_into(
                remove, removed, registry_gone, removed, progress
            )
            seen_removed = True
    except BaseException:
        for spool in spools:
            spool.close()
        raise
    if not seen_registry:
        registry.close()
    if not seen_registry_gone:
        registry_gone.close()
    return SpooledRevocations(
        revoked.finish(),
        registry.finish() if seen_registry else None,
        removed.finish() if seen_removed else None,
        counts,
        registry_gone.finish() if seen_registry_gone else None,
    )
