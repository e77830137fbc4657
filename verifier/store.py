"""The revocation / registry / trust store seen by the verifier.

The verifier calls only what `Store` declares; implementations own all I/O.
`MemoryStore` is the embedded default, loaded from the files of CONTRACT section 4.
A Redis-backed store lives in `verifier.redis_store` and keeps the same replica types.

Hot-path methods (`is_revoked`, `in_registry`, `trust`) never block and never do I/O:
they read the current in-process replica, which is swapped atomically on updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from keys.registry import TrustRegistry


class Store(Protocol):
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


class MemoryStore:
    """Embedded store: everything in process, loaded from files.

    PLACEHOLDER implementation (Python sets); the store work replaces the sets with
    fastpath.HashSet and adds strict file parsing.
    """

    def __init__(
        self,
        trust: TrustRegistry,
        revoked: Any = (),
        registry: Any = None,
        *,
        source: str = "memory",
    ) -> None:
        self._trust = trust
        self._revoked = set(revoked)
        self._registry = None if registry is None else set(registry)
        self._source = source

    @classmethod
    def from_files(cls, trust: Any, revocations: Any = None) -> MemoryStore:
        import base64
        import json

        from keys.registry import TrustRegistry

        reg = TrustRegistry.from_file(trust) if trust else TrustRegistry.empty()
        revoked: list[bytes] = []
        registry = None
        if revocations:
            with open(revocations, "rb") as fh:
                data = json.load(fh)
            revoked = [base64.b64decode(e["hash"]) for e in data.get("revoked", [])]
            if "registry" in data:
                registry = [base64.b64decode(h) for h in data["registry"]]
        return cls(reg, revoked, registry, source="files")

    @property
    def trust(self) -> TrustRegistry:
        return self._trust

    def is_revoked(self, uci: bytes, cuci: bytes, sig: bytes) -> bool:
        r = self._revoked
        return uci in r or cuci in r or sig in r

    def in_registry(self, uci: bytes) -> bool | None:
        return None if self._registry is None else uci in self._registry

    def status(self) -> dict[str, Any]:
        return {
            "ready": len(self._trust) > 0,
            "reason": None if len(self._trust) else "no issuer keys loaded",
            "age_seconds": 0.0,
            "counts": {
                "keys": len(self._trust),
                "revoked": len(self._revoked),
                "registry": 0 if self._registry is None else len(self._registry),
            },
            "source": self._source,
        }

    def close(self) -> None:
        pass
