"""Delivering notifications: POSTing them to the merchant, now or in the background with retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import aiohttp

__all__ = ["Courier"]

log = logging.getLogger(__name__)

#: the statuses that mean the merchant accepted a notification.
_NOTIFY_OK: Final = frozenset({200, 204})
_NOTIFY_TIMEOUT: Final = aiohttp.ClientTimeout(total=10)

Send = Callable[[], Awaitable[int]]


class Courier:
    """POSTs notifications over one HTTP session; keeps its background deliveries."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        """POST a notification: the HTTP status the merchant answered."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=_NOTIFY_TIMEOUT)
        async with self._session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    def schedule(self, send: Send, retry_delays: Sequence[float]) -> None:
        """Run ``send`` in the background until answered 200/204, retrying after each delay."""
        task = asyncio.get_running_loop().create_task(self._with_retries(send, retry_delays))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Wait until every background delivery has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def cancel(self) -> None:
        """Cancel the background deliveries."""
        for task in self._tasks:
            task.cancel()

    async def aclose(self) -> None:
        """Cancel the background deliveries and close the HTTP session."""
        self.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _with_retries(self, send: Send, retry_delays: Sequence[float]) -> None:
        """Send until answered 200/204, waiting each retry delay in between (then give up)."""
        outcome = ""
        for delay in (0.0, *retry_delays):
            await asyncio.sleep(delay)
            try:
                status = await send()
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome = repr(exc)
                continue
            if status in _NOTIFY_OK:
                return
            outcome = f"HTTP {status}"
        tries = 1 + len(retry_delays)
        log.warning("notification not accepted after %d tries: %s", tries, outcome)
