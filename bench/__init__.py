"""Benchmarks. `python -m bench` runs the venue-entry load benchmarks (see bench/__main__.py).

This module stays import-light: `bench_*.py` scripts and uvicorn workers import it.
"""

from __future__ import annotations

from typing import Any


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

    return Starlette(routes=[Route("/v1/verify", echo, methods=["POST"]),
                             Route("/readyz", ready, methods=["GET"])])
