"""The newcomer's scripts: scripts/demo's port check, the build stamp, the importable checkout."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_srchash = _load("_srchash")


def test_demo_on_a_busy_port_says_so_in_one_line_and_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("QRVERIFY_")}
        done = subprocess.run(
            [str(SCRIPTS / "demo"), "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # no sample token printed, nothing built
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"scripts/demo: port {port} on 127.0.0.1 is in use; choose another with --port N"
    ]


def test_port_check_reads_the_env_and_passes_a_free_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        check = [sys.executable, str(SCRIPTS / "_port_free.py"), "demo"]
        env = dict(os.environ, QRVERIFY_PORT=str(port))
        assert subprocess.run(check, env=env, capture_output=True, timeout=30).returncode == 2
        assert (
            subprocess.run([*check, f"--port={port}"], capture_output=True, timeout=30).returncode
            == 2
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert (
        subprocess.run(
            [*check[:3], "--port", str(free)], capture_output=True, timeout=30
        ).returncode
        == 0
    )


def test_source_hash_follows_sources_not_build_products(tmp_path: Path) -> None:
    for name in ("setup.py", "pyproject.toml"):
        (tmp_path / name).write_text(name)
    for package in ("fastpath", "verifier", "keys"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "fastpath" / "_decode.pyx").write_text("def f(): pass\n")
    first = _srchash.source_hash(tmp_path, ["extras=test"])
    # build products and caches do not count
    (tmp_path / "fastpath" / "_decode.c").write_text("/* generated */")
    (tmp_path / "fastpath" / "_decode.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (tmp_path / "verifier" / "__pycache__").mkdir()
    (tmp_path / "verifier" / "__pycache__" / "x.pyc").write_bytes(b"")
    assert _srchash.source_hash(tmp_path, ["extras=test"]) == first
    # a source edit, a new page file, other extras: a new build
    (tmp_path / "fastpath" / "_decode.pyx").write_text("def f(): return 1\n")
    second = _srchash.source_hash(tmp_path, ["extras=test"])
    assert second != first
    (tmp_path / "verifier" / "static.js").write_text("x")
    assert _srchash.source_hash(tmp_path, ["extras=test"]) != second
    assert _srchash.source_hash(tmp_path, ["extras=test,bench"]) != _srchash.source_hash(
        tmp_path, ["extras=test"]
    )


def _venv_is_current(extras: str) -> bool:
    stamp = ROOT / ".venv" / ".qrverify-build-stamp"
    if not stamp.is_file():
        return False
    want = _srchash.source_hash(ROOT, [f"extras={extras}", "debug="])
    return stamp.read_text().strip() == want


def test_set_up_skips_the_build_when_nothing_changed() -> None:
    extras = "test,bench"  # what scripts/test installs
    if not _venv_is_current(extras) or os.environ.get("QRVERIFY_DEBUG"):
        pytest.skip("./.venv was not made by scripts/_venv.sh from these sources")
    env = dict(os.environ, QRVERIFY_EXTRAS=extras, QRVERIFY_VENV=str(ROOT / ".venv"))
    done = subprocess.run(
        ["bash", "-c", f"source {SCRIPTS / '_venv.sh'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stderr and "installing" not in done.stderr


def test_readme_python_example_runs_from_the_repository_root(tmp_path: Path) -> None:
    """The checkout itself is importable after set-up (the compiled modules are in place)."""
    if not list((ROOT / "fastpath").glob("_decode.*.so")):
        pytest.skip("no compiled modules in the checkout: run scripts/test or scripts/demo")
    from keys.demo import make_demo

    demo = make_demo(tmp_path / "demo")
    token = next(iter(demo.tokens.values()))
    code = (
        "import fastpath._decode, verifier\n"
        "from verifier import Verifier\n"
        f"v = Verifier.from_files(trust={str(demo.trust_path)!r}, revocations=None, "
        "rules='none')\n"
        f"verdict = v.verify({token!r})\n"
        "print(verdict.status, verdict.reason)\n"
        "print(fastpath._decode.__file__)\n"
        "print(verifier.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, decode_file, verifier_file = done.stdout.splitlines()
    assert status == "valid None"
    assert Path(decode_file).parent == ROOT / "fastpath"  # the checkout, not site-packages
    assert Path(verifier_file).parent == ROOT / "verifier"
