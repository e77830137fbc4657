"""Print a SHA-256 over everything a qrverify build is made from (used by scripts/_venv.sh).

    python scripts/_srchash.py ROOT [EXTRA...]

Hashes the names and bytes of setup.py, pyproject.toml, MANIFEST.in and every file under
fastpath/, verifier/ and keys/ except build products (compiled modules, generated C,
annotations, caches), plus the EXTRA words (extras, build switches). Equal hashes mean a
rebuild would produce the same install.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

TOP_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in")
PACKAGES = ("fastpath", "verifier", "keys")
PRODUCTS = (".so", ".c", ".html", ".pyc", ".pyd", ".o")


def source_hash(root: Path, extra: list[str]) -> str:
    digest = hashlib.sha256()
    files = [root / name for name in TOP_FILES if (root / name).is_file()]
    for package in PACKAGES:
        files += [
            p
            for p in (root / package).rglob("*")
            if p.is_file() and p.suffix not in PRODUCTS and "__pycache__" not in p.parts
        ]
    for path in sorted(files):
        data = path.read_bytes()
        digest.update(f"{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update("\0".join(extra).encode())
    return digest.hexdigest()


if __name__ == "__main__":
    print(source_hash(Path(sys.argv[1]), sys.argv[2:]))
