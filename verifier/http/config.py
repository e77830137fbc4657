"""`qrverify serve` configuration: its options, and the resolved, validated config.

Every option can come from a flag or from `QRVERIFY_<NAME>` (the Redis URL from
`QRVERIFY_REDIS_URL`); a flag wins over the environment, the environment over the default
(the machinery and the options shared with other commands: verifier/commands/_common.py).
The resolved configuration is a plain JSON-able dataclass, so `--workers N` can hand it to
each worker process through one environment variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verifier.commands._common import (
    DEFAULT_NAMESPACE,
    SHARED,
    Option,
    OptionError,
    add_options,
    boolean,
    float_range,
    int_range,
    resolve_options,
    text,
)
from verifier.http._protocol import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_HEADERS, DEFAULT_MAX_LINE
from verifier.http.app import Limits

WORKER_ENV = "QRVERIFY_SERVE_CONFIG"  # internal: the resolved config for worker processes
LOG_LEVELS = ("debug", "info", "warning", "error")


ServeConfigError = OptionError  # a bad option value (from a flag or an environment variable)


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    trust: str | None = None
    revocations: str | None = None
    records: str | None = None
    drl: str | None = None
    link_origins: tuple[str, ...] = ()
    valuesets: str | None = None
    signatures: str = "auto"
    not_found_limit: float = 0.0
    redis: str | None = None
    rules: str = "venue"
    demo: bool = False
    demo_dir: str | None = None
    api_keys: str | None = None
    max_age: float = 60.0
    snapshot: str | None = None
    log_level: str = "info"
    max_body: int = Limits.max_body
    max_batch_body: int = Limits.max_batch_body
    max_batch: int = Limits.max_batch
    max_image_bytes: int = Limits.max_image_bytes
    max_image_pixels: int = Limits.max_image_pixels
    body_timeout: float = Limits.body_timeout
    cache_size: int = 20000
    leeway: int = 300
    namespace: str = DEFAULT_NAMESPACE
    strict: bool = False
    graceful_timeout: float = 10.0
    limit_concurrency: int | None = None
    max_request_line: int = DEFAULT_MAX_LINE
    max_header_bytes: int = DEFAULT_MAX_HEADERS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    cors_origins: tuple[str, ...] = ()
    cors_wildcard_with_keys: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json_dict(cls, obj: Mapping[str, Any]) -> ServeConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in obj.items() if k in names}
        for key, value in values.items():  # JSON has lists where the config keeps tuples
            if isinstance(value, list):
                values[key] = tuple(value)
        return cls(**values)


def _log_level(value: str) -> str:
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise OptionError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    return level


def _origins(value: str | list[str]) -> tuple[str, ...]:
    """Origins from repeated flags, or a comma- or space-separated environment value."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        for origin in item.replace(",", " ").split():
            origin = origin.rstrip("/")
            if origin != "*" and not _ORIGIN_RE.fullmatch(origin):
                raise OptionError(f"not an origin (scheme://host[:port] or *): {origin!r}")
            out.append(origin)
    if not out:
        raise OptionError("empty value")
    return tuple(dict.fromkeys(out))


_ORIGIN_RE = re.compile(
    r"https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|https?://\[[0-9a-fA-F:]+\](:[0-9]{1,5})?"
)

CORS_ORIGIN = "cors_origins"

OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "QRVERIFY_HOST", text, "H", "bind address (default 127.0.0.1)"),
    Option("port", "--port", "QRVERIFY_PORT", int_range(1, 65535), "P", "TCP port (default 8000)"),
    Option(
        "workers",
        "--workers",
        "QRVERIFY_WORKERS",
        int_range(1, 64),
        "N",
        "worker processes, each with its own store replica (default 1)",
    ),
    SHARED["trust"],
    SHARED["revocations"],
    SHARED["records"],
    SHARED["drl"],
    SHARED["link_origins"],
    SHARED["valuesets"],
    SHARED["signatures"],
    Option(
        "not_found_limit",
        "--not-found-limit",
        "QRVERIFY_NOT_FOUND_LIMIT",
        float_range(0, 1e6),
        "PER_MINUTE",
        "not_found answers a client may get per minute (burst the same) before its "
        "register links are answered 429; 0 = no limit (default)",
    ),
    SHARED["redis"],
    SHARED["rules"],
    Option(
        "demo",
        "--demo",
        "QRVERIFY_DEMO",
        boolean,
        None,
        "create a development issuer, print sample tokens, serve",
    ),
    Option(
        "demo_dir",
        "--demo-dir",
        "QRVERIFY_DEMO_DIR",
        text,
        "DIR",
        "where --demo keeps its issuer (default: a temporary directory)",
    ),
    Option(
        "api_keys",
        "--api-keys",
        "QRVERIFY_API_KEYS",
        text,
        "FILE",
        "JSON file of scanner API keys; then /v1/verify* needs X-API-Key",
    ),
    Option(
        "max_age",
        "--max-age",
        "QRVERIFY_MAX_AGE",
        float_range(1, 86400 * 30),
        "SECONDS",
        "Redis replica older than this -> not ready (default 60)",
    ),
    Option(
        "snapshot",
        "--snapshot",
        "QRVERIFY_SNAPSHOT",
        text,
        "FILE",
        "local snapshot of the Redis replica to start from when Redis is down",
    ),
    Option(
        "log_level",
        "--log-level",
        "QRVERIFY_LOG_LEVEL",
        _log_level,
        "LEVEL",
        "debug, info (default; one access-log line per request), warning, error",
    ),
    Option(
        "max_body",
        "--max-body",
        "QRVERIFY_MAX_BODY",
        int_range(1024, 1 << 24),
        "BYTES",
        "largest /v1/verify body (default 65536)",
    ),
    Option(
        "max_batch_body",
        "--max-batch-body",
        "QRVERIFY_MAX_BATCH_BODY",
        int_range(1024, 1 << 28),
        "BYTES",
        "largest /v1/verify/batch body (default 8 MiB)",
    ),
    Option(
        "max_batch",
        "--max-batch",
        "QRVERIFY_MAX_BATCH",
        int_range(1, 1000),
        "N",
        "most tokens in one batch (default and maximum 1000)",
    ),
    Option(
        "max_image_bytes",
        "--max-image-bytes",
        "QRVERIFY_MAX_IMAGE_BYTES",
        int_range(1024, 1 << 28),
        "BYTES",
        "largest image upload (default 8 MiB)",
    ),
    Option(
        "max_image_pixels",
        "--max-image-pixels",
        "QRVERIFY_MAX_IMAGE_PIXELS",
        int_range(1024, 80_000_000),
        "N",
        "largest JPEG in pixels (default 12,000,000; PNG at most 6,000,000)",
    ),
    Option(
        "body_timeout",
        "--body-timeout",
        "QRVERIFY_BODY_TIMEOUT",
        float_range(0.1, 600),
        "SECONDS",
        "a request body must arrive within this time, else 408 (default 15)",
    ),
    Option(
        "cache_size",
        "--cache-size",
        "QRVERIFY_CACHE_SIZE",
        int_range(0, 10_000_000),
        "N",
        "verified-token cache entries per worker (default 20000, 0 = off)",
    ),
    SHARED["leeway"],
    SHARED["namespace"],
    SHARED["strict"],
    Option(
        "graceful_timeout",
        "--graceful-timeout",
        "QRVERIFY_GRACEFUL_TIMEOUT",
        float_range(0, 3600),
        "SECONDS",
        "on SIGTERM, wait this long for requests in flight (default 10)",
    ),
    Option(
        "limit_concurrency",
        "--limit-concurrency",
        "QRVERIFY_LIMIT_CONCURRENCY",
        int_range(1, 1_000_000),
        "N",
        "answer 503 above N open connections+tasks per worker",
    ),
    Option(
        "max_request_line",
        "--max-request-line",
        "QRVERIFY_MAX_REQUEST_LINE",
        int_range(256, 1 << 20),
        "BYTES",
        "longest request line, else 414 (default 8192)",
    ),
    Option(
        "max_header_bytes",
        "--max-header-bytes",
        "QRVERIFY_MAX_HEADER_BYTES",
        int_range(1024, 1 << 20),
        "BYTES",
        "most bytes of request headers, else 431 (default 16384)",
    ),
    Option(
        "header_timeout",
        "--header-timeout",
        "QRVERIFY_HEADER_TIMEOUT",
        float_range(0.1, 600),
        "SECONDS",
        "request headers must arrive within this time, else 408 (default 10)",
    ),
    Option(
        CORS_ORIGIN,
        "--cors-origin",
        "QRVERIFY_CORS_ORIGIN",
        _origins,
        "ORIGIN",
        "let browser apps on ORIGIN call the API (repeatable; * for any)",
    ),
    Option(
        "cors_wildcard_with_keys",
        "--cors-wildcard-with-keys",
        "QRVERIFY_CORS_WILDCARD_WITH_KEYS",
        boolean,
        None,
        "allow --cors-origin '*' together with --api-keys",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, [o for o in OPTIONS if o.name != CORS_ORIGIN])
    cors = next(o for o in OPTIONS if o.name == CORS_ORIGIN)
    parser.add_argument(
        cors.flag,
        dest=cors.name,
        metavar=cors.metavar,
        action="append",
        default=None,
        help=f"{cors.help} [env {cors.env}]",
    )


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Flags, then QRVERIFY_* variables, then defaults; ServeConfigError names the source."""
    cfg = ServeConfig(**resolve_options(args, OPTIONS, environ))
    _check(cfg)
    return cfg


def _check(cfg: ServeConfig) -> None:
    if cfg.demo and (cfg.trust or cfg.redis):
        raise ServeConfigError("--demo makes its own trust file: drop --trust / --redis")
    if cfg.redis and cfg.records:
        raise ServeConfigError(
            "--records and --redis exclude each other "
            "(load records into Redis with `qrverify sync --records`)"
        )
    if cfg.redis and cfg.revocations:
        raise ServeConfigError(
            "--revocations and --redis exclude each other "
            "(load revocations into Redis with `qrverify sync`)"
        )
    if not cfg.demo and not cfg.trust and not cfg.redis:
        raise ServeConfigError("no issuer keys: give --trust FILE, --redis URL or --demo")
    if cfg.snapshot and not cfg.redis:
        raise ServeConfigError("--snapshot needs --redis")
    if "*" in cfg.cors_origins and cfg.api_keys and not cfg.cors_wildcard_with_keys:
        raise ServeConfigError(
            "--cors-origin '*' with --api-keys lets any web page use a "
            "scanner's key: name the origins, or add "
            "--cors-wildcard-with-keys"
        )
