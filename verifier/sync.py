"""`qrverify sync`: bring Redis to the state of the trust and revocation files.

    qrverify sync --redis URL [--trust FILE] [--revocations FILE] [--replace]
                  [--bootstrap] [--allow-drop] [--max-drop SHARE]

The command line only: parsing, reading the files, messages and exit status. What is
written and how it stays safe is verifier/redis/sync.py.

Exit status: 0 success (or already up to date), 1 runtime failure (Redis unreachable,
Redis data unusable, a concurrent sync kept winning, the guard refused), 2 usage or
input error.
"""

from __future__ import annotations

import argparse
import sys

import redis

from verifier.redis.format import NETWORK_ERRORS, Layout, StoreDataError, redact_url
from verifier.redis.sync import (
    DEFAULT_MAX_DROP,
    PROGRESS_MIN_ENTRIES,
    Guard,
    SyncError,
    sync_state,
)

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", metavar="URL", required=True,
                        help="Redis primary, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--trust", metavar="FILE", help="trust registry file (issuer keys)")
    parser.add_argument("--revocations", metavar="FILE",
                        help="revocation and registry file")
    parser.add_argument("--replace", action="store_true",
                        help="make Redis hold exactly these files (default: add to it)")
    parser.add_argument("--bootstrap", action="store_true",
                        help="allow the first version of an empty store from partial data")
    parser.add_argument("--allow-drop", action="store_true",
                        help="confirm a deliberate drop of more than --max-drop of the "
                             "revoked hashes (verifiers accept it)")
    parser.add_argument("--max-drop", type=_share, default=DEFAULT_MAX_DROP, metavar="SHARE",
                        help=f"largest share of revoked hashes a sync may remove without "
                             f"--allow-drop (default {DEFAULT_MAX_DROP})")
    parser.add_argument("--namespace", default="qrverify",
                        help="key prefix / Cluster hash tag (default qrverify)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: for large inputs on a terminal)")


def run(args: argparse.Namespace) -> int:
    from keys.registry import TrustFileError, TrustRegistry
    from verifier.redis.store import make_client
    from verifier.revocations import RevocationFileError, load_revocations

    if not args.trust and not args.revocations:
        print("qrverify sync: nothing to sync: give --trust FILE and/or --revocations FILE",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        trust = TrustRegistry.from_file(args.trust) if args.trust else None
        revocations = load_revocations(args.revocations) if args.revocations else None
        Layout(args.namespace)
    except (TrustFileError, RevocationFileError, ValueError) as exc:
        print(f"qrverify sync: {exc}; nothing written", file=sys.stderr)
        return EXIT_USAGE
    safe = redact_url(args.redis)
    try:
        client = make_client(args.redis, socket_timeout=60.0)
    except ValueError as exc:
        print(f"qrverify sync: invalid Redis URL {safe}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    entries = 0 if revocations is None else revocations.revoked_count + (
        revocations.registry_count or 0)
    progress = args.progress if args.progress is not None else (
        entries >= PROGRESS_MIN_ENTRIES and sys.stderr.isatty())
    guard = Guard(bootstrap=args.bootstrap, allow_drop=args.allow_drop,
                  max_drop=args.max_drop)
    try:
        result = sync_state(client, trust=trust, revocations=revocations,
                            replace=args.replace, namespace=args.namespace, progress=progress,
                            guard=guard)
    except NETWORK_ERRORS as exc:
        print(f"qrverify sync: cannot reach Redis at {safe}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except redis.RedisError as exc:
        print(f"qrverify sync: Redis error at {safe}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except (SyncError, StoreDataError) as exc:
        print(f"qrverify sync: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        client.close()
    print(result.summary())
    return EXIT_OK
