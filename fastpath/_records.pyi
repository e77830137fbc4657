"""Type stub for fastpath/_records.pyx: the register's records, buffer-backed."""

from collections.abc import Iterable, Iterator
from typing import Any

MAGIC: bytes
TYPE_NAMES: tuple[str, str, str, str]
MAX_TIME: int

def record_key(ident: str) -> bytes:
    """The 16-byte table key of an unrz or UUID (ValueError when it is neither)."""

class RecordTable:
    """Immutable table of register records over bytes or a read-only mmap (no
    per-record Python objects). Raises ValueError for a damaged buffer."""

    def __init__(self, buffer: Any) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, ident: object) -> bool: ...
    @property
    def nbytes(self) -> int: ...
    def to_bytes(self) -> bytes: ...
    def get(self, ident: str) -> dict[str, Any] | None:
        """The record as a dict of the contract's fields (times as epoch seconds)."""
    def count_present(self, keys: bytes | bytearray | memoryview) -> int:
        """How many of the packed 16-byte keys are in the table (C-level lookups)."""
    def records(self) -> Iterator[tuple[Any, ...]]:
        """Every record as a normalised tuple with its 16-byte key as the id."""
    @staticmethod
    def from_records(records: Iterable[tuple[Any, ...]]) -> RecordTable:
        """Build from normalised tuples (id, ck, type index, revoked, valid_from,
        valid_until, name, name_latin, dob, document); ValueError on a bad record."""
