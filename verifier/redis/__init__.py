"""The Redis-backed store (docs/redis.md, docs/redis-fleet.md).

- `connect`: a URL becomes a client for one server, Redis Cluster or Sentinel; any Redis
  failure becomes one categorised line;
- `format`: the key layout, the manifest, readers of what a sync wrote, StoreDataError;
- `snapshot`: the per-machine snapshot file every process maps read-only;
- `store`: RedisStore, which follows Redis through that file;
- `sync`: the planner and writer behind `qrverify sync`.
"""
