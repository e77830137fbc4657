"""Shared fixtures for every test directory: kept small and generic."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide directory for generated rules files."""
    return tmp_path_factory.mktemp("rules")
