"""`qrverify serve`: the HTTP service on uvicorn (uvloop + httptools).

With `--workers N` uvicorn's supervisor starts N processes; each one calls `worker_app()`,
which rebuilds the verifier (its own store replica) from the configuration that the parent
resolved and validated, passed in the environment variable `QRVERIFY_SERVE_CONFIG`.
Configuration errors are reported on stderr with exit status 2 before anything listens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from verifier.http import config as _config
from verifier.http.config import WORKER_ENV, ServeConfig, ServeConfigError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
WORKER_FACTORY = "verifier.http.serve:worker_app"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _config.add_arguments(parser)


class _SetupError(Exception):
    """A configuration problem found while loading files or connecting to the store."""


def build_verifier(cfg: ServeConfig) -> Any:
    """The Verifier for this process: embedded store from files, or a Redis replica."""
    from verifier.core import ConfigError, Verifier

    try:
        if cfg.redis:
            from keys.registry import TrustFileError, TrustRegistry
            from verifier.redis_store import RedisStore, StoreUnavailable

            try:
                override = TrustRegistry.from_file(cfg.trust) if cfg.trust else None
            except (OSError, TrustFileError) as exc:
                raise _SetupError(str(exc)) from None
            try:
                store = RedisStore.connect(cfg.redis, trust_override=override,
                                           snapshot_path=cfg.snapshot, max_age=cfg.max_age)
            except StoreUnavailable as exc:
                raise _SetupError(str(exc)) from None
            try:
                return Verifier(store, cfg.rules, cache_size=cfg.cache_size,
                                leeway=cfg.leeway, link_origins=cfg.link_origins)
            except BaseException:
                store.close()
                raise
        return Verifier.from_files(cfg.trust, cfg.revocations, cfg.rules,
                                   records=cfg.records, link_origins=cfg.link_origins,
                                   cache_size=cfg.cache_size, leeway=cfg.leeway)
    except ConfigError as exc:
        raise _SetupError(str(exc)) from None


def build_app(cfg: ServeConfig, verifier: Any | None = None) -> Any:
    """The Starlette app for this process (builds the verifier unless given)."""
    from verifier.http.app import create_app
    from verifier.http.auth import ApiKeyFileError, ApiKeys

    try:
        api_keys = ApiKeys.from_file(cfg.api_keys) if cfg.api_keys else None
    except ApiKeyFileError as exc:
        raise _SetupError(str(exc)) from None
    if verifier is None:
        verifier = build_verifier(cfg)
    try:
        return create_app(
            verifier,
            api_keys=api_keys,
            max_body=cfg.max_body,
            max_batch_body=cfg.max_batch_body,
            max_batch=cfg.max_batch,
            max_image_bytes=cfg.max_image_bytes,
            max_image_pixels=cfg.max_image_pixels,
            body_timeout=cfg.body_timeout,
            access_log=_access_sink(cfg),
        )
    except ValueError as exc:
        verifier.close()
        raise _SetupError(str(exc)) from None


def _access_sink(cfg: ServeConfig) -> Any:
    """The buffered JSON access log on stderr, or None when the level is above info."""
    from verifier.http.jsonlog import AccessLog

    if cfg.log_level not in ("debug", "info"):
        return None
    return AccessLog(sys.stderr.buffer)


def worker_app() -> Any:
    """uvicorn app factory for worker processes (`--workers N`)."""
    raw = os.environ.get(WORKER_ENV)
    if not raw:
        raise RuntimeError(f"{WORKER_ENV} is not set: start workers through `qrverify serve`")
    return build_app(ServeConfig.from_json_dict(json.loads(raw)))


def _prepare_demo(cfg: ServeConfig) -> tuple[ServeConfig, Any, str | None]:
    """Create the demo issuer; returns the config pointing at its trust file."""
    from keys.demo import make_demo
    from keys.link_records import make_demo_records
    from keys.qr import write_png

    created: str | None = None
    if cfg.demo_dir:
        directory = cfg.demo_dir
    else:
        directory = created = tempfile.mkdtemp(prefix="qrverify-demo-")
    try:
        demo = make_demo(directory)
        for kind, token in demo.tokens.items():
            write_png(token, Path(directory) / f"qr-{kind}.png")
        links = make_demo_records(directory) if not cfg.records else {}
        for kind, link in links.items():
            write_png(link, Path(directory) / f"qr-link-{kind}.png")
    except Exception as exc:
        if created:
            shutil.rmtree(created, ignore_errors=True)
        raise _SetupError(f"--demo: {exc}") from None
    records = cfg.records or str(Path(directory) / "records.jsonl")
    new = ServeConfig.from_json_dict({**cfg.to_json_dict(), "trust": str(demo.trust_path),
                                      "records": records})
    return new, demo, created


def _print_demo(cfg: ServeConfig, demo: Any) -> None:
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    url = f"http://{host}:{cfg.port}/"
    directory = Path(demo.trust_path).parent
    lines = [
        "qrverify demo: a DEVELOPMENT issuer (country RU), not for production.",
        f"  trust file:   {demo.trust_path}",
        f"  scanner page: {url}  (camera needs https or localhost)",
        f"  QR pictures:  {directory}/qr-<type>.png",
        "  sample tokens:",
    ]
    for kind, token in demo.tokens.items():
        lines.append(f"    {kind}: {token}")
    from keys.link_records import demo_links

    links = demo_links(directory)
    if links:
        lines.append(f"  register records: {directory}/records.jsonl")
        lines.append("  sample register links (QR pictures: qr-link-<kind>.png):")
        lines.extend(f"    {kind}: {link}" for kind, link in links.items())
    first = next(iter(demo.tokens.values()))
    lines.append(f"  try: curl -s -H 'content-type: text/plain' --data-binary '{first}' "
                 f"{url}v1/verify")
    print("\n".join(lines), flush=True)


def _uvicorn_config(cfg: ServeConfig, app: Any) -> Any:
    from verifier.http.jsonlog import log_config

    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        workers=cfg.workers,
        factory=isinstance(app, str),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=log_config(cfg.log_level),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(cfg.graceful_timeout),
        limit_concurrency=cfg.limit_concurrency,
    )


def run(args: argparse.Namespace) -> int:
    try:
        cfg = _config.resolve(args)
    except ServeConfigError as exc:
        print(f"qrverify serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    demo_tmp: str | None = None
    try:
        demo = None
        try:
            if cfg.demo:
                cfg, demo, demo_tmp = _prepare_demo(cfg)
            # Validate everything (files, rules, keys, store) in this process first.
            verifier = build_verifier(cfg)
            try:
                app = build_app(cfg, verifier)
            except BaseException:
                verifier.close()
                raise
        except _SetupError as exc:
            print(f"qrverify serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if demo is not None:
            _print_demo(cfg, demo)
        return _serve(cfg, app, verifier)
    finally:
        if demo_tmp:
            shutil.rmtree(demo_tmp, ignore_errors=True)


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


def _serve(cfg: ServeConfig, app: Any, verifier: Any) -> int:
    if cfg.workers == 1:
        server = _GracefulServer(_uvicorn_config(cfg, app))
        server.run()
        return EXIT_OK if server.started else EXIT_RUNTIME
    # Several workers: each builds its own replica; the parent's was only a check.
    verifier.close()
    os.environ[WORKER_ENV] = json.dumps(cfg.to_json_dict())
    config = _uvicorn_config(cfg, WORKER_FACTORY)
    try:
        sock = config.bind_socket()
    except SystemExit:
        return EXIT_RUNTIME
    Multiprocess(config, sockets=[sock]).run()
    return EXIT_OK
