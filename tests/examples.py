"""How many hypothesis examples a property test runs: its own count in the full suite, at
most QUICK_EXAMPLES in the quick tier (`scripts/test --quick` sets QRVERIFY_QUICK), where
an explicit `max_examples` would otherwise override the quick profile of conftest.py."""

from __future__ import annotations

import os

QUICK_EXAMPLES = 15


def examples(n: int) -> int:
    return min(n, QUICK_EXAMPLES) if os.environ.get("QRVERIFY_QUICK") else n
