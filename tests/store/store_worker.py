"""A verifier worker process for the store tests: maps the machine snapshot through
RedisStore and answers one command per stdin line with one JSON line:

    status            -> store.status() (plus "pid")
    revoked <hex>     -> {"revoked": bool}
    anon              -> {"anon_kb": anonymous memory of this process, from smaps_rollup}

Run: python store_worker.py URL SNAPSHOT_PATH [MAX_AGE]
"""

from __future__ import annotations

import json
import os
import sys


def anon_kb() -> int:
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    return -1


def main() -> None:
    from verifier.redis.store import RedisStore
    from verifier.store import StoreUnavailable

    url, path = sys.argv[1], sys.argv[2]
    max_age = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    base = anon_kb()
    try:
        store = RedisStore.connect(
            url, snapshot_path=path, max_age=max_age, poll_interval=0.05, start_timeout=20
        )
    except StoreUnavailable as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return
    print(json.dumps({"started": True, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "status":
            out = {k: v for k, v in store.status().items()}
            out["pid"] = os.getpid()
        elif cmd == "revoked":
            key = bytes.fromhex(arg)
            out = {"revoked": store.is_revoked(key, key, key)}
        elif cmd == "anon":
            out = {"anon_kb": anon_kb() - base}
        else:
            out = {"error": f"unknown command {cmd}"}
        print(json.dumps(out), flush=True)
    store.close()


if __name__ == "__main__":
    main()
