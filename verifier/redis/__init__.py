"""Redis support: connecting to single servers, Redis Cluster and Sentinel
(`verifier.redis.connect`)."""
