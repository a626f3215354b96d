"""What a figure is: an async `run(ctx) -> list[Result]` under a name, registered in run.py.

A figure prepares its data through the API (`ctx.call`), builds its requests up front, and
measures them with `ctx.measure`, which uses the run's connections, duration and warm-up.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench import loadgen
from bench.loadgen import LoadStats, Requests
from bench.stack import Stack


@dataclass(frozen=True)
class Result:
    """One row of the table: a measured label, or a figure that failed before measuring."""

    label: str
    stats: LoadStats | None = None
    failure: str | None = None

    @property
    def errors(self) -> int:
        return 1 if self.stats is None else self.stats.errors


class SetupFailed(Exception):
    """A figure could not prepare its data (the API answered something unexpected)."""


@dataclass
class Context:
    """Everything a figure may use: the running stack, a session for set-up calls, the load."""

    stack: Stack
    session: aiohttp.ClientSession
    connections: int
    duration_s: float
    warmup_s: float

    @property
    def api(self) -> str:
        """Base URL of the API, ending in /api/v1."""
        return self.stack.api

    async def measure(self, label: str, requests: Requests, *,
                      connections: int | None = None) -> Result:
        """Closed-loop load with the run's settings (connections may be overridden)."""
        stats = await loadgen.measure(requests, connections=connections or self.connections,
                                      duration_s=self.duration_s, warmup_s=self.warmup_s)
        return Result(label=label, stats=stats)

    async def call(self, method: str, path: str, *, body: Any = None, token: str | None = None,
                   expect: int = 200) -> Any:
        """One set-up request to the API (path after /api/v1); the decoded JSON answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None if body is None else json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, f"{self.api}{path}", data=data,
                                        headers=headers) as resp:
            text = await resp.text()
            if resp.status != expect:
                raise SetupFailed(f"{method} {path}: HTTP {resp.status} (expected {expect}): "
                                  f"{text[:500]}")
            return json.loads(text) if text else None

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start an extra process (e.g. `zonehub worker`) with the stack's env; stopped at the
        end of the run."""
        return self.stack.processes.spawn(name, argv, env=self.stack.env)


@dataclass(frozen=True)
class Figure:
    """A named benchmark; `--only NAME` selects it."""

    name: str
    run: Callable[[Context], Awaitable[list[Result]]]
