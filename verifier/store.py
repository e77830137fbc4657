"""The revocation / registry / trust store seen by the verifier.

The verifier calls only what `Store` declares; implementations own all I/O.
`MemoryStore` is the embedded default, loaded from the files of CONTRACT section 4.
`verifier.redis.store.RedisStore` follows Redis through a per-machine snapshot file
mapped by every process, and keeps the same `Replica` type.

Hot-path methods (`is_revoked`, `in_registry`, `trust`) never block and never do I/O:
they read the current in-process `Replica`, which is replaced by one attribute
assignment (or changed in place by one `fastpath._hashset.apply_changes` call), so a
reader sees either the old or the new state, never a mixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from fastpath._hashset import HashSet
from verifier.errors import QrverifyError

if TYPE_CHECKING:
    from fastpath._records import RecordTable
    from keys.registry import TrustRegistry

__all__ = ["MemoryStore", "Replica", "ReplicaStore", "Store", "StoreUnavailable", "as_hashset"]


class StoreUnavailable(QrverifyError, RuntimeError):
    """The store cannot start (e.g. Redis unreachable and no local snapshot)."""


class Store(Protocol):
    """What the verifier needs from a store. The compiled engine reads `replica` once per
    scan and takes the keys and the revoked and registry HashSets from it (C-level
    lookups); `trust`, `is_revoked` and `in_registry` are conveniences for other callers."""

    @property
    def replica(self) -> Replica:
        """The current consistent state; replaced as a whole, never changed half-way."""
        ...

    @property
    def trust(self) -> TrustRegistry:
        """The current trust registry. A new object after every change of keys."""
        ...

    def is_revoked(self, uci: bytes, cuci: bytes, sig: bytes) -> bool:
        """True when any of the three 16-byte hashes is revoked."""
        ...

    def in_registry(self, uci: bytes) -> bool | None:
        """Membership in the registry set, or None when no registry set is loaded."""
        ...

    def status(self) -> dict[str, Any]:
        """{"ready": bool, "reason": str | None, "age_seconds": float,
        "counts": {"keys": int, "revoked": int, "registry": int}, "source": str}"""
        ...

    def close(self) -> None: ...


HashInput = HashSet | bytes | bytearray | memoryview | Iterable[bytes]


def as_hashset(value: HashInput) -> HashSet:
    """A HashSet from a HashSet (used as is), a packed buffer, or 16-byte keys."""
    if isinstance(value, HashSet):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return HashSet(value)
    result = HashSet()
    for key in value:
        result.add(key)
    return result


class Replica:
    """One consistent state: trust keys, revoked set, registry set (or None), register
    records (or None). The engine reads `store.replica` once per scan and takes all of a
    scan's checks from that one object.

    `drl` is the kid-scoped EU revocation list (verifier.revocations.parse_drl's shape)
    or None (`drl_id` names its content, so a follower can reuse it); `valuesets` the EU
    value sets a Redis version carries (a fastpath ValueSets the engine checks codes
    against instead of its own), or None.

    `version` names the upstream state it mirrors ("files" for the embedded store, the
    Redis version id otherwise), `seq` its sequence number (0 for files); `trust_id`
    identifies the trust content so a follower can keep the same TrustRegistry object
    while the keys do not change.
    """

    __slots__ = (
        "trust",
        "revoked",
        "registry",
        "records",
        "version",
        "seq",
        "trust_id",
        "drl",
        "drl_id",
        "valuesets",
    )

    def __init__(
        self,
        trust: TrustRegistry,
        revoked: HashSet,
        registry: HashSet | None,
        version: str = "",
        trust_id: str = "",
        records: RecordTable | None = None,
        *,
        seq: int = 0,
        drl: dict[bytes, tuple[int, int, HashSet]] | None = None,
        drl_id: str = "",
        valuesets: Any = None,
    ) -> None:
        self.trust = trust
        self.drl = drl
        self.drl_id = drl_id
        self.valuesets = valuesets
        self.revoked = revoked
        self.registry = registry
        self.records = records
        self.version = version
        self.seq = seq
        self.trust_id = trust_id

    def is_revoked(self, uci: bytes, cuci: bytes, sig: bytes) -> bool:
        return bool(self.revoked.contains_any(uci, cuci, sig))

    def in_registry(self, uci: bytes) -> bool | None:
        registry = self.registry
        return None if registry is None else uci in registry

    def counts(self) -> dict[str, int]:
        out = {
            "keys": len(self.trust),
            "revoked": len(self.revoked),
            "registry": 0 if self.registry is None else len(self.registry),
            "skipped_keys": len(self.trust.skipped),  # unusable trust entries left out
        }
        # present only when loaded (/readyz shows them): register records, DRL hashes
        if self.records is not None:
            out["records"] = len(self.records)
        if self.drl is not None:
            out["drl"] = self.drl_hashes()
        return out

    def drl_hashes(self) -> int:
        """How many hashes the EU revocation list holds (all kids; 0 without one)."""
        return 0 if self.drl is None else sum(len(entry[2]) for entry in self.drl.values())


class ReplicaStore:
    """The hot-path half of a Store that keeps its state in `self._replica`: one
    attribute read per call, no I/O, no locks."""

    _replica: Replica

    @property
    def replica(self) -> Replica:
        return self._replica

    @property
    def trust(self) -> TrustRegistry:
        return self._replica.trust

    def is_revoked(self, uci: bytes, cuci: bytes, sig: bytes) -> bool:
        return self._replica.is_revoked(uci, cuci, sig)

    def in_registry(self, uci: bytes) -> bool | None:
        return self._replica.in_registry(uci)


class MemoryStore(ReplicaStore):
    """Embedded store: everything in process, loaded from files or given directly.

    `revoked` / `registry` accept a HashSet, a packed buffer of 16-byte hashes, or an
    iterable of 16-byte hashes; `registry=None` means no registry set is loaded.
    `records` is the register's RecordTable (CONTRACT section 4), or None.
    """

    def __init__(
        self,
        trust: TrustRegistry,
        revoked: HashInput = (),
        registry: HashInput | None = None,
        *,
        source: str = "memory",
        records: RecordTable | None = None,
        drl: dict[bytes, tuple[int, int, HashSet]] | None = None,
    ) -> None:
        self._replica = Replica(
            trust,
            as_hashset(revoked),
            None if registry is None else as_hashset(registry),
            version=source,
            records=records,
            drl=drl,
        )
        self._source = source

    @classmethod
    def from_files(
        cls,
        trust: str | os.PathLike[str] | None,
        revocations: str | os.PathLike[str] | None = None,
        records: str | os.PathLike[str] | None = None,
        drl: str | os.PathLike[str] | None = None,
    ) -> MemoryStore:
        """Load the trust file, the optional revocation/registry file, the optional
        register records file (JSON Lines or CSV) and the optional EU revocation list
        (DRL, kid-scoped: verifier.revocations.parse_drl).

        Raises keys.registry.TrustFileError, verifier.revocations.RevocationFileError or
        verifier.records.RecordsFileError (all ValueError) with a precise message;
        nothing is half-loaded.
        """
        from keys.registry import TrustRegistry
        from verifier.records import load_table
        from verifier.revocations import load_drl, load_revocations

        reg = TrustRegistry.from_file(trust) if trust else TrustRegistry.empty()
        table = load_table(records) if records else None
        kid_list = load_drl(drl) if drl else None
        if not revocations:
            return cls(reg, HashSet(), None, source="files", records=table, drl=kid_list)
        parsed = load_revocations(revocations)
        registry = None if parsed.registry is None else HashSet(parsed.registry)
        return cls(
            reg,
            HashSet(parsed.revoked),
            registry,
            source="files",
            records=table,
            drl=kid_list,
        )

    def status(self) -> dict[str, Any]:
        counts = self._replica.counts()
        return {
            "ready": counts["keys"] > 0,
            "reason": None if counts["keys"] else "no issuer keys loaded",
            # Files have no upstream to fall behind: the embedded store never goes stale.
            "age_seconds": 0.0,
            "counts": counts,
            "source": self._source,
        }

    def close(self) -> None:
        pass
