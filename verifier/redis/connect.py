"""One way to reach Redis: a URL becomes a redis-py client, and any Redis failure becomes
one categorised line.

    client = connect("redis+sentinel://s1:26379,s2:26379/qrverify", role="writer")

URLs (see docs/redis-fleet.md):

    redis://[user:pass@]host:port[/db]      one server (TLS: rediss://)
    unix://[user:pass@]/path/to/socket[?db=N]
    redis://host:port?cluster=1             Redis Cluster, this node as the seed
    redis+sentinel://[user:pass@]h1:p1[,h2:p2...]/service[/db]   (TLS to the servers:
                                            rediss+sentinel://)

Cluster mode is detected on the first command (`INFO cluster` on the seed node) unless
the URL says `?cluster=1` (always a cluster) or `?cluster=0` (never). In cluster mode a
`/N` database other than 0 is a configuration error (a cluster has only database 0).
Every qrverify key carries the `{qrverify}` hash tag, so the whole data set is one slot:
Lua scripts and multi-key commands stay valid, and redis-py follows MOVED / ASK replies
and reshards by itself.

Roles: the `writer` (sync) talks to primaries only: the cluster's slot owner, or the
master Sentinel names. The `reader` (verifiers) reads from replicas when there are some:
a replica of the slot owner (READONLY connections, round robin over the replicas), or
a replica Sentinel knows (the master when it knows none).

Sentinel authentication: `user:pass@` in the URL is for the Redis servers; the sentinels
themselves get `?sentinel_password=...` (and `sentinel_username=`) when they need one.

`connect()` does no I/O: a bad URL raises RedisFailure (configuration) at once, anything
about the servers surfaces on the first command. Errors from redis-py are turned into one
line by `describe()` / `RedisFailure.from_exception()`; commands print that line and exit 2.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
import redis.exceptions as rex
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.sentinel import MasterNotFoundError, Sentinel, SlaveNotFoundError

from verifier.errors import QrverifyError

__all__ = [
    "NETWORK_ERRORS",
    "Acks",
    "RedisFailure",
    "Role",
    "Target",
    "connect",
    "describe",
    "is_cluster",
    "parse_url",
    "redact_url",
    "wait_for_replicas",
]

Role = Literal["reader", "writer"]
Category = Literal["network", "auth", "server", "configuration"]

# What a follower should treat as "Redis is away for now" (retry with backoff): redis-py's
# network errors plus the cluster states that a failover or a reshard passes through.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    OSError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.SlotNotCoveredError,
    rex.MaxConnectionsError,
)

_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")
_OWN_OPTIONS = ("cluster", "sentinel_password", "sentinel_username")
_SECRET_OPTIONS = ("password", "sentinel_password")
_MAX_LINE = 300
_SERVICE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


class RedisFailure(QrverifyError, RuntimeError):
    """A Redis problem in one operator-readable line: `category: detail`.

    category is one of network (unreachable, timed out, no master found), auth (wrong or
    missing password, missing ACL permission), server (the server refused or failed a
    command) and configuration (a bad URL, a cluster URL with a database, a writer pointed
    at a replica, ...). The message never holds a password.
    """

    def __init__(self, category: Category, detail: str) -> None:
        self.category: Category = category
        self.detail = _one_line(detail)
        super().__init__(f"{category}: {self.detail}")

    @classmethod
    def from_exception(cls, exc: BaseException, where: str | None = None) -> RedisFailure:
        """The failure for a redis-py (or socket) exception; `where` is a redacted URL."""
        if isinstance(exc, RedisFailure):
            return exc
        category, detail = _classify(exc)
        if where:
            detail = f"{detail} (Redis at {where})"
        return cls(category, detail)


def describe(exc: BaseException, where: str | None = None) -> str:
    """`category: what went wrong` for any exception raised while talking to Redis."""
    return str(RedisFailure.from_exception(exc, where))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LINE else text[: _MAX_LINE - 3] + "..."


def _message(exc: BaseException) -> str:
    text = _one_line(str(exc)) or type(exc).__name__
    return text


def _classify(exc: BaseException) -> tuple[Category, str]:
    msg = _message(exc)
    upper = msg.upper()
    if isinstance(
        exc,
        (
            rex.AuthenticationError,
            rex.AuthorizationError,
            rex.AuthenticationWrongNumberOfArgsError,
            rex.NoPermissionError,
        ),
    ) or upper.startswith(("NOAUTH", "WRONGPASS", "NOPERM", "INVALID USERNAME")):
        return "auth", f"Redis refused the credentials or permissions: {msg}"
    if isinstance(exc, rex.MovedError | rex.AskError):
        # A cluster client follows these, except inside a transaction while the slot is
        # being resharded; a plain client (?cluster=0) at a cluster node always sees them.
        return "server", (
            "another Redis Cluster node serves the qrverify slot (a reshard in progress: "
            f"retry; or ?cluster=0 given for a cluster node): {msg}"
        )
    if isinstance(exc, rex.ReadOnlyError) or upper.startswith("READONLY"):
        return "configuration", (
            "the server is a read-only replica; point the writer at "
            "the primary, or use a redis+sentinel:// URL"
        )
    if "SELECT IS NOT ALLOWED IN CLUSTER MODE" in upper or (
        isinstance(exc, rex.RedisClusterException)
        and "db" in msg.lower()
        and "cluster mode" in msg.lower()
    ):
        return "configuration", "a Redis Cluster has only database 0: drop /N from the URL"
    if "CLUSTER SUPPORT DISABLED" in upper or "CLUSTER MODE IS NOT ENABLED" in upper:
        return "configuration", "?cluster=1 given but the server is not a Redis Cluster node"
    if isinstance(exc, rex.ClusterCrossSlotError):
        return "configuration", f"keys of one operation span several cluster slots: {msg}"
    if isinstance(exc, rex.ClusterDownError | rex.SlotNotCoveredError | rex.TryAgainError):
        return "server", f"the Redis Cluster cannot serve the qrverify slot now: {msg}"
    if isinstance(exc, rex.BusyLoadingError):
        return "server", "Redis is loading its data set; retry in a moment"
    if isinstance(exc, MasterNotFoundError | SlaveNotFoundError):
        return "network", f"Sentinel names no reachable server: {msg}"
    if isinstance(exc, rex.TimeoutError):
        return "network", f"Redis did not answer in time: {msg}"
    if isinstance(exc, rex.ConnectionError | OSError):
        return "network", f"cannot reach Redis: {msg}"
    if isinstance(exc, rex.RedisClusterException):
        if "cannot be connected" in msg.lower() or "reachable" in msg.lower():
            return "network", f"cannot reach any Redis Cluster node: {msg}"
        return "configuration", f"Redis Cluster: {msg}"
    if isinstance(exc, rex.ResponseError):
        return "server", f"Redis refused a command: {msg}"
    if isinstance(exc, ValueError):
        return "configuration", msg
    if isinstance(exc, rex.RedisError):
        return "server", msg
    return "server", f"{type(exc).__name__}: {msg}"


# ---- URLs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A parsed Redis URL."""

    kind: Literal["single", "cluster", "auto", "sentinel"]
    safe: str  # the URL without secrets, for messages
    url: str = ""  # redis-py URL (single / cluster / auto)
    db: int = 0
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    options: tuple[tuple[str, str], ...] = ()  # sentinel: extra redis-py options


