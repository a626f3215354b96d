"""Typed application keys, in one place."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web
from arq.connections import ArqRedis

from services.auth import Auth, Principal
from services.passes import PassSigner
from services.pay import WeChatPay
from services.settings import Settings
from services.wechat import WeChat

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
ARQ = web.AppKey("arq", ArqRedis)
WECHAT = web.AppKey("wechat", WeChat)
AUTH = web.AppKey("auth", Auth)
VALIDATE_RESPONSES = web.AppKey("validate_responses", bool)
PASS_SIGNER = web.AppKey("pass_signer", PassSigner)
PAY = web.AppKey("pay", WeChatPay)

# per-request
REQUEST_ID = web.RequestKey("request_id", str)
CLIENT_ADDRESS = web.RequestKey("client_address", str)
PRINCIPAL = web.RequestKey("principal", Principal)
