"""Shared fixtures for every test directory: kept small and generic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI and developer machines here are shared and noisy: no example may fail for being slow.
settings.register_profile("qrverify", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The quick tier (scripts/test --quick) runs fewer examples per property.
settings.register_profile("quick", parent=settings.get_profile("qrverify"), max_examples=15)
settings.load_profile("quick" if os.environ.get("QRVERIFY_QUICK") else "qrverify")


@pytest.fixture(scope="session")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide directory for generated rules files."""
    return tmp_path_factory.mktemp("rules")
