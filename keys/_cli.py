"""Small helpers shared by the keys CLI commands."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_USAGE = 2


def fail(prog: str, message: str) -> int:
    """Print ``prog: error: message`` on stderr and return the usage/config exit code."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE
