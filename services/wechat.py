"""The one adapter around wechatpy. wechatpy is blocking, so every call runs in a thread.

The access token lives in Redis for every process (wechatpy's RedisStorage) and is refreshed
through `cgi-bin/stable_token` under a Redis lock, so two processes never refresh at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import redis
import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from services import metrics
from services.errors import (
    Unavailable,
    UpstreamError,
    WeChatCodeInvalid,
)
from services.redis import create_sync_redis
from services.settings import Settings

log = logging.getLogger(__name__)

TOKEN_LOCK = "zonehub:wechat:token-lock"
CODE_ERRORS = {40029, 40163, 40226}  # invalid code, code already used, high-risk user


class _Client(WeChatClient):
    """wechatpy's client pointed at a configurable API base, refreshing via stable_token."""

    def __init__(self, appid: str, secret: str, *, api_base: str, sync_redis: redis.Redis,
                 timeout_s: float) -> None:
        super().__init__(appid, secret, session=RedisStorage(sync_redis, prefix="zonehub:wechat"),
                         timeout=timeout_s)
        self.api_base = api_base
        self.API_BASE_URL = f"{api_base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{api_base}/"
        self._redis = sync_redis
        self._seen = threading.local()

    @property
    def access_token(self) -> str:  # type: ignore[override]
        # Redis' TTL decides freshness for every process; wechatpy's per-process expires_at does not.
        token = self.session.get(self.access_token_key) or self.refresh(stale=None)["access_token"]
        self._seen.token = token  # what this thread's next request will carry
        return token

    def fetch_access_token(self) -> dict[str, Any]:
        """wechatpy calls this when WeChat rejected a token (40001/42001): the rejected one is
        the token this thread last handed out."""
        return self.refresh(stale=getattr(self._seen, "token", None))

    def refresh(self, *, stale: str | None) -> dict[str, Any]:
        """Under the Redis lock: reuse a token someone stored since `stale` was seen, else fetch
        one through stable_token (forced when `stale` was a token that must be replaced)."""
        with self._redis.lock(TOKEN_LOCK, timeout=15, blocking_timeout=15):
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return {"access_token": current}
            res = self._http.post(
                f"{self.api_base}/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": self.appid,
                      "secret": self.secret, "force_refresh": stale is not None},
                timeout=self.timeout,
            )
            res.raise_for_status()
            result = res.json()
            if result.get("errcode"):
                raise WeChatClientException(result["errcode"], result.get("errmsg"), client=self)
            expires_in = int(result.get("expires_in", 7200))
            # Keep a margin so no process uses a token in its last five minutes.
            self.session.set(self.access_token_key, result["access_token"],
                             max(60, expires_in - 300))
            return result


class WeChat:
    """Async façade: `await wechat.openid_for_code(code)` and friends."""

    def __init__(self, *, appid: str, secret: str, api_base: str, settings: Settings,
                 timeout_s: float = 5.0) -> None:
        self._sync_redis = create_sync_redis(settings)
        self.client = _Client(appid, secret, api_base=api_base, sync_redis=self._sync_redis,
                              timeout_s=timeout_s)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        api = getattr(fn, "__name__", "call")
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except WeChatClientException as exc:
            metrics.wechat_error(api, exc.errcode)
            raise
        except redis.RedisError as exc:  # our own Redis (the shared access token), not WeChat
            log.warning("redis failed during a wechat call: %s", type(exc).__name__)
            raise Unavailable() from None
        except (requests.RequestException, ValueError) as exc:
            metrics.wechat_error(api, -1)
            log.warning("wechat call failed: %s", type(exc).__name__)
            raise UpstreamError() from None

    async def openid_for_code(self, code: str) -> str:
        try:
            result = await self._call(self.client.wxa.code_to_session, code)
        except WeChatClientException as exc:
            if exc.errcode in CODE_ERRORS:
                raise WeChatCodeInvalid(errcode=exc.errcode) from None
            log.warning("jscode2session errcode %s", exc.errcode)
            raise UpstreamError(errcode=exc.errcode) from None
        openid = result.get("openid") if isinstance(result, dict) else None
        if not openid:
            raise UpstreamError()
        return str(openid)

    async def access_token(self) -> str:
        try:
            return await self._call(lambda: self.client.access_token)
        except WeChatClientException as exc:
            raise UpstreamError(errcode=exc.errcode) from None

    async def refresh_access_token_if_expiring(self, *, min_ttl_s: int = 600) -> bool:
        """For the worker's cron: refresh before the token's last minutes; True if refreshed."""
        session = self.client.session
        key = session.key_name(self.client.access_token_key)
        ttl = await asyncio.to_thread(self._sync_redis.ttl, key)
        if ttl is not None and ttl > min_ttl_s:
            return False
        current = await asyncio.to_thread(session.get, self.client.access_token_key)
        await asyncio.to_thread(self.client.refresh, stale=current)
        return True

    def close(self) -> None:
        self.client._http.close()
        self._sync_redis.close()
