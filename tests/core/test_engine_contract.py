"""The engine's contract (issue 8): one store snapshot per scan, Reason and Verdict from
the verifier's leaf modules, the reason codes the other parts build on."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from vector_support import TRUST_FILE, load_vectors

from fastpath._engine import Engine
from fastpath._hashset import HashSet
from keys.registry import TrustRegistry
from verifier import Reason, Verdict, Verifier
from verifier.reasons import DETAILS
from verifier.store import Replica

V = {v.name: v for v in load_vectors()}
AT = datetime(2021, 11, 15, 12, 0, 0, tzinfo=UTC)


class CountingStore:
    """A store whose snapshot reads are counted; its `trust` must not be used by a scan."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica
        self.reads = 0

    @property
    def replica(self) -> Replica:
        self.reads += 1
        return self._replica

    @property
    def trust(self) -> TrustRegistry:
        raise RuntimeError("a scan must take the keys from its snapshot")

    def status(self) -> dict[str, Any]:
        return {"ready": True, "counts": self._replica.counts()}

    def close(self) -> None:
        pass


@pytest.fixture
def counting() -> CountingStore:
    return CountingStore(Replica(TrustRegistry.from_file(TRUST_FILE), HashSet(), None))


def test_one_snapshot_read_per_scan(counting: CountingStore) -> None:
    verifier = Verifier(counting)  # type: ignore[arg-type]
    counting.reads = 0
    assert verifier.verify(V["valid_vaccination_es256"].token, at=AT).valid
    assert counting.reads == 1
    assert verifier.verify(V["valid_vaccination_es256"].token, at=AT).valid  # cache hit
    assert counting.reads == 2
    assert (
        verifier.verify(V["bad_signature_flipped_bit"].token, at=AT).reason is Reason.BAD_SIGNATURE
    )
    assert verifier.verify("not a token", at=AT).reason is Reason.BAD_PREFIX
    assert counting.reads == 4
    names = ["valid_test_pcr", "test_positive", "registry_recovery_absent"]
    verdicts = verifier.verify_many([V[n].token for n in names], at=AT)
    assert [v.to_dict()["reason"] for v in verdicts] == [None, "test_positive", None]
    assert counting.reads == 7


def test_a_scan_sees_one_version_of_the_sets(counting: CountingStore) -> None:
    """Replacing the snapshot between scans switches keys and sets together."""
    verifier = Verifier(counting)  # type: ignore[arg-type]
    token = V["registry_recovery_absent"].token
    assert verifier.verify(token, at=AT).valid
    counting._replica = Replica(counting._replica.trust, HashSet(), HashSet())
    assert verifier.verify(token, at=AT).reason is Reason.NOT_IN_REGISTRY
    counting._replica = Replica(TrustRegistry.empty(), HashSet(), HashSet())
    verdict = verifier.verify(token, at=AT)
    assert verdict.reason is Reason.UNKNOWN_KEY and verdict.holder is None


def test_a_store_without_snapshot_is_refused() -> None:
    class Bare:
        trust = TrustRegistry.empty()

    with pytest.raises(TypeError, match="replica"):
        Verifier(Bare())  # type: ignore[arg-type]


def test_verify_is_the_compiled_method() -> None:
    """No Python frame per scan: Verifier.verify is the engine's compiled method."""
    assert Verifier.verify is Engine.verify and Verifier.verify_many is Engine.verify_many
    assert type(Engine.verify).__name__ in ("cython_function_or_method", "method_descriptor")


def test_engine_module_imports_first() -> None:
    """The engine imports Reason and Verdict lazily: importing it before the verifier
    package must work (no import cycle)."""
    code = (
        "import fastpath._engine as e, verifier; "
        "v = verifier.Verifier.from_files(); "
        "print(v.verify('x').reason.value, type(v.verify('x')).__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(TRUST_FILE.parent),
    )
    assert out.stdout.split() == ["bad_prefix", "verifier.verdict"]


def test_new_reason_codes_and_details() -> None:
    assert Reason("vaccine_not_accepted") is Reason.VACCINE_NOT_ACCEPTED
    assert Reason("bad_link") is Reason.BAD_LINK
    assert Reason("not_found") is Reason.NOT_FOUND
    for reason in (Reason.VACCINE_NOT_ACCEPTED, Reason.BAD_LINK, Reason.NOT_FOUND):
        assert Verdict(reason).to_dict() == {
            "status": "invalid",
            "reason": reason.value,
            "detail": DETAILS[reason],
        }
    # one sentence for a missing record and a wrong ck: nothing tells them apart
    detail = DETAILS[Reason.NOT_FOUND]
    assert "check" not in detail.lower() and "ck" not in detail.split()
    assert len(set(DETAILS.values())) == len(DETAILS)
