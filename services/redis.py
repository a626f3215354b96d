"""Redis access (redis.asyncio) and the key names every process agrees on."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

PREFIX = "zonehub:"
QUEUE_NAME = "zonehub:queue"  # the arq queue the API, the sweeper and the workers share


def _resilience() -> dict[str, object]:
    # A restarted Redis leaves dead connections in the pool: retry on a fresh one.
    return {"retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            "retry_on_error": [ConnectionError, TimeoutError], "health_check_interval": 30}


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True, **_resilience())  # type: ignore[arg-type]


def connection_pool(url: str) -> aioredis.ConnectionPool:
    """A bytes pool (what arq's ArqRedis needs), with the same retries."""
    return aioredis.ConnectionPool.from_url(url, **_resilience())  # type: ignore[arg-type]


def key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)
