"""Shared fixtures for every test directory: kept small and generic."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI and developer machines here are shared and noisy: no example may fail for being slow.
settings.register_profile(
    "qrverify", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("qrverify")


@pytest.fixture(scope="session")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide directory for generated rules files."""
    return tmp_path_factory.mktemp("rules")
