"""`qrverify sync`: bring Redis to the state of the trust and revocation files.

    qrverify sync --redis URL [--trust FILE] [--revocations FILE] [--replace] [--namespace NAME]

How it stays safe is described in verifier/sync.py. After the flip it waits (WAIT) for
`--wait-replicas` replicas (default all connected ones) at most `--wait-timeout` seconds
(docs/redis-fleet.md). Exit status: 0 success (or already up to date), 1 runtime failure
(Redis data unusable, a concurrent sync kept winning, fewer replicas acknowledged than
required), 2 usage or input error (nothing is written), or any Redis error (unreachable,
auth, cluster, server: one categorised line).
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
    load_trust,
    resolve_options,
    shared,
)
from verifier.errors import QrverifyError

PROG = "qrverify sync"
OPTIONS = shared("redis", "trust", "revocations", "namespace", "strict")


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
    parser.add_argument(
        "--wait-replicas",
        metavar="N|all",
        type=_replica_count,
        default=None,
        help="replicas that must acknowledge the new version (WAIT), else exit 1 "
        "(default all: every replica connected to the primary)",
    )
    parser.add_argument(
        "--wait-timeout",
        metavar="SECONDS",
        type=_wait_timeout,
        default=10.0,
        help="how long to wait for them (default 10)",
    )


def _replica_count(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    if not text.strip().isdigit() or int(text) > 1000:
        raise argparse.ArgumentTypeError("a number of replicas (0-1000) or 'all'")
    return int(text)


def _wait_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("seconds, e.g. 10") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("between 0 and 600 seconds")
    return value


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

    from verifier.redis.connect import (
        RedisFailure,
        connect,
        describe,
        redact_url,
        wait_for_replicas,
    )
    from verifier.revocations import load_revocations
    from verifier.sync import PROGRESS_MIN_ENTRIES, sync_state

    try:
        trust = (
            load_trust(trust_path, strict=values.get("strict", False), prog=PROG)
            if trust_path
            else None
        )
        revocations = load_revocations(revocations_path) if revocations_path else None
    except (QrverifyError, ValueError) as exc:
        return fail(PROG, f"{exc}; nothing written")
    safe = redact_url(redis_url)
    try:
        client = connect(
            redis_url, role="writer", connect_timeout=5.0, timeout=60.0 + args.wait_timeout
        )
    except RedisFailure as exc:
        return fail(PROG, str(exc))
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
        acks = wait_for_replicas(
            client,
            args.wait_replicas,
            args.wait_timeout,
            namespace=namespace,
            marker=result.version,
        )
    except (redis.RedisError, RedisFailure, OSError) as exc:  # one categorised line
        return fail(PROG, describe(exc, safe))
    except QrverifyError as exc:  # SyncError, Redis data this version cannot use
        return fail(PROG, str(exc), EXIT_RUNTIME)
    finally:
        client.close()
    print(f"{result.summary()}; {acks.summary()}")
    if not acks.ok:
        return fail(
            PROG,
            f"version {result.version} is on the primary, but only {acks.acknowledged} of "
            f"{acks.required} replica(s) acknowledged it within {args.wait_timeout:g} s: "
            "a failover now would lose it; rerun the sync",
            EXIT_RUNTIME,
        )
    return EXIT_OK
