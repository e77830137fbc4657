"""`qrverify sync`: bring Redis to the state of the trust and revocation files.

    qrverify sync --redis URL [--trust FILE] [--revocations FILE] [--replace] [--namespace NAME]

How it stays safe is described in verifier/sync.py. Exit status: 0 success (or already up
to date), 1 runtime failure (Redis unreachable, Redis data unusable, a concurrent sync kept
winning), 2 usage or input error (nothing is written).
"""

from __future__ import annotations

import argparse
import sys

from verifier.commands._common import (
    DEFAULT_NAMESPACE,
    EXIT_OK,
    EXIT_RUNTIME,
    CommandError,
    add_options,
    fail,
    resolve_options,
    shared,
)
from verifier.errors import QrverifyError

PROG = "qrverify sync"
OPTIONS = shared("redis", "trust", "revocations", "namespace")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    parser.add_argument(
        "--replace",
        action="store_true",
        help="make Redis hold exactly these files (default: add to it)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for large inputs on a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        values = resolve_options(args, OPTIONS)
    except CommandError as exc:
        return fail(PROG, str(exc))
    redis_url: str | None = values.get("redis")
    trust_path: str | None = values.get("trust")
    revocations_path: str | None = values.get("revocations")
    namespace: str = values.get("namespace", DEFAULT_NAMESPACE)
    if not redis_url:
        return fail(PROG, "--redis URL is required (or QRVERIFY_REDIS_URL)")
    if not trust_path and not revocations_path:
        return fail(PROG, "nothing to sync: give --trust FILE and/or --revocations FILE")

    import redis

    from keys.registry import TrustRegistry
    from verifier.redis_store import NETWORK_ERRORS, redact_url
    from verifier.revocations import load_revocations
    from verifier.sync import PROGRESS_MIN_ENTRIES, sync_state

    try:
        trust = TrustRegistry.from_file(trust_path) if trust_path else None
        revocations = load_revocations(revocations_path) if revocations_path else None
    except (QrverifyError, ValueError) as exc:
        return fail(PROG, f"{exc}; nothing written")
    safe = redact_url(redis_url)
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5.0, socket_timeout=60.0)
    except ValueError as exc:
        return fail(PROG, f"invalid Redis URL {safe}: {exc}")
    entries = (
        0 if revocations is None else revocations.revoked_count + (revocations.registry_count or 0)
    )
    progress = (
        args.progress
        if args.progress is not None
        else (entries >= PROGRESS_MIN_ENTRIES and sys.stderr.isatty())
    )
    try:
        result = sync_state(
            client,
            trust=trust,
            revocations=revocations,
            replace=args.replace,
            namespace=namespace,
            progress=progress,
        )
    except NETWORK_ERRORS as exc:
        return fail(PROG, f"cannot reach Redis at {safe}: {exc}", EXIT_RUNTIME)
    except redis.RedisError as exc:
        return fail(PROG, f"Redis error at {safe}: {exc}", EXIT_RUNTIME)
    except QrverifyError as exc:  # SyncError, Redis data this version cannot use
        return fail(PROG, str(exc), EXIT_RUNTIME)
    finally:
        client.close()
    print(result.summary())
    return EXIT_OK
