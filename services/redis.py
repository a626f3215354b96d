"""Redis access (redis.asyncio) and the key names every process agrees on."""

from __future__ import annotations

import redis as sync_redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError

PREFIX = "zonehub:"
QUEUE_NAME = "zonehub:queue"  # the arq queue the API, the sweeper and the workers share


SOCKET_TIMEOUT_S = 2.0  # a frozen Redis answers a prompt 503, not a hung request


def _resilience() -> dict[str, object]:
    # A restarted Redis leaves dead connections in the pool: retry those on a fresh one. A Redis
    # that does not answer is not retried: the request fails fast (503) instead of piling up.
    # (Retry retries TimeoutError by default: say which errors, or each attempt waits again.)
    return {"retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3, supported_errors=(ConnectionError,)),
            "retry_on_error": [ConnectionError], "health_check_interval": 30,
            "socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S}


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True, **_resilience())  # type: ignore[arg-type]


def connection_pool(url: str) -> aioredis.ConnectionPool:
    """A bytes pool (what arq's ArqRedis needs), with the same retries."""
    return aioredis.ConnectionPool.from_url(url, **_resilience())  # type: ignore[arg-type]


def create_sync_redis(url: str) -> sync_redis.Redis:
    """The blocking client wechatpy's token storage needs (used in threads), same timeouts."""
    return sync_redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S,
                                socket_connect_timeout=SOCKET_TIMEOUT_S)


def key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)
