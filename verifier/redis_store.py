"""Old import path of the Redis store, kept while callers move to verifier.redis."""

from verifier.redis.format import StoreDataError
from verifier.redis.store import RedisStore
from verifier.store import StoreUnavailable

__all__ = ["RedisStore", "StoreDataError", "StoreUnavailable"]
