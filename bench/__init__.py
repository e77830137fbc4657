"""Benchmarks. `python -m bench` runs the venue-entry load benchmarks (see bench/__main__.py).

This module stays import-light: `bench_*.py` scripts and uvicorn workers import it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def _prefer_installed() -> None:
    """Run from the checkout (`python -m bench`), the checkout is first on sys.path and its
    source packages would shadow the installed qrverify; without an in-place build their
    fastpath/ has no compiled module. Then move the checkout to the end of the path: the
    installed build wins and `bench` itself is still found."""
    root = Path(__file__).resolve().parent.parent
    if any((root / "fastpath").glob("_decode*.so")):
        return  # a developer's in-place build: the source tree works as it is
    mine = [p for p in sys.path if Path(os.path.abspath(p or ".")) == root]
    if mine:
        sys.path[:] = [p for p in sys.path if p not in mine] + [str(root)]


_prefer_installed()


def echo_app() -> Any:
    """The baseline: a minimal Starlette app whose POST /v1/verify echoes the JSON body.

    Served by uvicorn with the same settings as `qrverify serve` (uvicorn factory
    `bench:echo_app`), so the difference to the real service is the verification work.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/verify", echo, methods=["POST"]),
            Route("/readyz", ready, methods=["GET"]),
        ]
    )
