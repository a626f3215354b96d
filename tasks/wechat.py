"""WeChat jobs: keep the shared access token fresh before anyone needs it."""

from __future__ import annotations

from typing import Any

from services.wechat import WeChat


async def refresh_wechat_token(ctx: dict[str, Any]) -> bool:
    """Cron: refresh the shared access token in its last ten minutes (idempotent: the
    refresh itself runs under the Redis lock and reuses a token another process stored)."""
    wechat: WeChat = ctx["wechat"]
    return await wechat.refresh_access_token_if_expiring(min_ttl_s=600)