def redact_url(url: str) -> str:
    """The URL without its password(s), for messages and status pages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid Redis URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if sep else f"{user}@{hosts}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k in _SECRET_OPTIONS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _fail(safe: str, why: str) -> RedisFailure:
    return RedisFailure("configuration", f"invalid Redis URL {safe}: {why}")


def parse_url(url: str) -> Target:
    """Check a Redis URL and say what it names; RedisFailure (configuration) if bad."""
    safe = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _fail(safe, str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise _fail(safe, f"the scheme must be one of {', '.join(s + '://' for s in _SCHEMES)}")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise _fail(safe, str(exc)) from None
    own = {k: v for k, v in query if k in _OWN_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _OWN_OPTIONS]
    cluster = own.get("cluster", "auto").lower()
    if cluster not in ("0", "1", "auto", "yes", "no", "true", "false"):
        raise _fail(safe, "cluster= must be 0, 1 or auto")
    cluster = {"yes": "1", "true": "1", "no": "0", "false": "0"}.get(cluster, cluster)
    if scheme.endswith("+sentinel"):
        if "cluster" in own:
            raise _fail(safe, "cluster= does not apply to a Sentinel URL")
        return _parse_sentinel(parts, scheme, safe, own, rest)
    if "sentinel_password" in own or "sentinel_username" in own:
        raise _fail(safe, "sentinel_password= only applies to redis+sentinel:// URLs")
    db = _db_of(parts.path if scheme != "unix" else "", rest, safe)
    if scheme != "unix" and not parts.hostname:
        raise _fail(safe, "no host")
    try:
        _ = parts.port
    except ValueError:
        raise _fail(safe, "the port is not a number") from None
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    if scheme == "unix":
        if cluster == "1":
            raise _fail(safe, "a Redis Cluster is reached over TCP, not a unix socket")
        kind: Literal["single", "cluster", "auto"] = "single"
    else:
        kind = {"1": "cluster", "0": "single"}.get(cluster, "auto")  # type: ignore[assignment]
    if kind == "cluster" and db != 0:
        raise RedisFailure(
            "configuration", f"{safe}: a Redis Cluster has only database 0: drop /N from the URL"
        )
    return Target(kind, safe, url=plain, db=db)


def _db_of(path: str, query: list[tuple[str, str]], safe: str) -> int:
    text = path.strip("/")
    for key, value in query:
        if key == "db":
            text = value
    if not text:
        return 0
    if not text.isdigit() or len(text) > 4:
        raise _fail(safe, "the database must be a number (redis://host:port/0)")
    return int(text)


def _parse_sentinel(
    parts: Any, scheme: str, safe: str, own: dict[str, str], rest: list[tuple[str, str]]
) -> Target:
    netloc: str = parts.netloc
    userinfo, _, hosts = netloc.rpartition("@")
    sentinels: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep:
            host, port = item.strip(), "26379"
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise _fail(safe, f"sentinel address {item!r} is not host:port")
        sentinels.append((host, int(port)))
    if not sentinels or len(sentinels) > 32:
        raise _fail(safe, "give 1 to 32 sentinels as host:port[,host:port...]")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise _fail(safe, "the path must be /service_name[/db]")
    service = unquote(path[0])
    if not _SERVICE.fullmatch(service):
        raise _fail(safe, "the service name is 1-128 characters of A-Z a-z 0-9 _ . : -")
    db = _db_of(path[1] if len(path) == 2 else "", rest, safe)
    options: list[tuple[str, str]] = []
    if userinfo:
        user, sep, password = userinfo.partition(":")
        if user:
            options.append(("username", unquote(user)))
        if sep:
            options.append(("password", unquote(password)))
    for key in ("sentinel_username", "sentinel_password"):
        if key in own:
            options.append((key, own[key]))
    for key, value in rest:
        if key == "db":
            continue
        if key not in (
            "ssl_cert_reqs",
            "ssl_ca_certs",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_check_hostname",
        ):
            raise _fail(safe, f"unknown option {key}= for a Sentinel URL")
        options.append((key, value))
    if scheme.startswith("rediss"):
        options.append(("ssl", "1"))
    return Target(
        "sentinel", safe, db=db, sentinels=tuple(sentinels), service=service, options=tuple(options)
    )


# ---- clients -----------------------------------------------------------------------------


def connect(
    url: str, *, role: Role = "reader", connect_timeout: float = 2.0, timeout: float = 10.0
) -> redis.Redis:
    """A redis-py client for `url` (see the module docstring); no I/O happens here.

    The result is a `redis.Redis`, a `RedisCluster` or a client that picks one of the two
    on its first command; all serve the commands qrverify uses (GET, MGET, HGETALL,
    pipelines, Lua scripts and pub/sub on `{qrverify}` keys), so callers treat them alike.
    """
    if role not in ("reader", "writer"):
        raise ValueError("role must be 'reader' or 'writer'")
    target = parse_url(url)
    common: dict[str, Any] = {"socket_connect_timeout": connect_timeout, "socket_timeout": timeout}
    if target.kind == "sentinel":
        return _sentinel_client(target, role, common)
    if target.kind == "single":
        return _single(target, common)
    if target.kind == "cluster":
        return cast(redis.Redis, _Deferred(target, lambda: _cluster(target, role, common)))

    def resolve() -> Any:
        probe = _single(target, common)
        try:
            info = probe.info("cluster")
        finally:
            probe.close()
        if isinstance(info, dict) and int(info.get("cluster_enabled", 0) or 0) == 1:
            if target.db != 0:
                raise RedisFailure(
                    "configuration",
                    f"{target.safe} is a Redis Cluster node, "
                    "and a cluster has only database 0: drop /N from the URL",
                )
            return _cluster(target, role, common)
        return _single(target, common)

    return cast(redis.Redis, _Deferred(target, resolve))


def _single(target: Target, common: dict[str, Any]) -> redis.Redis:
    try:
        return redis.Redis.from_url(target.url, **common)
    except (ValueError, TypeError) as exc:
        raise _fail(target.safe, str(exc)) from None


def _cluster(target: Target, role: Role, common: dict[str, Any]) -> RedisCluster:
    url = _without_db(target.url)
    kwargs: dict[str, Any] = dict(common)
    if role == "reader":
        kwargs["load_balancing_strategy"] = LoadBalancingStrategy.ROUND_ROBIN_REPLICAS
    try:
        return RedisCluster.from_url(url, **kwargs)
    except rex.RedisClusterException as exc:
        raise RedisFailure.from_exception(exc) from None
    except (ValueError, TypeError) as exc:
        raise _fail(target.safe, str(exc)) from None


def _without_db(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "db"]
    return urlunsplit((parts.scheme, parts.netloc, "", urlencode(query), parts.fragment))


def _sentinel_client(target: Target, role: Role, common: dict[str, Any]) -> redis.Redis:
    options = dict(target.options)
    sentinel_kwargs: dict[str, Any] = dict(common)
    for key in ("sentinel_username", "sentinel_password"):
        if key in options:
            sentinel_kwargs[key.removeprefix("sentinel_")] = options.pop(key)
    kwargs: dict[str, Any] = dict(common, db=target.db)
    for key, value in options.items():
        kwargs[key] = value
    if kwargs.pop("ssl", None):
        kwargs["ssl"] = True
    for key in ("ssl_check_hostname",):
        if key in kwargs:
            kwargs[key] = str(kwargs[key]).lower() in ("1", "true", "yes")
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=sentinel_kwargs, **kwargs
    )
    if role == "writer":
        client = sentinel.master_for(target.service)  # type: ignore[no-untyped-call]
    else:
        client = sentinel.slave_for(target.service)  # type: ignore[no-untyped-call]
    return _OwnsSentinel.attach(client, sentinel)


class _OwnsSentinel:
    """Closing a Sentinel-managed client also closes its connections to the sentinels."""

    @staticmethod
    def attach(client: redis.Redis, sentinel: Sentinel) -> redis.Redis:
        close = client.close

        def close_all() -> None:
            try:
                close()
            finally:
                for node in sentinel.sentinels:
                    node.close()

        client.close = close_all  # type: ignore[method-assign]
        return client


class _Deferred:
    """Stands for a client that is built on the first command (cluster discovery needs a
    reachable node, and `connect()` must not do I/O). A failure to reach the seed is
    raised as redis.ConnectionError (one line), so callers' retry logic applies."""

    def __init__(self, target: Target, factory: Callable[[], Any]) -> None:
        self._target = target
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()
        self._closed = False

    def _resolve(self) -> Any:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                if self._closed:
                    raise rex.ConnectionError("the Redis client is closed")
                try:
                    self._client = self._factory()
                except (rex.RedisError, OSError) as exc:
                    if RedisFailure.from_exception(exc).category in ("network", "auth"):
                        raise  # callers retry or report these as they are
                    raise RedisFailure.from_exception(exc, self._target.safe) from None
                except RedisFailure as exc:
                    if exc.category == "network":
                        raise rex.ConnectionError(exc.detail) from None
                    raise
            return self._client

    @property
    def resolved(self) -> Any:
        """The underlying client, or None before the first command."""
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        return f"<qrverify Redis client {self._target.safe}>"


