"""Kid-scoped revocations in the EU DRL shape (issue 9): declared hash types only, until
the entry expires; parsed by verifier.revocations.parse_drl, held as `snap.drl`."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from engine_support import AT, DAY, DE, ES, NOW, key_of, token

from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from keys.samples import sample_dcc
from verifier import Reason, Verifier
from verifier.revocations import RevocationFileError, parse_drl


def h16(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:16]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class DrlSnapshot:
    def __init__(self, trust: TrustRegistry, drl: dict[bytes, Any]) -> None:
        self.trust = trust
        self.revoked = HashSet()
        self.registry = None
        self.drl = drl


class DrlStore:
    def __init__(self, snap: DrlSnapshot) -> None:
        self.replica = snap

    def status(self) -> dict[str, Any]:
        return {"ready": True}

    def close(self) -> None:
        pass


def _verifier(batches: list[dict[str, Any]]) -> tuple[Verifier, DrlStore]:
    trust = TrustRegistry([key_of(ES), key_of(DE)])
    store = DrlStore(DrlSnapshot(trust, parse_drl(json.dumps({"drl": batches}))))
    return Verifier(store, "none"), store  # type: ignore[arg-type]


def _token() -> tuple[str, str]:
    dcc = sample_dcc("vaccination", at=NOW)
    return token(dcc=dcc), dcc["v"][0]["ci"]


def test_declared_type_of_the_kid_revokes() -> None:
    t, ci = _token()
    v, _ = _verifier(
        [
            {
                "kid": b64(ES.kid),
                "hashType": "UCI",
                "expires": "2022-06-01T00:00:00Z",
                "entries": [{"hash": b64(h16(ci))}],
            }
        ]
    )
    verdict = v.verify(t, at=AT)
    assert verdict.reason is Reason.REVOKED and verdict.holder is not None


def test_other_kid_or_undeclared_type_does_not_count() -> None:
    t, ci = _token()
    v, _ = _verifier(
        [
            {
                "kid": b64(DE.kid),
                "hashType": "UCI",
                "expires": "2022-06-01T00:00:00Z",
                "entries": [b64(h16(ci))],
            },  # another kid
            {
                "kid": b64(ES.kid),
                "hashTypes": ["SIGNATURE"],
                "expires": "2022-06-01T00:00:00Z",
                "entries": [b64(h16(ci)), b64(h16("RU" + ci))],
            },  # UCI not declared
        ]
    )
    assert v.verify(t, at=AT).valid


def test_expired_entries_stop_counting() -> None:
    t, ci = _token()
    v, _ = _verifier(
        [
            {
                "kid": b64(ES.kid),
                "hashType": "COUNTRYCODEUCI,UCI",
                "expires": NOW + DAY,
                "entries": [b64(h16("RU" + ci))],
            }
        ]
    )
    assert v.verify(t, at=AT).reason is Reason.REVOKED
    assert v.verify(t, at=NOW + DAY).reason is Reason.REVOKED
    assert v.verify(t, at=NOW + DAY + 1).valid


def test_signature_type_uses_r() -> None:
    t, _ = _token()
    from fastpath._decode import decode  # noqa: PLC0415

    sig = decode(t).signature
    v, store = _verifier(
        [
            {
                "kid": b64(ES.kid),
                "hashType": "SIGNATURE",
                "expires": "2022-06-01T00:00:00+03:00",
                "entries": [b64(hashlib.sha256(sig[:32]).digest()[:16])],
            }
        ]
    )
    assert v.verify(t, at=AT).reason is Reason.REVOKED
    store.replica = DrlSnapshot(store.replica.trust, {})  # a new snapshot without entries
    assert v.verify(t, at=AT).valid


@pytest.mark.parametrize(
    "batch",
    [
        {"kid": "", "hashType": "UCI", "expires": 1, "entries": []},
        {"kid": "a2lk", "hashType": "UVCI", "expires": 1, "entries": []},
        {"kid": "a2lk", "hashTypes": [], "expires": 1, "entries": []},
        {"kid": "a2lk", "hashType": "UCI", "expires": "tomorrow", "entries": []},
        {"kid": "a2lk", "hashType": "UCI", "expires": "2022-01-01T00:00:00", "entries": []},
        {"kid": "a2lk", "hashType": "UCI", "expires": 1, "entries": ["short"]},
        {"kid": "a2lk", "hashType": "UCI", "expires": 1, "entries": {}},
        {"kid": "a2lk", "hashType": "UCI", "expires": 1, "entries": [], "more": 1},
        [],
    ],
)
def test_malformed_drl_is_refused(batch: Any) -> None:
    with pytest.raises(RevocationFileError, match=r"drl\[0\]"):
        parse_drl(json.dumps({"drl": [batch]}))


def test_batches_of_one_kid_merge() -> None:
    drl = parse_drl(
        json.dumps(
            [
                {"kid": "a2lk", "hashType": "UCI", "expires": 100, "entries": [b64(b"1" * 16)]},
                {
                    "kid": "a2lk",
                    "hashType": "SIGNATURE",
                    "expires": 200,
                    "entries": [b64(b"2" * 16)],
                },
            ]
        )
    )
    mask, expires, hashes = drl[b"kid"]
    assert (mask, expires, len(hashes)) == (5, 200, 2)
