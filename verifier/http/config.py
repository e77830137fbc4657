"""`qrverify serve` configuration: options, their environment variables, and validation.

Every option can come from a flag or from `QRVERIFY_<NAME>` (the Redis URL from
`QRVERIFY_REDIS_URL`); a flag wins over the environment, the environment over the default.
The resolved configuration is a plain JSON-able dataclass, so `--workers N` can hand it to
each worker process through one environment variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from verifier.http.app import Limits

WORKER_ENV = "QRVERIFY_SERVE_CONFIG"  # internal: the resolved config for worker processes
LOG_LEVELS = ("debug", "info", "warning", "error")


class ServeConfigError(ValueError):
    """A bad option value (from a flag or an environment variable)."""


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    trust: str | None = None
    revocations: str | None = None
    records: str | None = None
    link_origins: tuple[str, ...] = ()
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
    graceful_timeout: float = 10.0
    limit_concurrency: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json_dict(cls, obj: Mapping[str, Any]) -> ServeConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise ServeConfigError(f"not an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise ServeConfigError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ServeConfigError(f"not a number: {text!r}") from None
        if not lo <= value <= hi:  # also rejects NaN
            raise ServeConfigError(f"{value} is outside {lo:g}..{hi:g}")
        return value

    return parse


def _text(text: str) -> str:
    if not text or "\x00" in text:
        raise ServeConfigError("empty value")
    return text


def _origins(text: str) -> tuple[str, ...]:
    from fastpath._links import parse_origin

    out = tuple(u.strip() for u in text.split(",") if u.strip())
    for url in out:
        try:
            parse_origin(url)
        except ValueError as exc:
            raise ServeConfigError(str(exc)) from None
    return out


def _log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ServeConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}")
    return level


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ServeConfigError(f"not a boolean: {text!r} (use 1/0, true/false)")


@dataclass(frozen=True)
class Option:
    name: str  # ServeConfig field
    flag: str
    env: str
    parse: Callable[[str], Any]
    metavar: str | None
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "QRVERIFY_HOST", _text, "H", "bind address (default 127.0.0.1)"),
    Option("port", "--port", "QRVERIFY_PORT", _int_range(1, 65535), "P", "TCP port (default 8000)"),
    Option("workers", "--workers", "QRVERIFY_WORKERS", _int_range(1, 64), "N",
           "worker processes, each with its own store replica (default 1)"),
    Option("trust", "--trust", "QRVERIFY_TRUST", _text, "FILE", "trust registry file"),
    Option("revocations", "--revocations", "QRVERIFY_REVOCATIONS", _text, "FILE",
           "revocation and registry file (embedded store)"),
    Option("records", "--records", "QRVERIFY_RECORDS", _text, "FILE",
           "register records for register links (JSON Lines or CSV)"),
    Option("link_origins", "--link-origin", "QRVERIFY_LINK_ORIGINS", _origins, "URL[,URL]",
           "further register origins for links, comma-separated"),
    Option("redis", "--redis", "QRVERIFY_REDIS_URL", _text, "URL",
           "read keys and sets from Redis instead of files"),
    Option("rules", "--rules", "QRVERIFY_RULES", _text, "venue|none|FILE",
           "acceptance rules (default venue)"),
    Option("demo", "--demo", "QRVERIFY_DEMO", _bool, None,
           "create a development issuer, print sample tokens, serve"),
    Option("demo_dir", "--demo-dir", "QRVERIFY_DEMO_DIR", _text, "DIR",
           "where --demo keeps its issuer (default: a temporary directory)"),
    Option("api_keys", "--api-keys", "QRVERIFY_API_KEYS", _text, "FILE",
           "JSON file of scanner API keys; then /v1/verify* needs X-API-Key"),
    Option("max_age", "--max-age", "QRVERIFY_MAX_AGE", _float_range(1, 86400 * 30), "SECONDS",
           "Redis replica older than this -> not ready (default 60)"),
    Option("snapshot", "--snapshot", "QRVERIFY_SNAPSHOT", _text, "FILE",
           "local snapshot of the Redis replica to start from when Redis is down"),
    Option("log_level", "--log-level", "QRVERIFY_LOG_LEVEL", _log_level, "LEVEL",
           "debug, info (default; one access-log line per request), warning, error"),
    Option("max_body", "--max-body", "QRVERIFY_MAX_BODY", _int_range(1024, 1 << 24), "BYTES",
           "largest /v1/verify body (default 65536)"),
    Option("max_batch_body", "--max-batch-body", "QRVERIFY_MAX_BATCH_BODY",
           _int_range(1024, 1 << 28), "BYTES", "largest /v1/verify/batch body (default 8 MiB)"),
    Option("max_batch", "--max-batch", "QRVERIFY_MAX_BATCH", _int_range(1, 1000), "N",
           "most tokens in one batch (default and maximum 1000)"),
    Option("max_image_bytes", "--max-image-bytes", "QRVERIFY_MAX_IMAGE_BYTES",
           _int_range(1024, 1 << 28), "BYTES", "largest image upload (default 16 MiB)"),
    Option("max_image_pixels", "--max-image-pixels", "QRVERIFY_MAX_IMAGE_PIXELS",
           _int_range(1024, 80_000_000), "N", "largest image in pixels (default 30,000,000)"),
    Option("body_timeout", "--body-timeout", "QRVERIFY_BODY_TIMEOUT", _float_range(0.1, 600),
           "SECONDS", "a request body must arrive within this time, else 408 (default 15)"),
    Option("cache_size", "--cache-size", "QRVERIFY_CACHE_SIZE", _int_range(0, 10_000_000), "N",
           "verified-token cache entries per worker (default 20000, 0 = off)"),
    Option("leeway", "--leeway", "QRVERIFY_LEEWAY", _int_range(0, 86400), "SECONDS",
           "clock skew tolerated for a token's iat / exp (default 300)"),
    Option("graceful_timeout", "--graceful-timeout", "QRVERIFY_GRACEFUL_TIMEOUT",
           _float_range(0, 3600), "SECONDS",
           "on SIGTERM, wait this long for requests in flight (default 10)"),
    Option("limit_concurrency", "--limit-concurrency", "QRVERIFY_LIMIT_CONCURRENCY",
           _int_range(1, 1_000_000), "N", "answer 503 above N open connections+tasks per worker"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for opt in OPTIONS:
        help_ = f"{opt.help} [env {opt.env}]"
        if opt.metavar is None:
            parser.add_argument(opt.flag, dest=opt.name, action="store_const", const=True,
                                default=None, help=help_)
        else:
            parser.add_argument(opt.flag, dest=opt.name, metavar=opt.metavar, default=None,
                                help=help_)


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Flags, then QRVERIFY_* variables, then defaults; ServeConfigError names the source."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        given = getattr(args, opt.name, None)
        if given is True and opt.metavar is None:
            values[opt.name] = True
            continue
        if given is not None:
            source, text = opt.flag, given
        elif env.get(opt.env) not in (None, ""):
            source, text = opt.env, env[opt.env]
        else:
            continue
        try:
            values[opt.name] = opt.parse(text)
        except ServeConfigError as exc:
            raise ServeConfigError(f"{source}: {exc}") from None
    cfg = ServeConfig(**values)
    _check(cfg)
    return cfg


def _check(cfg: ServeConfig) -> None:
    if cfg.demo and (cfg.trust or cfg.redis):
        raise ServeConfigError("--demo makes its own trust file: drop --trust / --redis")
    if cfg.redis and cfg.records:
        raise ServeConfigError("--records and --redis exclude each other "
                               "(load records into Redis with `qrverify sync --records`)")
    if cfg.redis and cfg.revocations:
        raise ServeConfigError("--revocations and --redis exclude each other "
                               "(load revocations into Redis with `qrverify sync`)")
    if not cfg.demo and not cfg.trust and not cfg.redis:
        raise ServeConfigError("no issuer keys: give --trust FILE, --redis URL or --demo")
    if cfg.snapshot and not cfg.redis:
        raise ServeConfigError("--snapshot needs --redis")
