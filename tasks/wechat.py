"""WeChat jobs: keep the shared access token fresh before anyone needs it."""

from __future__ import annotations

from typing import Any

from arq import cron

from services.wechat import WeChat


async def refresh_wechat_token(ctx: dict[str, Any]) -> bool:
    """Cron (every 5 minutes): refresh the shared access token in its last ten minutes
    (idempotent: the refresh runs under the Redis lock and reuses a token another process
    stored)."""
    wechat: WeChat = ctx["wechat"]
    return await wechat.refresh_access_token_if_expiring(min_ttl_s=600)


CRON = [cron(refresh_wechat_token, minute=set(range(0, 60, 5)), unique=True)]
