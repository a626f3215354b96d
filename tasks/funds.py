"""Funds jobs: make good lost payment notifications, close unpaid orders, finish refunds,
close drives past their end and book closed zone_fund drives into their ledgers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services import funds


async def reconcile_payments(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron (every minute). Safe to run twice and on several workers at once: every change it
    makes is a conditional UPDATE that only one run wins."""
    pay, settings = ctx["pay"], ctx["settings"]
    closed = await funds.close_ended_campaigns()
    orders = await funds.reconcile_pending(pay, order_ttl=timedelta(seconds=settings.pay_order_ttl_s))
    refunds = await funds.reconcile_refunds(pay)
    booked = await funds.settle_zone_funds()
    return {"campaigns_closed": closed, "orders": orders, "refunds": refunds, "booked": booked}
