"""Build the machine's snapshot file of one Redis version in a child process.

The builder (verifier/redis/store.py) runs a full load here, not in its own process: a
server's worker that happens to be the builder then keeps answering requests while the
chunks are fetched and parsed (Python code holding the GIL) and the tables are built.

    python -m verifier.redis.build        (one JSON object on stdin:
                                           {"url", "namespace", "version", "path"})

Exit status 0 when the file is written, 3 for data Redis holds that cannot be used,
4 for a Redis problem; the reason is one line on stderr. The URL travels on stdin, so a
password never shows in the process list.
"""

from __future__ import annotations

import json
import sys

EXIT_OK, EXIT_DATA, EXIT_REDIS = 0, 3, 4


def build(url: str, namespace: str, version: str, path: str) -> None:
    """Fetch version `version` in full and write it to `path` (atomically)."""
    from fastpath._hashset import HashSet
    from verifier.redis.connect import connect
    from verifier.redis.format import (
        Layout,
        StoreDataError,
        fetch_blobs,
        fetch_records,
        fetch_set,
        parse_trust,
        read_manifest,
        snapshot_extras,
    )
    from verifier.redis.snapshot import write_snapshot

    layout = Layout(namespace)
    client = connect(url, role="reader", connect_timeout=2.0, timeout=60.0)
    try:
        manifest = read_manifest(client, layout, version)
        trust_json = fetch_blobs(client, layout, [manifest.trust_blob])[0]
        parse_trust(trust_json)
        revoked = HashSet(fetch_set(client, layout, manifest.revoked))
        if len(revoked) != manifest.revoked.count:
            raise StoreDataError("a set's chunks hold duplicate hashes")
        registry = None
        if manifest.registry is not None:
            registry = HashSet(fetch_set(client, layout, manifest.registry))
            if len(registry) != manifest.registry.count:
                raise StoreDataError("a set's chunks hold duplicate hashes")
        write_snapshot(
            path,
            version=manifest.version,
            seq=manifest.seq,
            trust_json=trust_json,
            trust_id=manifest.trust_blob,
            revoked=revoked,
            registry=registry,
            records=None
            if manifest.records is None
            else fetch_records(client, layout, manifest.records),
            **snapshot_extras(client, layout, manifest),
        )
    finally:
        client.close()


def main() -> int:
    import redis

    from verifier.redis.connect import RedisFailure, describe
    from verifier.redis.format import StoreDataError

    try:
        job = json.loads(sys.stdin.read(65536))
        url, namespace, version, path = (
            str(job[k]) for k in ("url", "namespace", "version", "path")
        )
    except (ValueError, KeyError, TypeError):
        print("snapshot build: bad job description", file=sys.stderr)
        return EXIT_DATA
    try:
        build(url, namespace, version, path)
    except StoreDataError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_DATA
    except (redis.RedisError, RedisFailure, OSError) as exc:
        print(describe(exc), file=sys.stderr)
        return EXIT_REDIS
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
