"""Fixtures for the keys/ tests: issuers are costly to generate (RSA), so share them."""

from __future__ import annotations

import pytest

from keys.issuer import Issuer

ALGS = ("ES256", "PS256", "EdDSA")


@pytest.fixture(scope="session")
def issuers() -> dict[str, Issuer]:
    """One in-memory RU issuer per algorithm, all types."""
    return {alg: Issuer.generate("RU", alg) for alg in ALGS}


@pytest.fixture(scope="session")
def es256(issuers: dict[str, Issuer]) -> Issuer:
    return issuers["ES256"]
