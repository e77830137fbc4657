"""Both signature backends give the same verdict for every generated vector.

The verifier picks libcrypto (fastpath._ossl) when its start-up self-test agrees with
cryptography; a mismatch between the two would accept a forgery or refuse a real
certificate, so every vector runs through both, and so does the fuzz run (bench/fuzz.py
compares every verdict of its plain verifier with a cryptography-backed twin).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vector_support import Vector, load_vectors, verifier_for

from fastpath import _ossl
from verifier import Verifier
from verifier.core import ConfigError

VECTORS = load_vectors()
needs_libcrypto = pytest.mark.skipif(_ossl.checked() is not None, reason="no libcrypto 3")


@needs_libcrypto
def test_auto_picks_libcrypto_after_its_self_test() -> None:
    v = Verifier.from_files()
    assert v.signatures == "libcrypto"
    assert v.status()["signatures"] == "libcrypto"
    assert Verifier.from_files(signatures="cryptography").signatures == "cryptography"


def test_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="signatures must be one of"):
        Verifier.from_files(signatures="openssl")


@needs_libcrypto
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_backends_agree_on_every_vector(vector: Vector, tmp_path: Path) -> None:
    native = verifier_for(vector, tmp_path, signatures="libcrypto", cache_size=0)
    reference = verifier_for(vector, tmp_path, signatures="cryptography", cache_size=0)
    got = native.verify(vector.token, at=vector.at).to_dict()
    assert got == reference.verify(vector.token, at=vector.at).to_dict()
    assert (got["status"], got["reason"]) == (vector.expect["status"], vector.expect["reason"])
