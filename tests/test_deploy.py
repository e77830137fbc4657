"""docs/deploy: the systemd units pass `systemd-analyze verify` without a warning, and
every QRVERIFY_* variable the env examples set is one the CLI reads."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
UNITS = ("qrverify.service", "qrverify-sync.service", "qrverify-sync.timer")
BINARY = "/usr/local/bin/qrverify"
ENV_EXAMPLES = ("qrverify.env.example", "qrverify-sync.env.example")
# Read straight from the environment, not through an option table (verifier/redis/store.py).
NON_OPTION_VARS = {"QRVERIFY_SNAPSHOT_DIR"}


def _analyze() -> str:
    found = shutil.which("systemd-analyze") or (
        "/usr/bin/systemd-analyze" if os.access("/usr/bin/systemd-analyze", os.X_OK) else None
    )
    if found is None:
        pytest.skip("systemd-analyze is not installed")
    return found


@pytest.fixture
def unit_dir(tmp_path: Path) -> Path:
    """The units with ExecStart pointing at a stand-in executable (verify checks that the
    command exists; the real one is installed at /usr/local/bin only on a host)."""
    fake = tmp_path / "bin" / "qrverify"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "units"
    out.mkdir()
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        (out / name).write_text(text.replace(BINARY, str(fake)))
    return out


def _verify(analyze: str, unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyze, "verify", str(unit)],
        cwd=unit.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", UNITS)
def test_unit_verifies_clean(unit_dir: Path, name: str) -> None:
    analyze = _analyze()
    result = _verify(analyze, unit_dir / name)
    assert result.returncode == 0, result.stderr
    ours = [line for line in result.stderr.splitlines() if "qrverify" in line]
    assert ours == [], result.stderr


def test_verify_catches_a_bad_key(unit_dir: Path) -> None:
    """The check above can fail: a misspelt key is reported on stderr."""
    analyze = _analyze()
    unit = unit_dir / "qrverify.service"
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restartt=on-failure"))
    result = _verify(analyze, unit)
    assert "Restartt" in result.stderr


def test_units_use_the_packaged_binary_and_env_files() -> None:
    serve = (DEPLOY / "qrverify.service").read_text()
    sync = (DEPLOY / "qrverify-sync.service").read_text()
    assert f"ExecStart={BINARY} serve" in serve
    assert f"ExecStart={BINARY} sync" in sync
    assert "EnvironmentFile=/etc/qrverify/qrverify.env" in serve
    assert "EnvironmentFile=/etc/qrverify/qrverify-sync.env" in sync
    for text in (serve, sync):
        for key in (
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
        ):
            assert key in text
    assert "Restart=on-failure" in serve
    assert "Unit=qrverify-sync.service" in (DEPLOY / "qrverify-sync.timer").read_text()


def _cli_env_vars() -> set[str]:
    from verifier.commands._common import SHARED
    from verifier.http.config import OPTIONS

    return {o.env for o in SHARED.values()} | {o.env for o in OPTIONS}


def _named(path: Path) -> set[str]:
    return set(re.findall(r"\bQRVERIFY_[A-Z0-9_]+", path.read_text()))


def test_env_examples_name_only_cli_variables() -> None:
    known = _cli_env_vars() | NON_OPTION_VARS
    for name in (*ENV_EXAMPLES, *UNITS, "README.md"):
        unknown = _named(DEPLOY / name) - known
        assert unknown == set(), f"{name}: {sorted(unknown)}"
    assert "QRVERIFY_REDIS_URL" in _named(DEPLOY / "qrverify.env.example")
    assert {"QRVERIFY_REDIS_URL", "QRVERIFY_TRUST", "QRVERIFY_REVOCATIONS"} <= _named(
        DEPLOY / "qrverify-sync.env.example"
    )


def test_non_option_variable_is_really_read() -> None:
    from verifier.redis import store

    source = Path(store.__file__).read_text()
    for name in NON_OPTION_VARS:
        assert name in source
