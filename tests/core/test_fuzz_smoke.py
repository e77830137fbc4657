"""A short run of bench/fuzz.py (the 1,000,000-token fuzz run uses the same code)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "bench" / "fuzz.py"


@pytest.mark.slow
def test_fuzz_smoke_20000() -> None:
    proc = subprocess.run(
        [sys.executable, str(FUZZ), "--count", "20000", "--seed", "7", "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "fuzz: 20,000 tokens" in out
    assert "\nfailures: 0" in out
    assert "<exception>" not in out


def test_fuzz_reports_failures_with_exit_1(tmp_path: Path) -> None:
    """The harness itself can fail: a verifier that raises is counted and exits 1."""
    script = tmp_path / "broken.py"
    script.write_text(
        "import runpy, sys\n"
        f"sys.argv = [{str(FUZZ)!r}, '--count', '50', '--quiet']\n"
        "import verifier.core\n"
        "def boom(self, token, at=None):\n"
        "    raise RuntimeError('injected')\n"
        "verifier.core.Verifier.verify = boom\n"
        "verifier.core.Verifier.verify_many = boom\n"
        f"runpy.run_path({str(FUZZ)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failures: 50" in proc.stdout
    assert "RuntimeError: injected" in proc.stdout
