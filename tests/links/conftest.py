"""Fixtures for the register-link tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from links.link_support import AT, RECORDS, write_jsonl

from fastpath._records import RecordTable
from verifier import Verifier
from verifier.records import load_table
from verifier.store import MemoryStore


@pytest.fixture(scope="session")
def records_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("records") / "register.jsonl", RECORDS)


@pytest.fixture(scope="session")
def table(records_file: Path) -> RecordTable:
    return load_table(records_file)


@pytest.fixture(scope="session")
def verifier(table: RecordTable) -> Verifier:
    from keys.registry import TrustRegistry

    return Verifier(
        MemoryStore(TrustRegistry.empty(), records=table),
        link_origins=["https://reg.example.ru:8443/gu"],
    )


@pytest.fixture
def check(verifier: Verifier) -> Callable[..., Any]:
    def run(link: str | bytes, at: int = AT) -> Any:
        return verifier.verify(link, at)

    return run
