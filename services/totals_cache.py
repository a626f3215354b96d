"""A drive's totals as last answered, kept in Redis so a busy drive's page is a Redis read.

`GET /campaigns/{id}/totals` is the special-dues day's most-read answer: thousands of members
watch one drive at once while its money moves. The answer (title, state, target, the total and
each zone's and unit's sums, ranked) is the same for everyone who may see the drive, so it is
rendered once and kept, with the drive's audience (its state and zones) beside it so that who
may see it is still checked on every read.

Freshness is by version, not by deleting keys. Every commit that moves a drive's money or
changes its state moves the drive's version on afterwards (`moved`: INCR). A reader takes the
version and the kept answer in one MGET; the answer counts only when it was made under the
version it reads now. A reader that misses takes the version *before* it queries the database
and keeps its answer under that version, so an answer made from a snapshot older than a commit
is kept under an older version than that commit's INCR and is never served after it. What a lost
INCR (Redis down at that moment, a process killed between its commit and the INCR) or a renamed
unit or zone leaves behind lasts at most `TTL_S`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from services.redis import key, tell

log = logging.getLogger(__name__)

TTL_S = 60


def _version_key(campaign_id: int) -> str:
    return key("totals", campaign_id, "version")


def _answer_key(campaign_id: int) -> str:
    return key("totals", campaign_id, "answer")


def keys(campaign_id: int) -> list[str]:
    """What `parse` reads, in its order (the route reads them with the caller's token check)."""
    return [_version_key(campaign_id), _answer_key(campaign_id)]


async def read(redis: aioredis.Redis, campaign_id: int
               ) -> tuple[str, tuple[str, list[int], str] | None]:
    return parse(await redis.mget(keys(campaign_id)))


def parse(values: list[Any]) -> tuple[str, tuple[str, list[int], str] | None]:
    """(the drive's version now, and the kept (state, zone_ids, answer) if made under it)."""
    version, kept = values
    version = str(version or 0)
    if not kept:
        return version, None
    made_under, state, zone_ids, answer = str(kept).split("\n", 3)
    if made_under != version:
        return version, None
    return version, (state, json.loads(zone_ids), answer)


async def keep(redis: aioredis.Redis, campaign_id: int, version: str, *, state: str,
               zone_ids: list[int], answer: str) -> None:
    """Keep an answer made under `version` (read before the query that made it)."""
    try:
        await redis.set(_answer_key(campaign_id),
                        f"{version}\n{state}\n{json.dumps(zone_ids)}\n{answer}", ex=TTL_S)
    except Exception:  # the answer was made; the next reader makes it again
        log.warning("could not keep drive %s's totals", campaign_id, exc_info=True)


async def moved(campaign_ids: Iterable[int]) -> None:
    """After the commit that moved these drives' money or state: their kept answers are old."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return

    async def incr(redis: aioredis.Redis) -> None:
        if len(ids) == 1:  # a payment
            await _shared_incr(redis, ids[0])
            return
        async with redis.pipeline(transaction=False) as pipe:
            for campaign_id in ids:
                pipe.incr(_version_key(campaign_id))
            await pipe.execute()

    await tell(f"drive totals {ids} moved", incr)


class _Incrs:
    """One event loop's INCRs of drive versions: the one running and the one waiting, per drive."""

    def __init__(self) -> None:
        self.running: dict[int, asyncio.Future[None]] = {}
        self.waiting: dict[int, asyncio.Future[None]] = {}


_incrs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Incrs] = weakref.WeakKeyDictionary()


async def _shared_incr(redis: aioredis.Redis, campaign_id: int) -> None:
    """INCR the drive's version, once for every commit that asks while an INCR is waiting.

    A busy drive is paid hundreds of times a second; one INCR each would cost every payment a
    Redis command. What a commit needs is an INCR that *starts after* it: so it joins the INCR
    waiting to start (it starts once the running one is done), or makes one. Under load a handful
    of INCRs a second serve every payment; alone, a payment waits for its own."""
    loop = asyncio.get_running_loop()
    state = _incrs.get(loop)
    if state is None:
        state = _incrs[loop] = _Incrs()
    waiting = state.waiting.get(campaign_id)
    if waiting is None:
        waiting = state.waiting[campaign_id] = loop.create_future()
        loop.create_task(_run_incr(redis, campaign_id, state, waiting))
    await asyncio.shield(waiting)


async def _run_incr(redis: aioredis.Redis, campaign_id: int, state: _Incrs,
                    mine: asyncio.Future[None]) -> None:
    before = state.running.get(campaign_id)
    if before is not None:
        await asyncio.wait([before])  # its outcome is its own waiters' business
    del state.waiting[campaign_id]  # from here, a commit needs the next INCR, not this one
    state.running[campaign_id] = mine
    try:
        await redis.incr(_version_key(campaign_id))
        mine.set_result(None)
    except asyncio.CancelledError:
        mine.cancel()
        raise
    except Exception as exc:
        mine.set_exception(exc)
        mine.exception()  # retrieved: the waiters raise it (and log it, through `tell`)
    finally:
        if state.running.get(campaign_id) is mine:
            del state.running[campaign_id]
