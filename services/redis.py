"""Redis access (redis.asyncio) and the key names every process agrees on."""

from __future__ import annotations

import redis.asyncio as aioredis

PREFIX = "zonehub:"
QUEUE_NAME = "zonehub:queue"  # the arq queue the API, the sweeper and the workers share


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def key(*parts: object) -> str:
    return PREFIX + ":".join(str(p) for p in parts)
