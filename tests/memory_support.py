"""Memory measured by tracemalloc, for the bounded-memory tests."""

from __future__ import annotations

import tracemalloc
from typing import Any


def traced_peak(fn: Any) -> tuple[Any, int]:
    """fn()'s result and the peak of Python-allocated memory while it ran, in bytes."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
