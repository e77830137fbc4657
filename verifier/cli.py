"""`qrverify` entry point (pyproject's console script); the commands are in
verifier/commands/."""

from __future__ import annotations

import sys

from verifier.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
