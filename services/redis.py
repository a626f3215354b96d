"""Redis access (redis.asyncio) and the key names every process agrees on.

Every client the processes make (the API's, the arq pool's, the worker's, the CLI's and the
blocking one of wechatpy) comes from here: one Redis at `ZONEHUB_REDIS_URL`, or, with
`ZONEHUB_REDIS_SENTINELS` and `ZONEHUB_REDIS_SENTINEL_MASTER`, the master the Sentinels name
(asked again on every new connection, so a failover is followed).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import redis as sync_redis
import redis.asyncio as aioredis
import redis.sentinel as sync_sentinel
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError

if TYPE_CHECKING:
    from services.settings import Settings

PREFIX = "zonehub:"
QUEUE_NAME = "zonehub:queue"  # the arq queue the API, the sweeper and the workers share


SOCKET_TIMEOUT_S = 2.0  # a frozen Redis answers a prompt 503, not a hung request

log = logging.getLogger(__name__)


def _resilience() -> dict[str, object]:
    # A restarted Redis leaves dead connections in the pool: retry those on a fresh one. A Redis
    # that does not answer is not retried: the request fails fast (503) instead of piling up.
    # (Retry retries TimeoutError by default: say which errors, or each attempt waits again.)
    return {"retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3, supported_errors=(ConnectionError,)),
            "retry_on_error": [ConnectionError], "health_check_interval": 30,
            "socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}


def master_kwargs(settings: Settings) -> dict[str, Any]:
    """What the URL says of the master behind the Sentinels: credentials, database, TLS (its
    host and port are not used)."""
    assert settings.redis_url
    parsed = parse_url(settings.redis_url)
    kwargs: dict[str, Any] = {k: v for k, v in parsed.items() if k in ("username", "password", "db")}
    if settings.redis_url.startswith("rediss://"):
        kwargs["ssl"] = True
    return kwargs


def _sentinel(settings: Settings) -> Sentinel:
    # The Sentinels themselves are asked without the password (sentinel_kwargs: timeouts only).
    return Sentinel(list(settings.redis_sentinel_hosts),
                    sentinel_kwargs={"socket_timeout": SOCKET_TIMEOUT_S,
                                     "socket_connect_timeout": SOCKET_TIMEOUT_S},
                    **master_kwargs(settings))


def _url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RuntimeError("ZONEHUB_REDIS_URL is required")
    return settings.redis_url


def create_redis(settings: Settings) -> aioredis.Redis:
    """The app's text client (decoded responses)."""
    if settings.redis_sentinel_master:
        return _sentinel(settings).master_for(settings.redis_sentinel_master, redis_class=aioredis.Redis,
                                              decode_responses=True, **_resilience())
    return aioredis.Redis.from_url(_url(settings), decode_responses=True,
                                   **_resilience())  # type: ignore[arg-type]


def connection_pool(settings: Settings) -> aioredis.ConnectionPool:
    """A bytes pool (what arq's ArqRedis needs), with the same retries."""
    if settings.redis_sentinel_master:
        manager = _sentinel(settings)
        return SentinelConnectionPool(settings.redis_sentinel_master, manager,
                                      **{**manager.connection_kwargs, **_resilience()})
    return aioredis.ConnectionPool.from_url(_url(settings), **_resilience())  # type: ignore[arg-type]


def create_sync_redis(settings: Settings) -> sync_redis.Redis:
    """The blocking client wechatpy's token storage needs (used in threads), same timeouts."""
    timeouts = {"socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}
    if settings.redis_sentinel_master:
        manager = sync_sentinel.Sentinel(list(settings.redis_sentinel_hosts), sentinel_kwargs=timeouts,
                                         **master_kwargs(settings))
        return manager.master_for(settings.redis_sentinel_master, **timeouts)
    return sync_redis.Redis.from_url(_url(settings), **timeouts)  # type: ignore[arg-type]


def key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)


# -- telling every process after a commit ------------------------------------------------------------

_process_clients: list[aioredis.Redis] = []


def register_process_client(client: aioredis.Redis) -> None:
    """This process's Redis (the app's, the worker's arq pool) for `tell` (server/app.py,
    tasks/worker.py)."""
    _process_clients.append(client)


def unregister_process_client(client: aioredis.Redis) -> None:
    if client in _process_clients:
        _process_clients.remove(client)


async def tell(what: str, action: Callable[[aioredis.Redis], Awaitable[Any]]) -> None:
    """After a commit, move a key every process reads (a session generation, a cache version):
    on this process's client, or, without one (the CLI), on one made from the settings for the
    call. A Redis that cannot be told is logged, never raised: the change has committed, and
    what reads the key expires on its own."""
    try:
        if _process_clients:
            await action(_process_clients[-1])
            return
        from services.settings import get_settings

        settings = get_settings()
        if settings.redis_url:
            client = create_redis(settings)
            try:
                await action(client)
            finally:
                await client.aclose()
    except Exception:
        log.warning("could not tell the other processes: %s", what, exc_info=True)
