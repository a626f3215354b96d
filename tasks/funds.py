"""Funds jobs: make good lost payment notifications, close unpaid orders, finish refunds,
close drives past their end and book closed zone_fund drives into their ledgers."""

from __future__ import annotations

from typing import Any

from arq import cron

from services import campaigns, fund_entries, payments, refunds


async def reconcile_payments(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron (every minute, and at start-up). Safe to run twice and on several workers at once:
    every change it makes is a conditional UPDATE that only one run wins."""
    pay = ctx["pay"]
    closed = await campaigns.close_ended_campaigns()
    orders = await payments.reconcile_pending(pay)
    refunded = await refunds.reconcile_refunds(pay)
    booked = await fund_entries.settle_zone_funds()
    return {"campaigns_closed": closed, "orders": orders, "refunds": refunded, "booked": booked}


CRON = [cron(reconcile_payments, second=20, unique=True, run_at_startup=True)]