def _underlying(client: Any) -> Any:
    if isinstance(client, _Deferred):
        return client._resolve()
    return client


def is_cluster(client: Any) -> bool:
    """True if `client` talks to a Redis Cluster (resolves a deferred client)."""
    return isinstance(_underlying(client), RedisCluster)


# ---- durability --------------------------------------------------------------------------


@dataclass(frozen=True)
class Acks:
    """What WAIT reported after a write: `acknowledged` of `required` replicas
    (`connected` were attached to the primary when it was asked)."""

    acknowledged: int
    required: int
    connected: int

    @property
    def ok(self) -> bool:
        return self.acknowledged >= self.required

    def summary(self) -> str:
        if self.required == 0 and self.connected == 0:
            return "no replicas connected"
        return (
            f"{self.acknowledged} of {self.required} replica(s) acknowledged"
            f" ({self.connected} connected)"
        )


def wait_for_replicas(
    client: Any, count: int | None, timeout: float, *, namespace: str = "qrverify", marker: str = ""
) -> Acks:
    """Wait until `count` replicas (None: all replicas connected to the primary now) have
    everything this process wrote, at most `timeout` seconds.

    WAIT counts the writes of the connection it runs on, so this writes a small marker key
    (`{namespace}:wait`, expires after a minute) and runs WAIT on that same connection of
    the primary that owns the namespace's slot: replication is ordered, so a replica that
    has the marker has every earlier write of the sync too.
    """
    if count is not None and count < 0:
        raise ValueError("count must be >= 0")
    if not 0 < timeout <= 3600:
        raise ValueError("timeout must be in (0, 3600] seconds")
    key = "{" + namespace + "}:wait"
    node_client = _primary_for(client, key)
    info = node_client.info("replication")
    connected = int(info.get("connected_slaves", 0) or 0) if isinstance(info, dict) else 0
    required = connected if count is None else count
    pipe = node_client.pipeline(transaction=False)
    pipe.set(key, marker or "1", px=60_000)
    pipe.execute_command(  # type: ignore[no-untyped-call]
        "WAIT", required, max(1, int(timeout * 1000))
    )
    _, acknowledged = pipe.execute()
    return Acks(int(acknowledged), required, connected)


def _primary_for(client: Any, key: str) -> redis.Redis:
    real = _underlying(client)
    if isinstance(real, RedisCluster):
        node = real.get_node_from_key(key, replica=False)  # type: ignore[no-untyped-call]
        if not isinstance(node, ClusterNode):
            raise RedisFailure("server", "the Redis Cluster names no owner for the qrverify slot")
        return real.get_redis_connection(node)
    return cast(redis.Redis, real)
