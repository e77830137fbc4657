"""Compact set of 16-byte keys (truncated SHA-256 hashes); see fastpath/_hashset.pyx.

Memory is about 19-23 bytes per key; membership creates no Python objects at C level
(`contains_ptr` in _hashset.pxd). Keys are placed by a keyed permutation seeded from
os.urandom at import, so crafted keys (sharing a prefix) cannot build long probe
chains. Keys are `bytes` of exactly 16 bytes (bytearray and memoryview are accepted and
copied); any other length raises ValueError, any other type TypeError. Iteration and
`to_packed()` are in ascending byte order.
"""

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from typing_extensions import Buffer

class HashSet:
    def __init__(self, packed: Buffer | None = None) -> None:
        """An empty set, or one holding the keys of `packed` (see add_packed)."""
    def contains(self, key: bytes) -> bool:
        """Membership test; ValueError unless len(key) == 16."""
    def __contains__(self, key: object) -> bool: ...
    def contains_any(self, a: bytes, b: bytes, c: bytes) -> bool:
        """True when any of the three keys is in the set (one call for a revocation check)."""
    def add(self, key: bytes) -> bool:
        """Add one key; True if it was not there before."""
    def discard(self, key: bytes) -> bool:
        """Remove one key if present; True if it was there."""
    def add_packed(self, buffer: Buffer) -> int:
        """Add every key of a bytes-like buffer of concatenated 16-byte keys (its length
        must be a multiple of 16, else ValueError and nothing is added). Sorted input
        (as produced by to_packed) loads in one sequential pass. Returns how many keys
        were new."""
    def discard_packed(self, buffer: Buffer) -> int:
        """Remove every key of a packed buffer; returns how many were present."""
    def missing_packed(self, buffer: Buffer) -> bytes:
        """The keys of a packed buffer that are not in this set, packed, in input order
        (so `a.missing_packed(b.to_packed())` is the sorted difference b - a)."""
    def to_packed(self) -> bytes:
        """All keys concatenated in ascending order."""
    def copy(self) -> HashSet:
        """An independent, writable copy (one memcpy of the table; also of a view)."""
    def __copy__(self) -> HashSet: ...
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __iter__(self) -> Iterator[bytes]:
        """Keys in ascending order (iterates over a snapshot taken at the call)."""
    def __eq__(self, other: object) -> bool: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    @property
    def nbytes(self) -> int:
        """Bytes allocated for the table."""
    @property
    def capacity(self) -> int:
        """Number of home slots (the table holds up to 90 % of this before growing)."""
    @property
    def readonly(self) -> bool:
        """True for a view made by table_view (mutations raise TypeError)."""
    @property
    def layered(self) -> bool:
        """True for a layered view (layered_view)."""
    def layers(self) -> tuple[HashSet, HashSet, HashSet] | None:
        """(table, added, removed) of a layered view, else None."""
    def probe_stats(self) -> tuple[int, float]:
        """(longest, mean) distance of a stored key from its home slot."""
    def table_info(self) -> dict[str, Any]:
        """{"cap", "nslots", "count", "has_zero", "seed" (32 bytes)}: what table_view
        needs besides the bytes written by write_table."""
    def write_table(self, fileobj: Any, block: int = ...) -> int:
        """Write the slot table (native byte order) to fileobj.write in blocks; returns
        the number of bytes written (== nbytes)."""

def table_view(
    buffer: Buffer, cap: int, count: int, has_zero: bool, seed: bytes, check_count: bool = ...
) -> HashSet:
    """A read-only HashSet over a table written by write_table (e.g. a slice of a mapped
    file), keeping `buffer` referenced. ValueError if the table's shape, alignment, count
    (with `check_count`, the default: reads the whole table) or seed do not fit; without
    `check_count` one byte a page is read (prefault) and the count is taken as given."""

LAYER_MAX: int

def layered_view(
    table: HashSet, added: Buffer, removed: Buffer, count: int | None = ...
) -> HashSet:
    """A read-only HashSet answering for (table - removed) | added (`table` a read-only
    view, `added` / `removed` packed keys): lookups at C level, len() the merged size
    (ValueError if `count` is given and differs, or an overlay is too large or holds a
    key twice); iteration, to_packed() and copy() give the merged set. table_info,
    write_table and probe_stats raise TypeError (no single table)."""

def apply_changes(
    ops: Iterable[tuple[HashSet, Buffer | None, Buffer | None]] | Sequence[Any],
) -> None:
    """Apply [(set, add_buffer, discard_buffer), ...] as one step: all buffers are checked
    first (ValueError, nothing changed), then discards and adds run without releasing the
    GIL, so other Python threads see all of the changes or none."""

def union_sorted(a: Buffer, b: Buffer) -> bytes:
    """Union of two packed buffers of ascending unique keys (ValueError if not sorted).
    A sorted merge for one bucket of a sorted list, without building a table."""

def difference_sorted(a: Buffer, b: Buffer) -> bytes:
    """Keys of `a` not in `b`; both packed ascending and unique (ValueError if not)."""
