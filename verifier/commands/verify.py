"""`qrverify verify`: verify tokens given as arguments, or one per line on stdin.

Prints one verdict JSON per line, in input order. Exit 0 if all valid, 1 if any
invalid, 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

import fastpath
from verifier.commands._common import (
    DEFAULT_NAMESPACE,
    EXIT_INVALID,
    EXIT_OK,
    CommandError,
    add_options,
    build_verifier,
    fail,
    resolve_options,
    shared,
)
from verifier.core import DEFAULT_CACHE_SIZE, DEFAULT_LEEWAY
from verifier.reasons import Reason
from verifier.verdict import Verdict

PROG = "qrverify verify"
_LINE_LIMIT = fastpath.MAX_TOKEN_CHARS + 2
OPTIONS = shared(
    "trust",
    "revocations",
    "records",
    "drl",
    "link_origins",
    "valuesets",
    "signatures",
    "redis",
    "rules",
    "leeway",
    "namespace",
    "strict",
)


@dataclass(frozen=True)
class VerifyOptions:
    trust: str | None = None
    revocations: str | None = None
    records: str | None = None
    drl: str | None = None
    link_origins: tuple[str, ...] = ()
    valuesets: str | None = None
    signatures: str = "auto"
    redis: str | None = None
    rules: str = "venue"
    leeway: int = DEFAULT_LEEWAY
    namespace: str = DEFAULT_NAMESPACE
    cache_size: int = DEFAULT_CACHE_SIZE
    snapshot: str | None = None
    max_age: float = 60.0
    strict: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tokens", nargs="*", metavar="TOKEN", help="HC1 tokens (else stdin)")
    add_options(parser, OPTIONS)
    parser.add_argument("--at", metavar="ISO8601", help="verify as of this time (default now)")


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at: not an ISO 8601 time: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def stdin_tokens(stream: BinaryIO) -> Iterator[Any]:
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
        opts = VerifyOptions(**resolve_options(args, OPTIONS))
        verifier = build_verifier(opts, follow=False, prog=PROG)
    except CommandError as exc:
        return fail(PROG, str(exc))
    tokens = args.tokens if args.tokens else stdin_tokens(sys.stdin.buffer)
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
