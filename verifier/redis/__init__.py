"""The Redis-backed store (docs/redis.md).

- `format`: the key layout, the manifest, readers of what a sync wrote, StoreDataError;
- `snapshot`: the per-machine snapshot file every process maps read-only;
- `store`: RedisStore, which follows Redis through that file;
- `sync`: the planner and writer behind `qrverify sync`.
"""
