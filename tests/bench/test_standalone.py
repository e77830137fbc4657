"""bench/ stands alone: it reads nothing from tests/ and makes its own keys (issue 8)."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # the bench package; qrverify itself stays the installed one

from bench import _keys, _procs  # noqa: E402, I001

TEST_MODULES = {"tests", "conftest", "redis_support", "vector_support"}


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            found += [
                f"{path.name}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[0] in TEST_MODULES
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = node.value.replace("\\", "/").split("/")
            if node.value == "tests" or ("tests" in parts and len(parts) > 1):
                found.append(f"{path.name}:{node.lineno} names the path {node.value!r}")
    return found


def test_bench_reads_nothing_from_tests() -> None:
    files = sorted(BENCH.glob("*.py"))
    assert len(files) >= 8
    problems = [p for f in files for p in _problems(f)]
    assert problems == []


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        'from redis_support import free_port\nKEYS = ROOT / "tests" / "vectors"\n'
        'OTHER = "tests/vectors/keys"\n'
    )
    assert len(_problems(bad)) == 3


def test_bench_keys_are_made_at_run_time() -> None:
    from keys.samples import sample_dcc
    from keys.token import issue_token
    from verifier import Verifier
    from verifier.store import MemoryStore

    issuers = _keys.dev_issuers()
    assert set(issuers) == {
        "es256",
        "eddsa",
        "ps256",
        "test_only",
        "vaccination_alt_arc",
        _keys.UNTRUSTED,
    }
    trust = _keys.trust_of(issuers)
    assert len(trust.keys) == 5
    verifier = Verifier(MemoryStore(trust), rules="none", cache_size=0)
    now = int(time.time())
    for name, want in (
        ("es256", "valid"),
        ("vaccination_alt_arc", "valid"),
        (_keys.UNTRUSTED, "unknown_key"),
    ):
        token = issue_token(
            issuers[name], sample_dcc("vaccination", at=now), iat=now, exp=now + 86400
        )
        verdict = verifier.verify(token)
        assert (verdict.reason.value if verdict.reason else verdict.status) == want, name
    token = issue_token(
        issuers["test_only"], sample_dcc("vaccination", at=now), iat=now, exp=now + 86400
    )
    assert verifier.verify(token).reason.value == "key_usage"


def test_free_port_is_a_bindable_loopback_port() -> None:
    import socket

    port = _procs.free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
