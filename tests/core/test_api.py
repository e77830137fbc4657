"""The Python API (CONTRACT section 7): Verifier, Verdict, Reason, the re-scan cache."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from vector_support import REVOCATIONS_FILE, TRUST_FILE, load_vectors

from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from verifier import ConfigError, Reason, Verdict, Verifier
from verifier.store import MemoryStore, Replica, as_hashset

V = {v.name: v for v in load_vectors()}
AT = datetime(2021, 11, 15, 12, 0, 0, tzinfo=UTC)

CONTRACT_REASONS = {
    "bad_prefix",
    "bad_base45",
    "bad_compression",
    "bad_cose",
    "bad_cwt",
    "bad_payload",
    "too_large",
    "unknown_key",
    "bad_signature",
    "key_usage",
    "key_expired",
    "token_expired",
    "token_not_yet_valid",
    "revoked",
    "not_in_registry",
    "bad_link",
    "not_found",
    "vaccine_not_accepted",
    "vaccination_incomplete",
    "vaccination_not_yet_valid",
    "vaccination_expired",
    "recovery_not_yet_valid",
    "recovery_expired",
    "test_positive",
    "test_type_not_accepted",
    "test_expired",
    "test_in_future",
}


class SwitchableStore:
    """A minimal Store (the protocol of verifier.store) whose contents a test can change,
    as a live store (Redis replica) does between two scans: every change replaces the
    whole `replica` snapshot."""

    def __init__(self, trust: TrustRegistry) -> None:
        self.replica = Replica(trust, HashSet(), None)

    def set_trust(self, trust: TrustRegistry) -> None:
        old = self.replica
        self.replica = Replica(trust, old.revoked, old.registry)

    def set_revoked(self, revoked: set[bytes]) -> None:
        old = self.replica
        self.replica = Replica(old.trust, as_hashset(revoked), old.registry)

    def set_registry(self, registry: set[bytes] | None) -> None:
        old = self.replica
        self.replica = Replica(
            old.trust, old.revoked, None if registry is None else as_hashset(registry)
        )

    @property
    def trust(self) -> TrustRegistry:
        return self.replica.trust

    def is_revoked(self, uci: bytes, cuci: bytes, sig: bytes) -> bool:
        return bool(self.replica.revoked.contains_any(uci, cuci, sig))

    def in_registry(self, uci: bytes) -> bool | None:
        registry = self.replica.registry
        return None if registry is None else uci in registry

    def status(self) -> dict[str, Any]:
        return {
            "ready": True,
            "reason": None,
            "age_seconds": 0.0,
            "counts": self.replica.counts(),
            "source": "test",
        }

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def trust() -> TrustRegistry:
    return TrustRegistry.from_file(TRUST_FILE)


@pytest.fixture
def verifier() -> Verifier:
    return Verifier.from_files(trust=str(TRUST_FILE))


# -- reasons and verdicts -----------------------------------------------------------------


def test_reason_enum_is_exactly_the_contract_list() -> None:
    assert {r.value for r in Reason} == CONTRACT_REASONS
    assert len(list(Reason)) == len(CONTRACT_REASONS)
    assert Reason.REVOKED == "revoked" and str(Reason.REVOKED) == "revoked"


def test_every_reason_has_an_english_detail() -> None:
    for reason in [None, *Reason]:
        detail = Verdict(reason).detail
        assert isinstance(detail, str) and detail.endswith(".") and len(detail) > 10


def test_valid_verdict_shape(verifier: Verifier) -> None:
    verdict = verifier.verify(V["valid_vaccination_es256"].token, at=AT)
    assert verdict.status == "valid" and verdict.reason is None and verdict.valid
    d = verdict.to_dict()
    assert list(d) == ["status", "reason", "detail", "holder", "certificate"]
    assert d["status"] == "valid" and d["reason"] is None
    assert d["holder"] == {"name": "Иванов Иван", "name_latin": "IVANOV<IVAN", "dob": "1980-01-01"}
    assert list(d["certificate"]) == ["type", "issuer", "valid_until"]
    assert d["certificate"]["type"] == "vaccination" and d["certificate"]["issuer"] == "RU"
    assert datetime.strptime(d["certificate"]["valid_until"], "%Y-%m-%dT%H:%M:%SZ")
    assert json.loads(verdict.to_json()) == d
    assert "Иванов".encode() in verdict.to_json()  # UTF-8, not escaped, not transliterated


def test_no_medical_detail_in_the_verdict(verifier: Verifier) -> None:
    for name in ("valid_vaccination_es256", "valid_test_pcr", "valid_recovery", "test_positive"):
        text = verifier.verify(V[name].token, at=AT).to_json().decode()
        for secret in (
            "EU/1/20/1528",
            "J07BX03",
            "260415000",
            "260373001",
            "LP6464-4",
            "URN:UVCI",
            "840539006",
            "Moscow City",
        ):
            assert secret not in text


def test_invalid_unverified_verdict_shape(verifier: Verifier) -> None:
    verdict = verifier.verify(V["bad_signature_flipped_bit"].token, at=AT)
    d = verdict.to_dict()
    assert list(d) == ["status", "reason", "detail"]
    assert d["status"] == "invalid" and d["reason"] == "bad_signature"
    assert verdict.reason is Reason.BAD_SIGNATURE
    assert verdict.holder is None and verdict.certificate is None
    assert not verdict.valid


def test_invalid_verified_verdict_keeps_holder(verifier: Verifier) -> None:
    d = verifier.verify(V["test_positive"].token, at=AT).to_dict()
    assert list(d) == ["status", "reason", "detail", "holder", "certificate"]
    assert d["reason"] == "test_positive"


def test_repr_has_no_personal_data(verifier: Verifier) -> None:
    token = V["valid_vaccination_es256"].token
    verdict = verifier.verify(token, at=AT)
    for text in (repr(verdict), str(verdict)):
        for secret in ("Иванов", "IVANOV", "1980", "URN:UVCI", token[4:20], "RU"):
            assert secret not in text
        assert "valid" in text


def test_verdict_equality() -> None:
    assert Verdict(Reason.REVOKED) == Verdict(Reason.REVOKED)
    assert Verdict(Reason.REVOKED) != Verdict(Reason.BAD_COSE)
    assert Verdict(None) != Verdict(Reason.BAD_COSE)


# -- inputs ---------------------------------------------------------------------------------


def test_str_bytes_bytearray_memoryview_agree(verifier: Verifier) -> None:
    for name in (
        "valid_test_pcr",
        "bad_signature_flipped_bit",
        "prefix_lowercase_accepted",
        "bad_prefix_hc2",
        "leading_space_stripped",
    ):
        token = V[name].token
        raw = token.encode()
        expected = verifier.verify(token, at=AT)
        for form in (raw, bytearray(raw), memoryview(raw)):
            assert Verifier.from_files(trust=TRUST_FILE).verify(form, at=AT) == expected


@pytest.mark.parametrize(
    "junk",
    [
        None,
        12345,
        1.5,
        ["HC1:"],
        {"token": "x"},
        object(),
        b"",
        "",
        "\ud800",
        "HC1:\ud800",
        b"HC1:\xff\xfe",
    ],
)
def test_non_token_input_gives_a_verdict(verifier: Verifier, junk: Any) -> None:
    verdict = verifier.verify(junk, at=AT)
    assert verdict.status == "invalid"
    assert verdict.reason is not None and verdict.reason.value in CONTRACT_REASONS
    assert verdict.holder is None


def test_at_naive_is_utc(verifier: Verifier) -> None:
    v = V["vaccination_365_days_plus_1s_expired"]
    naive = v.at.replace(tzinfo=None)
    assert verifier.verify(v.token, at=naive).reason is Reason.VACCINATION_EXPIRED
    just_before = naive - timedelta(seconds=1)
    assert verifier.verify(v.token, at=just_before).reason is None
    moscow = timezone(timedelta(hours=3))
    assert verifier.verify(v.token, at=v.at.astimezone(moscow)).reason is Reason.VACCINATION_EXPIRED
    assert (
        verifier.verify(v.token, at=just_before.replace(tzinfo=UTC).astimezone(moscow)).reason
        is None
    )


def test_at_default_is_now(verifier: Verifier) -> None:
    # every vector lies in 2021-2022; now, their CWT has expired
    assert verifier.verify(V["valid_recovery"].token).reason is Reason.TOKEN_EXPIRED


def test_leeway_is_configurable() -> None:
    v = V["token_exp_plus_300s_valid"]
    assert Verifier.from_files(trust=TRUST_FILE).verify(v.token, at=v.at).valid
    strict = Verifier.from_files(trust=TRUST_FILE, leeway=0)
    assert strict.verify(v.token, at=v.at).reason is Reason.TOKEN_EXPIRED
    assert strict.verify(v.token, at=v.at - timedelta(seconds=300)).valid
    loose = Verifier.from_files(trust=TRUST_FILE, leeway=301)
    assert loose.verify(v.token, at=v.at + timedelta(seconds=1)).valid
    with pytest.raises(ConfigError):
        Verifier.from_files(trust=TRUST_FILE, leeway=-1)


def test_from_files_errors_are_config_errors(tmp_path: Any) -> None:
    with pytest.raises(ConfigError):
        Verifier.from_files(trust=tmp_path / "missing.json")
    with pytest.raises(ConfigError):
        Verifier.from_files(trust=TRUST_FILE, rules=tmp_path / "missing-rules.json")
    with pytest.raises(ConfigError):
        Verifier.from_files(trust=TRUST_FILE, rules="venue2")


# -- verify_many ---------------------------------------------------------------------------


def test_verify_many_keeps_order(verifier: Verifier) -> None:
    names = [
        "valid_test_pcr",
        "bad_prefix_empty",
        "test_positive",
        "valid_recovery",
        "bad_cose_3_elements",
        "valid_test_pcr",
        "unknown_key_untrusted_issuer",
    ]
    verdicts = verifier.verify_many([V[n].token for n in names], at=AT)
    assert [v.to_dict()["reason"] for v in verdicts] == [V[n].reason for n in names]
    assert verifier.verify_many([], at=AT) == []
    assert verifier.verify_many(iter([V["valid_test_pcr"].token]), at=AT)[0].valid


def test_verify_many_equals_verify() -> None:
    vectors = [v for v in V.values() if v.rules == "venue" and v.revocations is None and v.at == AT]
    assert len(vectors) > 100
    a = Verifier.from_files(trust=TRUST_FILE)
    b = Verifier.from_files(trust=TRUST_FILE)
    assert a.verify_many([v.token for v in vectors], at=AT) == [
        b.verify(v.token, at=AT) for v in vectors
    ]


# -- the re-scan cache ---------------------------------------------------------------------


def test_rescan_is_identical_and_counted(verifier: Verifier) -> None:
    token = V["valid_vaccination_ps256"].token
    first = verifier.verify(token, at=AT)
    hits = verifier.cache_hits
    second = verifier.verify(token, at=AT)
    assert second == first and second.to_dict() == first.to_dict()
    assert verifier.cache_hits == hits + 1
    assert verifier.status()["cache"]["hits"] == hits + 1


def test_rescan_applies_time_and_rules(verifier: Verifier) -> None:
    v = V["vaccination_365_days_exactly_valid"]
    assert verifier.verify(v.token, at=v.at).valid
    later = v.at + timedelta(seconds=1)
    assert verifier.verify(v.token, at=later).reason is Reason.VACCINATION_EXPIRED
    assert verifier.cache_hits >= 1


def test_revocation_added_after_first_scan_is_enforced(trust: TrustRegistry) -> None:
    store = SwitchableStore(trust)
    verifier = Verifier(store)
    v = V["revoked_uci"]
    assert verifier.verify(v.token, at=AT).valid
    revocations = json.loads(REVOCATIONS_FILE.read_text())
    store.set_revoked({base64.b64decode(e["hash"]) for e in revocations["revoked"]})
    hits = verifier.cache_hits
    assert verifier.verify(v.token, at=AT).reason is Reason.REVOKED
    assert verifier.cache_hits == hits + 1  # served from the cache, still revoked
    store.set_revoked(set())
    assert verifier.verify(v.token, at=AT).valid


def test_registry_loaded_after_first_scan_is_enforced(trust: TrustRegistry) -> None:
    store = SwitchableStore(trust)
    verifier = Verifier(store)
    token = V["registry_recovery_absent"].token
    assert verifier.verify(token, at=AT).valid
    store.set_registry(set())
    assert verifier.verify(token, at=AT).reason is Reason.NOT_IN_REGISTRY


def test_trust_change_invalidates_the_cache(trust: TrustRegistry) -> None:
    store = SwitchableStore(trust)
    verifier = Verifier(store)
    token = V["valid_vaccination_eddsa"].token
    assert verifier.verify(token, at=AT).valid
    eddsa_kid = next(k.kid for k in trust if k.alg == -8)
    store.set_trust(TrustRegistry([k for k in trust if k.kid != eddsa_kid]))
    misses = verifier.cache_misses
    assert verifier.verify(token, at=AT).reason is Reason.UNKNOWN_KEY
    assert verifier.cache_misses == misses + 1
    store.set_trust(TrustRegistry(list(trust)))  # an equal but new registry: proven again
    assert verifier.verify(token, at=AT).valid
    assert verifier.cache_misses == misses + 2


def test_memory_store_with_revocations_from_file(trust: TrustRegistry) -> None:
    revocations = json.loads(REVOCATIONS_FILE.read_text())
    revoked = [base64.b64decode(e["hash"]) for e in revocations["revoked"]]
    store = MemoryStore(trust, revoked, None)
    verifier = Verifier(store)
    assert verifier.verify(V["revoked_uci"].token, at=AT).reason is Reason.REVOKED
    # no registry set given: recovery and test need not be registered
    assert verifier.verify(V["registry_recovery_absent"].token, at=AT).valid
    assert store.status()["counts"]["revoked"] == len(revoked)


def test_cache_is_bounded_and_can_be_disabled() -> None:
    tokens = [
        V[n].token
        for n in (
            "valid_vaccination_es256",
            "valid_test_pcr",
            "valid_recovery",
            "valid_vaccination_eddsa",
        )
    ]
    small = Verifier.from_files(trust=TRUST_FILE, cache_size=2)
    for t in tokens * 3:
        small.verify(t, at=AT)
    assert small.status()["cache"]["entries"] <= 2
    off = Verifier.from_files(trust=TRUST_FILE, cache_size=0)
    for t in tokens * 2:
        assert off.verify(t, at=AT).valid
    assert off.cache_hits == 0 and off.status()["cache"]["entries"] == 0


def test_undecodable_tokens_are_not_cached(verifier: Verifier) -> None:
    before = verifier.status()["cache"]["entries"]
    for i in range(50):
        verifier.verify(f"HC1:{i:03d}", at=AT)
    assert verifier.status()["cache"]["entries"] == before


def test_status_reports_store_and_cache(verifier: Verifier) -> None:
    status = verifier.status()
    assert status["ready"] is True
    assert status["counts"]["keys"] == len(TrustRegistry.from_file(TRUST_FILE))
    assert set(status["cache"]) >= {"entries", "capacity", "hits", "misses"}
