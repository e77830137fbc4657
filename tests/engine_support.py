"""Token and store builders for the engine tests (tests/core/test_engine_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vector_support import VECTORS_DIR

from fastpath._hashset import HashSet
from keys.cbor import Tagged, dumps
from keys.cose import sig_structure
from keys.issuer import Issuer, load_issuer
from keys.registry import IssuerKey, TrustRegistry
from keys.samples import sample_dcc
from keys.token import hc1_from_cose
from verifier import Verifier
from verifier.store import Replica

AT = datetime(2021, 11, 15, 12, 0, 0, tzinfo=UTC)
NOW = int(AT.timestamp())
DAY = 86400
ES = load_issuer(VECTORS_DIR / "keys" / "es256")
DE = load_issuer(VECTORS_DIR / "keys" / "de_es256")


def key_of(issuer: Issuer, **kw: Any) -> IssuerKey:
    """The issuer's public key as a bare trust entry (country, types, validity in kw)."""
    kw.setdefault("country", issuer.country)
    return IssuerKey(issuer.private_key.public_key(), issuer.kid, **kw)


def signed(issuer: Issuer, payload: bytes, *, kid: bytes | None = None) -> tuple[bytes, bytes]:
    """(protected header, raw signature) over payload."""
    protected = dumps({1: issuer.cose_alg, 4: issuer.kid if kid is None else kid})
    return protected, issuer.sign(sig_structure(protected, payload))


def assemble(protected: bytes, payload: bytes, signature: bytes) -> str:
    return hc1_from_cose(dumps(Tagged(18, [protected, {}, payload, signature])))


def token(
    cert_type: str = "vaccination",
    *,
    issuer: Issuer = ES,
    iss: str | None = "RU",
    iat: int = NOW - 3600,
    exp: int = NOW + 300 * DAY,
    dcc: dict[str, Any] | None = None,
    extra: dict[int, Any] | None = None,
) -> str:
    """A signed HC1 token; `extra` adds CWT claims (e.g. a large unknown claim)."""
    claims: dict[int, Any] = {} if iss is None else {1: iss}
    claims.update({4: exp, 6: iat, -260: {1: dcc or sample_dcc(cert_type, at=NOW)}})
    claims.update(extra or {})
    payload = dumps(claims)
    protected, signature = signed(issuer, payload)
    return assemble(protected, payload, signature)


class Snapshots:
    """A store whose snapshot a test replaces as a whole."""

    def __init__(
        self,
        trust: TrustRegistry,
        revoked: list[bytes] | None = None,
        registry: list[bytes] | None = None,
    ) -> None:
        self.replica = Replica(
            trust, self._set(revoked or []), None if registry is None else self._set(registry)
        )

    @staticmethod
    def _set(items: list[bytes]) -> HashSet:
        out = HashSet()
        for item in items:
            out.add(item)
        return out

    def replace(
        self, *, revoked: list[bytes] | None = None, registry: list[bytes] | None = None
    ) -> None:
        old = self.replica
        self.replica = Replica(
            old.trust, self._set(revoked or []), None if registry is None else self._set(registry)
        )

    def status(self) -> dict[str, Any]:
        return {"ready": True, "counts": self.replica.counts()}

    def close(self) -> None:
        pass


def verifier_for(keys: list[IssuerKey], rules: Any = "venue", **kw: Any) -> Verifier:
    return Verifier(Snapshots(TrustRegistry(keys)), rules, **kw)  # type: ignore[arg-type]
