"""`qrverify sync`: bring Redis to the state of the trust, revocation and records files.

    qrverify sync --redis URL [--trust FILE] [--revocations FILE] [--records FILE] [--replace]
                  [--drl FILE] [--valuesets DIR] [--records-remove FILE]
                  [--namespace NAME] [--remove FILE] [--bootstrap] [--allow-drop]
                  [--max-drop SHARE]

`--drl` (the EU revocation list, kid-scoped: verifier.revocations.parse_drl) replaces the
list of each kid it names (with --replace: the whole list); `--valuesets DIR` (the
directory format of `verify --valuesets`) replaces the EU value sets verifiers following
Redis check codes against. Both are read and checked in full before anything is written.

`--records` (register records, JSON Lines or CSV, CONTRACT section 4) is validated in full
and spooled to temporary files before anything is written (verifier/redis/recspool.py:
bounded memory, whatever the file's size): a malformed row exits 2 naming its line.
Without --replace its records are added to those Redis holds (a record with the same id
replaces the old one); with --replace Redis holds exactly the file's records.
`--records-remove FILE` (JSON Lines `{"id": ...}` or CSV with an `id` column) takes those
ids out of the register (after --records; an id Redis does not hold is ignored).

How it stays safe is described in verifier/redis/sync.py. After the flip it waits (WAIT) for
`--wait-replicas` replicas (default all connected ones) at most `--wait-timeout` seconds
(docs/redis-fleet.md). Exit status: 0 success (or already up to date), 1 runtime failure
(Redis data unusable, a concurrent sync kept winning, the guard refused, fewer replicas
acknowledged than required), 2 usage or input error (nothing is written), or any Redis
error (unreachable, auth, cluster, server: one categorised line).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

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


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a share between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a share between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, OPTIONS)
    parser.add_argument(
        "--replace",
        action="store_true",
        help="make Redis hold exactly these files (default: add to it)",
    )
    parser.add_argument(
        "--records",
        metavar="FILE",
        help="register records, JSON Lines or CSV: added to (with --replace: replace) "
        "the records in Redis",
    )
    parser.add_argument(
        "--records-remove",
        metavar="FILE",
        help='register record ids to remove: JSON Lines {"id": ...} or CSV with an id column',
    )
    parser.add_argument(
        "--drl",
        metavar="FILE",
        help='EU revocation list (DRL) JSON {"drl": [{"kid", "hashType", "expires", '
        '"entries"}, ...]}: each kid given replaces that kid\'s list (with --replace: the '
        "whole list)",
    )
    parser.add_argument(
        "--valuesets",
        metavar="DIR",
        help="EU value sets (a directory of value-set JSON files, as for verify "
        "--valuesets): replace those verifiers following Redis check codes against",
    )
    parser.add_argument(
        "--remove",
        metavar="FILE",
        help="revocation file (JSON, JSON Lines, gzip) whose revoked hashes leave the "
        "revoked set and whose registry hashes leave the registry set",
    )
    parser.add_argument(
        "--bootstrap",
        action="store_true",
        help="allow the first version of an empty store from partial data",
    )
    parser.add_argument(
        "--allow-drop",
        action="store_true",
        help="confirm a deliberate drop of more than --max-drop of the revoked hashes",
    )
    parser.add_argument(
        "--max-drop",
        type=_share,
        default=None,
        metavar="SHARE",
        help="largest share of revoked hashes a sync may remove without --allow-drop (default 0.5)",
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
    if (
        not trust_path
        and not revocations_path
        and not args.remove
        and not args.records
        and not args.records_remove
        and not args.drl
        and not args.valuesets
    ):
        return fail(
            PROG,
            "nothing to sync: give --trust FILE, --revocations FILE, --records FILE, "
            "--records-remove FILE, --drl FILE, --valuesets DIR and/or --remove FILE",
        )
    if args.remove and args.replace and not revocations_path:
        return fail(PROG, "--remove with --replace needs --revocations FILE (the new list)")
    if args.records_remove and args.replace and not args.records:
        return fail(PROG, "--records-remove with --replace needs --records FILE (the new register)")

    import redis

    from verifier.redis.connect import (
        RedisFailure,
        connect,
        describe,
        redact_url,
        wait_for_replicas,
    )
    from verifier.redis.spool import spool_revocations
    from verifier.redis.sync import DEFAULT_MAX_DROP, PROGRESS_MIN_ENTRIES, Guard, sync_state

    records: Any = None
    records_removed: Any = None

    def close_spools() -> None:
        for spool in (records, records_removed):
            if spool is not None:
                spool.close()  # the temporary files

    try:
        trust = (
            load_trust(trust_path, strict=values.get("strict", False), prog=PROG)
            if trust_path
            else None
        )
        # spooled to temporary files: memory does not grow with the input's size
        revocations = (
            spool_revocations(revocations_path, remove=args.remove)
            if revocations_path or args.remove
            else None
        )
        # validated in full and spooled to temporary files (verifier/redis/recspool.py)
        if args.records:
            from verifier.redis.recspool import spool_records

            records = spool_records(args.records)
        if args.records_remove:
            from verifier.redis.recspool import spool_removals

            records_removed = spool_removals(args.records_remove)
        drl = None
        if args.drl:
            from verifier.revocations import load_drl

            drl = load_drl(args.drl)
        valuesets = None
        if args.valuesets:
            from verifier.valuesets import codes_json, from_codes_json, read_codes

            valuesets = codes_json(read_codes(args.valuesets))
            from_codes_json(valuesets, f"value-set directory {args.valuesets}")  # as verifiers will
    except (QrverifyError, ValueError) as exc:
        close_spools()
        return fail(PROG, f"{exc}; nothing written")
    safe = redact_url(redis_url)
    try:
        client = connect(
            redis_url, role="writer", connect_timeout=5.0, timeout=60.0 + args.wait_timeout
        )
    except RedisFailure as exc:
        close_spools()
        return fail(PROG, str(exc))
    entries = (
        0 if revocations is None else revocations.revoked_count + (revocations.registry_count or 0)
    ) + (0 if records is None else records.count)
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
            records=records,
            drl=drl,
            valuesets=valuesets,
            records_removed=records_removed,
            guard=Guard(
                bootstrap=args.bootstrap,
                allow_drop=args.allow_drop,
                max_drop=DEFAULT_MAX_DROP if args.max_drop is None else args.max_drop,
            ),
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
        if revocations is not None:
            revocations.close()  # the spool's temporary files
        close_spools()
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
