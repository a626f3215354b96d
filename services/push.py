"""WeChat subscribe-message pushes: aiohttp straight to `message/subscribe/send` (wechatpy stays
for login and the access token), a token bucket in Redis shared by every worker, a bound on
sends in flight, retries with backoff on -1/45011, one token refresh on 40001/42001."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from models.notices import PushStatus
from services import metrics
from services.redis import key
from services.wechat import WeChat

log = logging.getLogger(__name__)

RETRY = {-1, 45011}
TOKEN_REJECTED = {40001, 42001}
REFUSED = 43101

# Take up to ARGV[4] tokens from a bucket of ARGV[1] refilled at ARGV[2] per ms; returns the count.
_BUCKET = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local got = math.floor(math.min(tokens, want))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - got), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
return got
"""


@dataclass(frozen=True)
class PushResult:
    status: PushStatus
    errcode: int | None = None


class Pusher:
    """One per worker process."""

    def __init__(self, *, wechat: WeChat, redis: aioredis.Redis, api_base: str, per_minute: int,
                 in_flight: int, retries: int, backoff_s: float = 0.2) -> None:
        self.wechat = wechat
        self.redis = redis
        self.url = f"{api_base}/cgi-bin/message/subscribe/send"
        self.per_minute = per_minute
        self.burst = max(1, per_minute // 60)  # the bucket holds one second's worth, no more
        self.retries = retries
        self.backoff_s = backoff_s
        self._slots = asyncio.Semaphore(in_flight)
        self._in_flight = in_flight
        self._reserved = 0
        self._session: aiohttp.ClientSession | None = None
        self._bucket = redis.register_script(_BUCKET)
        self._local_tokens = 0
        self._token_lock = asyncio.Lock()
        self._access: tuple[str, float] | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10),
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30))
        return self._session

    @property
    def chunk(self) -> int:
        """How many sends to claim at once: what can be in flight together."""
        return self._in_flight

    async def reserve(self, n: int) -> None:
        """Take n tokens of the shared bucket before claiming n rows, so a claimed row is sent
        at once and a crash loses at most one chunk's pushes."""
        for _ in range(n):
            await self._take()
        self._reserved += n

    async def _take(self) -> None:
        """Wait for one token of the shared bucket (fetched from Redis a few at a time)."""
        async with self._token_lock:
            while self._local_tokens <= 0:
                want = max(1, min(50, self.per_minute // 600))
                got = int(await self._bucket(keys=[key("push-bucket")], args=[
                    self.burst, self.per_minute / 60_000, int(time.time() * 1000), want]))
                if got:
                    self._local_tokens += got
                else:
                    await asyncio.sleep(max(0.01, 60 / self.per_minute))
            self._local_tokens -= 1

    async def _access_token(self, *, stale: str | None = None) -> str:
        if stale is not None:
            await asyncio.to_thread(self.wechat.client.refresh, stale=stale)
            self._access = None
        if self._access is not None and self._access[1] > time.monotonic():
            return self._access[0]
        token = await self.wechat.access_token()
        self._access = (token, time.monotonic() + 30)
        return token

    async def send(self, *, openid: str, template_id: str, data: dict[str, Any],
                   page: str | None = None) -> PushResult:
        if self._reserved > 0:
            self._reserved -= 1
        else:
            await self._take()
        payload = json.dumps({"touser": openid, "template_id": template_id, "data": data,
                              **({"page": page} if page else {})}, ensure_ascii=False).encode()
        refreshed = False
        errcode: int | None = None
        async with self._slots:
            attempt = 0
            while attempt <= self.retries:
                token = await self._access_token()
                try:
                    async with self._http().post(self.url, params={"access_token": token}, data=payload,
                                                 headers={"Content-Type": "application/json"}) as resp:
                        result = json.loads(await resp.read())
                    errcode = int(result.get("errcode", 0))
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    errcode = -1
                if errcode == 0:
                    return PushResult(PushStatus.SENT)
                metrics.wechat_error("subscribe_send", errcode)
                if errcode in TOKEN_REJECTED and not refreshed:
                    refreshed = True
                    await self._access_token(stale=token)
                    continue  # the refresh is not one of the retries
                if errcode == REFUSED:
                    return PushResult(PushStatus.REFUSED, errcode)
                if errcode not in RETRY:
                    return PushResult(PushStatus.FAILED, errcode)
                attempt += 1
                if attempt <= self.retries:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        return PushResult(PushStatus.FAILED, errcode)


# -- push batch slots ------------------------------------------------------------------------------

_SLOT = """
local slots, now, token, hold_ms, cap = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
if redis.call('ZCARD', slots) >= cap then return 0 end
redis.call('ZADD', slots, now + hold_ms, token)
redis.call('PEXPIRE', slots, hold_ms)
return 1
"""


def batch_slots(*, per_minute: int, batch_size: int, budget_s: float) -> int:
    """How many push batches may run at once, across all workers: as many as the shared rate
    lets each finish within `budget_s` (at least one)."""
    return max(1, int(per_minute / 60 * budget_s // batch_size))


class PushSlots:
    """A cap on push batch jobs running at once across all workers (a sorted set in Redis of
    the holders, each with its expiry: a killed worker's slot frees itself after `hold_s`).

    With the rate shared by every batch running, 100 batches of a city-wide notice under a low
    rate would each crawl and all pass the job timeout together; with the cap, a batch runs
    only when it can finish in its budget, and the others wait their turn in the queue."""

    def __init__(self, redis: aioredis.Redis, *, cap: int, hold_s: float) -> None:
        self.redis, self.cap, self.hold_ms = redis, cap, int(hold_s * 1000)
        self._take = redis.register_script(_SLOT)
        self._key = key("push-slots")

    async def acquire(self, token: str) -> bool:
        return bool(int(await self._take(keys=[self._key], args=[
            int(time.time() * 1000), token, self.hold_ms, self.cap])))

    async def release(self, token: str) -> None:
        await self.redis.zrem(self._key, token)
