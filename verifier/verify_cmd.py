"""`qrverify verify`: verify tokens given as arguments, or one per line on stdin.

Prints one verdict JSON per line, in input order. Exit 0 if all valid, 1 if any
invalid, 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import fastpath
from verifier.core import DEFAULT_LEEWAY, ConfigError, Verifier
from verifier.reasons import Reason
from verifier.verdict import Verdict

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
_LINE_LIMIT = fastpath.MAX_TOKEN_CHARS + 2
_ENV_HINT = "give --trust FILE or --redis URL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tokens", nargs="*", metavar="TOKEN", help="HC1 tokens (else stdin)")
    parser.add_argument("--trust", metavar="FILE", help="trust registry file (issuer keys)")
    parser.add_argument("--revocations", metavar="FILE", help="revocation and registry file")
    parser.add_argument("--records", metavar="FILE",
                        help="register records for register links (JSON Lines or CSV)")
    parser.add_argument("--link-origin", action="append", default=[], metavar="URL",
                        dest="link_origins",
                        help="a further register origin for links (repeatable)")
    parser.add_argument("--redis", metavar="URL", help="read keys and sets from Redis")
    parser.add_argument(
        "--rules", default="venue", metavar="venue|none|FILE", help="acceptance rules profile"
    )
    parser.add_argument("--at", metavar="ISO8601", help="verify as of this time (default now)")
    parser.add_argument(
        "--leeway",
        type=int,
        default=DEFAULT_LEEWAY,
        metavar="SECONDS",
        help=f"clock skew tolerated for a token's iat / exp (default {DEFAULT_LEEWAY})",
    )


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--at: not an ISO 8601 time: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _build(args: argparse.Namespace) -> Verifier:
    if args.redis:
        if args.revocations or args.records:
            raise ConfigError("--revocations / --records and --redis exclude each other")
        from keys.registry import TrustFileError, TrustRegistry
        from verifier.redis_store import RedisStore, StoreUnavailable

        try:
            override = TrustRegistry.from_file(args.trust) if args.trust else None
        except (OSError, TrustFileError) as exc:
            raise ConfigError(str(exc)) from None
        try:
            store = RedisStore.connect(args.redis, trust_override=override, follow=False)
        except StoreUnavailable as exc:
            raise ConfigError(str(exc)) from None
        return Verifier(store, args.rules, leeway=args.leeway, link_origins=args.link_origins)
    if not args.trust and not args.records:
        raise ConfigError(f"no issuer keys: {_ENV_HINT} (or --records FILE for links)")
    return Verifier.from_files(args.trust, args.revocations, args.rules, records=args.records,
                               leeway=args.leeway, link_origins=args.link_origins)


def _stdin_tokens(stream: BinaryIO) -> Iterator[Any]:
    """One token per line; only the line ending is stripped. Over-long lines are
    drained and stand for a token that is too large."""
    while True:
        line = stream.readline(_LINE_LIMIT)
        if not line:
            return
        if len(line) == _LINE_LIMIT and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
            continue
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        yield line


def run(args: argparse.Namespace) -> int:
    try:
        at = _parse_at(args.at)
        verifier = _build(args)
    except ConfigError as exc:
        print(f"qrverify verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    tokens = args.tokens if args.tokens else _stdin_tokens(sys.stdin.buffer)
    out = sys.stdout.buffer
    interactive = sys.stdout.isatty()
    worst = EXIT_OK
    try:
        for token in tokens:
            verdict = Verdict(Reason.TOO_LARGE) if token is None else verifier.verify(token, at)
            out.write(verdict.to_json() + b"\n")
            if interactive:
                out.flush()
            if verdict.reason is not None:
                worst = EXIT_INVALID
        out.flush()
    finally:
        verifier.close()
    return worst
