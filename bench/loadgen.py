"""Closed-loop HTTP load generator: N connections, each sending its next request as soon as the
previous answer arrived, for a fixed duration after a short warm-up.

Runs in the harness process, never inside a server under test.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

#: How many distinct error kinds a run keeps (each with its count).
MAX_ERROR_KINDS = 10


@dataclass(frozen=True, slots=True)
class Request:
    """One prepared request; build these before the run so the loop does no work."""

    method: str
    url: URL
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    @classmethod
    def get(cls, url: str, headers: dict[str, str] | None = None) -> Request:
        return cls("GET", URL(url), headers or {})

    @classmethod
    def post_json(cls, url: str, body: bytes, headers: dict[str, str] | None = None) -> Request:
        return cls("POST", URL(url), {"Content-Type": "application/json", **(headers or {})}, body)


#: A fixed list cycled through, or a function of the request's sequence number.
Requests = Sequence[Request] | Callable[[int], Request]


@dataclass(frozen=True, slots=True)
class LoadStats:
    """What one measurement saw; errors count warm-up too, rates and latencies do not."""

    requests: int
    elapsed_s: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int]


@dataclass(slots=True)
class _Recorder:
    measure_from: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def error(self, kind: str) -> None:
        if kind in self.errors or len(self.errors) < MAX_ERROR_KINDS:
            self.errors[kind] += 1
        else:
            self.errors["(other)"] += 1


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted sequence; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def _picker(requests: Requests) -> Callable[[int], Request]:
    if callable(requests):
        return requests
    if not requests:
        raise ValueError("no requests to send")
    items = list(requests)
    return lambda n: items[n % len(items)]


async def _worker(session: aiohttp.ClientSession, pick: Callable[[int], Request], start: int,
                  stride: int, stop_at: float, rec: _Recorder) -> None:
    n = start
    clock = time.perf_counter
    while (began := clock()) < stop_at:
        req = pick(n)
        n += stride
        try:
            async with session.request(req.method, req.url, headers=req.headers,
                                       data=req.body) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            rec.error(f"{type(exc).__name__}: {exc}"[:200])
            continue
        if not 200 <= status < 300:
            rec.error(f"HTTP {status} {req.method} {req.url.path}")
        elif began >= rec.measure_from:
            rec.latencies.append(clock() - began)


async def measure(requests: Requests, *, connections: int, duration_s: float,
                  warmup_s: float) -> LoadStats:
    """Run `connections` closed loops for warmup_s + duration_s; measure the last duration_s.

    Worker i sends requests i, i+N, i+2N, ... so a list of tokens is spread over all
    connections. Only 2xx answers started after the warm-up count towards rate and latency.
    """
    pick = _picker(requests)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        now = time.perf_counter()
        rec = _Recorder(measure_from=now + warmup_s)
        stop_at = rec.measure_from + duration_s
        await asyncio.gather(*(_worker(session, pick, i, connections, stop_at, rec)
                               for i in range(connections)))
        elapsed = max(time.perf_counter() - rec.measure_from, 1e-9)
    return _stats(rec, elapsed)


def _stats(rec: _Recorder, elapsed_s: float) -> LoadStats:
    latencies = sorted(rec.latencies)
    return LoadStats(requests=len(latencies), elapsed_s=elapsed_s,
                     rate=len(latencies) / elapsed_s,
                     p50_ms=percentile(latencies, 50) * 1000,
                     p99_ms=percentile(latencies, 99) * 1000,
                     errors=sum(rec.errors.values()), error_kinds=dict(rec.errors))
