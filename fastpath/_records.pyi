"""Type stub for fastpath/_records.pyx: the register's records, buffer-backed."""

from collections.abc import Iterable, Iterator
from typing import Any

MAGIC: bytes
TYPE_NAMES: tuple[str, str, str, str]
MAX_TIME: int
TOMBSTONE: int  # the flag (first byte of a packed record) of an overlay's tombstone

def record_key(ident: str) -> bytes:
    """The 16-byte table key of an unrz or UUID (ValueError when it is neither)."""

class RecordTable:
    """Immutable table of register records over bytes or a read-only mmap (no
    per-record Python objects). Raises ValueError for a damaged buffer. With `overlay`
    (a plain RecordTable of changed records and tombstones) lookups take the overlay's
    record over the base's (both looked up, always) and a tombstone reads as a miss;
    `count` is the merged view's record count (computed from the overlay when None)."""

    def __init__(
        self, buffer: Any, overlay: RecordTable | None = None, count: int | None = None
    ) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, ident: object) -> bool: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def overlay(self) -> RecordTable | None: ...
    @property
    def base_count(self) -> int:
        """Entries of this buffer's own index (a plain table: len())."""
    def to_bytes(self) -> bytes:
        """The table's bytes (a layered table: a plain table of its merged view)."""
    def get(self, ident: str) -> dict[str, Any] | None:
        """The record as a dict of the contract's fields (times as epoch seconds)."""
    def count_present(self, keys: bytes | bytearray | memoryview) -> int:
        """How many of the packed 16-byte keys are in the table (C-level lookups)."""
    def packed_of(self, key: bytes | bytearray | memoryview) -> bytes | None:
        """The packed record of a 16-byte key as a lookup finds it (None: a miss or a
        tombstone)."""
    def packed(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, packed record): a plain table's entries (tombstones included), a
        layered table's merged view (tombstones left out)."""
    def records(self) -> Iterator[tuple[Any, ...]]:
        """Every record as a normalised tuple with its 16-byte key as the id."""
    @staticmethod
    def from_packed(
        entries: Iterable[tuple[Any, Any]], tombstones: bytes | bytearray | memoryview = b""
    ) -> RecordTable:
        """Build from (16-byte key, packed record) pairs (checked for shape) and
        tombstones for the packed 16-byte keys `tombstones`; ValueError on a bad pair or
        a duplicate key."""
    @staticmethod
    def from_records(records: Iterable[tuple[Any, ...]]) -> RecordTable:
        """Build from normalised tuples (id, ck, type index, revoked, valid_from,
        valid_until, name, name_latin, dob, document); ValueError on a bad record."""
