"""The HTTP service on uvicorn (uvloop + httptools), as started by `qrverify serve`
(the command and its options: verifier/commands/serve.py, verifier/http/config.py).

With `--workers N` uvicorn's supervisor starts N processes; each one calls `worker_app()`,
which rebuilds the verifier (its own store replica) from the configuration that the parent
resolved and validated, passed in the environment variable `QRVERIFY_SERVE_CONFIG`.
A process that answers requests asks for a short CPU time slice (verifier/sched.py), so a
request that wakes it does not wait for a background task's slice to run out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from uvicorn.supervisors import Multiprocess

from verifier.commands._common import EXIT_OK, EXIT_RUNTIME, CommandError, build_verifier
from verifier.http._protocol import GuardedProtocol
from verifier.http.config import WORKER_ENV, ServeConfig
from verifier.http.workers import (
    DIR_ENV,
    HAVE_REUSE_PORT,
    ReusePortListener,
    SharedMetrics,
    reserve_address,
)
from verifier.sched import request_slice

WORKER_FACTORY = "verifier.http.serve:worker_app"


def build_app(cfg: ServeConfig, verifier: Any | None = None) -> Any:
    """The Starlette app for this process (builds the verifier unless given)."""
    from verifier.http.app import Limits, create_app
    from verifier.http.auth import ApiKeyFileError, ApiKeys

    try:
        api_keys = ApiKeys.from_file(cfg.api_keys) if cfg.api_keys else None
    except ApiKeyFileError as exc:
        raise CommandError(str(exc)) from None
    if verifier is None:
        verifier = build_verifier(cfg)
    # This thread answers requests (uvicorn's event loop; threads it starts later, the
    # image decoders, inherit it); the store's follower thread, started above, does not.
    request_slice()
    try:
        limits = Limits(
            max_body=cfg.max_body,
            max_batch_body=cfg.max_batch_body,
            max_batch=cfg.max_batch,
            max_image_bytes=cfg.max_image_bytes,
            max_image_pixels=cfg.max_image_pixels,
            body_timeout=cfg.body_timeout,
        )
        GuardedProtocol.configure(
            max_line=cfg.max_request_line,
            max_headers=cfg.max_header_bytes,
            header_timeout=cfg.header_timeout,
            body_timeout=cfg.body_timeout,
            drain_seconds=min(5.0, cfg.graceful_timeout / 2),
        )
        shared = os.environ.get(DIR_ENV)
        metrics = SharedMetrics(shared) if shared else None
        limiter = None
        if cfg.not_found_limit > 0:
            from verifier.link_limits import NotFoundLimiter

            limiter = NotFoundLimiter(
                per_minute=cfg.not_found_limit, burst=max(1, int(cfg.not_found_limit))
            )
        return create_app(
            verifier,
            limits,
            api_keys=api_keys,
            access_log=_access_sink(cfg),
            cors_origins=cfg.cors_origins,
            metrics=metrics,
            link_limiter=limiter,
        )
    except ValueError as exc:
        verifier.close()
        raise CommandError(str(exc)) from None


def _access_sink(cfg: ServeConfig) -> Any:
    """The buffered JSON access log on stderr, or None when the level is above info."""
    from verifier.http.jsonlog import AccessLog

    if cfg.log_level not in ("debug", "info"):
        return None
    return AccessLog(sys.stderr.buffer)


def _tables_off_the_request_path() -> None:
    """A server's ES256 key tables (26 ms each) are built on a background thread, so no
    request waits for one (fastpath._ossl.set_background_tables)."""
    from fastpath import _ossl

    _ossl.set_background_tables(True)


def worker_app() -> Any:
    """uvicorn app factory for worker processes (`--workers N`)."""
    raw = os.environ.get(WORKER_ENV)
    if not raw:
        raise RuntimeError(f"{WORKER_ENV} is not set: start workers through `qrverify serve`")
    _tables_off_the_request_path()
    return build_app(ServeConfig.from_json_dict(json.loads(raw)))


def _uvicorn_config(cfg: ServeConfig, app: Any) -> Any:
    from verifier.http.jsonlog import log_config

    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        workers=cfg.workers,
        factory=isinstance(app, str),
        loop="uvloop",
        http=GuardedProtocol,
        lifespan="on",
        log_config=log_config(cfg.log_level),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(cfg.graceful_timeout),
        limit_concurrency=cfg.limit_concurrency,
    )


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM/SIGINT once it has shut down, so the process
    dies of the signal (status 143). A completed graceful shutdown exits 0 here, as the
    multi-worker supervisor does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()


def serve(cfg: ServeConfig, app: Any, verifier: Any) -> int:
    """Run the server until it is stopped; the exit status of `qrverify serve`."""
    if cfg.workers == 1:
        _tables_off_the_request_path()
        server = _GracefulServer(_uvicorn_config(cfg, app))
        server.run()
        return EXIT_OK if server.started else EXIT_RUNTIME
    # Several workers: each builds its own replica; the parent's was only a check.
    verifier.close()
    os.environ[WORKER_ENV] = json.dumps(cfg.to_json_dict())
    shared = tempfile.mkdtemp(prefix="qrverify-workers-")
    os.environ[DIR_ENV] = shared  # the workers' metrics and versions (see workers.py)
    try:
        config = _uvicorn_config(cfg, WORKER_FACTORY)
        if not HAVE_REUSE_PORT:  # one socket for all, as uvicorn does it
            try:
                sock = config.bind_socket()
            except SystemExit:
                return EXIT_RUNTIME
            Multiprocess(config, sockets=[sock]).run()
            return EXIT_OK
        # A socket per worker (workers.py): the kernel spreads connections over them.
        try:
            reserved = reserve_address(cfg.host, cfg.port)
        except OSError as exc:
            logging.getLogger("uvicorn.error").error(
                "cannot bind %s:%d: %s", cfg.host, cfg.port, exc
            )
            return EXIT_RUNTIME
        with reserved:
            port = int(reserved.getsockname()[1])
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on http://%s:%d with %d workers, a socket each (SO_REUSEPORT)",
                cfg.host,
                port,
                cfg.workers,
            )
            listener = ReusePortListener(cfg.host, port)
            Multiprocess(config, sockets=[cast(socket.socket, listener)]).run()
        return EXIT_OK
    finally:
        shutil.rmtree(shared, ignore_errors=True)
