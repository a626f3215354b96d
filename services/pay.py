"""WeChat Pay API v3 through `wechatpayv3`'s async client, in public-key verification mode.

Every answer from WeChat Pay is signature-checked by the client; every notification is checked
here before anything in it is believed: a fresh timestamp, the platform signature, then the
AES-256-GCM decryption with the APIv3 key.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from wechatpayv3.async_ import AsyncWeChatPay
from wechatpayv3.async_.type import WeChatPayType  # not wechatpayv3.WeChatPayType: another enum

from services import clock, metrics
from services.errors import (
    PayNotConfigured,
    PayRefused,
    PayUnavailable,
)
from services.settings import Settings

log = logging.getLogger("zonehub.pay")

#: WeChat Pay re-sends a notification for up to a day, but a signature older than this is a replay.
NOTIFY_MAX_SKEW_S = 300
#: The headers a notification's signature covers, and the only ones the verification reads.
#: Connections to WeChat Pay a process keeps (and its ceiling of requests in flight to it).
PAY_CONNECTIONS = 100
NOTIFY_HEADERS = ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce",
                  "Wechatpay-Serial", "Wechatpay-Signature-Type")


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified, decrypted notification."""

    id: str
    event_type: str
    resource: dict[str, Any]


def _pem(value: str) -> str:
    """PEM text as given, or read from the path given."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text
    return Path(text).expanduser().read_text(encoding="ascii")


def pay_configured(settings: Settings) -> bool:
    return bool(settings.wechat_pay_mchid and settings.wechat_pay_private_key
                and settings.wechat_pay_apiv3_key and settings.wechat_pay_public_key
                and settings.wechat_pay_public_key_id)


class WeChatPay:
    """One process-wide client; `start()` opens its HTTP connection pool, `close()` ends it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.appid = settings.wechat_appid
        self.mchid = settings.wechat_pay_mchid or ""
        self._client: AsyncWeChatPay | None = None
        if pay_configured(settings):
            assert settings.wechat_pay_private_key and settings.wechat_pay_apiv3_key
            assert settings.wechat_pay_public_key
            self._client = AsyncWeChatPay(
                wechatpay_type=WeChatPayType.MINIPROG, mchid=self.mchid,
                private_key=_pem(settings.wechat_pay_private_key.get_secret_value()),
                cert_serial_no=settings.wechat_pay_serial_no, appid=self.appid,
                apiv3_key=settings.wechat_pay_apiv3_key.get_secret_value(),
                notify_url=settings.wechat_pay_notify_url, timeout=(3, 10),
                public_key=_pem(settings.wechat_pay_public_key),
                public_key_id=settings.wechat_pay_public_key_id)
            self._client._core._gate_way = settings.wechat_pay_api_base  # the client has no setting for it

    @property
    def configured(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        """Open the one HTTP connection pool every call shares (the library's own client, given
        room to keep a connection per request in flight: its default keeps 20, so 64 orders at
        once reconnected to WeChat Pay on most calls)."""
        if self._client is not None:
            await self._client.__aenter__()
            core = self._client._core
            default = core._client
            core._client = httpx.AsyncClient(
                timeout=default.timeout,
                limits=httpx.Limits(max_connections=PAY_CONNECTIONS,
                                    max_keepalive_connections=PAY_CONNECTIONS, keepalive_expiry=30))
            await default.aclose()

    def connections_kept(self) -> int:
        """Connections to WeChat Pay open in the pool (idle or busy)."""
        pool = getattr(getattr(self.client._core._client, "_transport", None), "_pool", None)
        return len(pool.connections) if pool is not None else 0

    async def close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)

    @property
    def client(self) -> AsyncWeChatPay:
        if self._client is None:
            raise PayNotConfigured()
        return self._client

    async def _call(self, what: str, coro: Any) -> tuple[int, dict[str, Any]]:
        """(status, JSON body); a 5xx, a transport error or a bad signature is PayUnavailable."""
        try:
            status, text = await coro
        except Exception as exc:  # noqa: BLE001 (httpx errors, or the client's bad-signature Exception)
            metrics.wechat_pay_error(what, None)
            log.warning("wechat pay %s failed: %r", what, exc)
            raise PayUnavailable() from None
        try:
            body = json.loads(text) if text else {}
        except (TypeError, ValueError):
            body = {}
        if status >= 400:
            metrics.wechat_pay_error(what, body.get("code") or status)
        if status >= 500:
            log.warning("wechat pay %s answered %s %s", what, status, body)
            raise PayUnavailable(pay_code=body.get("code"))
        return status, body

    # -- orders -------------------------------------------------------------------------------

    async def prepay(self, *, out_trade_no: str, amount_fen: int, openid: str, description: str,
                     expires_at: datetime, notify_url: str | None = None) -> str:
        """JSAPI/mini-program prepay; the prepay_id for wx.requestPayment."""
        status, body = await self._call("prepay", self.client.pay(
            description=description[:127], out_trade_no=out_trade_no,
            amount={"total": amount_fen, "currency": "CNY"}, payer={"openid": openid},
            time_expire=expires_at.astimezone(clock.SHANGHAI).isoformat(timespec="seconds"),
            notify_url=notify_url or self.settings.wechat_pay_notify_url))
        if status != 200 or "prepay_id" not in body:
            raise PayRefused(body.get("message") or None, pay_code=body.get("code"))
        return str(body["prepay_id"])

    def pay_params(self, prepay_id: str) -> dict[str, str]:
        """The signed arguments of wx.requestPayment (RSA over appId, timeStamp, nonceStr, package)."""
        timestamp, nonce, package = str(int(time.time())), secrets.token_hex(16), f"prepay_id={prepay_id}"
        sign = self.client.sign([self.appid, timestamp, nonce, package])
        return {"timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": sign}

    async def query(self, out_trade_no: str) -> dict[str, Any] | None:
        """The transaction as WeChat Pay sees it, or None when it never heard of the order."""
        status, body = await self._call("query", self.client.query(out_trade_no=out_trade_no))
        if status == 404:
            return None
        if status != 200:
            raise PayRefused(body.get("message") or None, pay_code=body.get("code"))
        return body

    async def close_order(self, out_trade_no: str) -> str:
        """'closed', 'paid' (too late: it was paid) or 'unknown' (WeChat Pay has no such order)."""
        status, body = await self._call("close", self.client.close(out_trade_no=out_trade_no))
        if status in (200, 204):
            return "closed"
        if body.get("code") == "ORDERPAID":
            return "paid"
        if status == 404:
            return "unknown"
        raise PayRefused(body.get("message") or None, pay_code=body.get("code"))

    # -- refunds ------------------------------------------------------------------------------

    async def refund(self, *, out_refund_no: str, out_trade_no: str, refund_fen: int,
                     total_fen: int, reason: str, notify_url: str | None = None) -> dict[str, Any]:
        """Ask for a refund; the refund object (status usually PROCESSING). 4xx → PayRefused."""
        status, body = await self._call("refund", self.client.refund(
            out_refund_no=out_refund_no, out_trade_no=out_trade_no, reason=reason or None,
            amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            notify_url=notify_url or refund_notify_url(self.settings)))
        if status != 200:
            raise PayRefused(body.get("message") or None, pay_code=body.get("code"))
        return body

    async def query_refund(self, out_refund_no: str) -> dict[str, Any] | None:
        status, body = await self._call("refund query", self.client.query_refund(out_refund_no))
        if status == 404:
            return None
        if status != 200:
            raise PayRefused(body.get("message") or None, pay_code=body.get("code"))
        return body

    # -- notifications ------------------------------------------------------------------------

    def verify_notification(self, headers: Mapping[str, str], body: bytes) -> Notification | None:
        """The notification if its timestamp is fresh, its signature is the platform key's and
        it decrypts with the APIv3 key; None otherwise (nothing in it may be believed).

        The library is handed exactly the headers checked here: it would otherwise prefer a
        Django-style `HTTP_WECHATPAY_*` set when one is present, so a stale signature could be
        replayed under those names beside a fresh `Wechatpay-Timestamp`."""
        if any(name.upper().startswith("HTTP_WECHATPAY") for name in headers):
            return None
        signed = {name: headers.get(name, "") for name in NOTIFY_HEADERS}
        try:
            stamp = int(signed["Wechatpay-Timestamp"])
        except ValueError:
            return None
        if abs(time.time() - stamp) > NOTIFY_MAX_SKEW_S:
            return None
        try:
            data = self.client.callback(signed, body)
        except PayNotConfigured:
            raise
        except Exception:  # noqa: BLE001 (unsupported signature type, malformed JSON, bad key)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("resource"), dict):
            return None
        return Notification(id=str(data.get("id", "")), event_type=str(data.get("event_type", "")),
                            resource=data["resource"])


def refund_notify_url(settings: Settings) -> str:
    return settings.wechat_pay_notify_url.rsplit("/", 1)[0] + "/refund-notify"
