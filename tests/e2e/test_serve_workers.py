"""`zonehub serve --workers N`: N API processes listening on the one port (SO_REUSEPORT), every
one stopped with the parent, and none left serving alone when one of them dies."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

from bench.stack import Processes, child_env, free_port, wait_http, zonehub_command

pytestmark = pytest.mark.timeout(120)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def listeners(port: int) -> set[int]:
    """Socket inodes listening on 127.0.0.1:port."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == f"0100007F:{port:04X}" and cols[3] == "0A":
            inodes.add(int(cols[9]))
    return inodes


def sockets_of(pid: int) -> set[int]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


async def _start(procs: Processes, name: str, env: dict[str, str]) -> tuple[int, list[int], str]:
    port = free_port()
    parent = procs.spawn(name, [*zonehub_command(), "serve", "--port", str(port), "--workers", "2"],
                         env=env)
    url = f"http://127.0.0.1:{port}/api/v1/health"
    await wait_http(url, procs=procs, name=name)
    deadline = time.monotonic() + 30
    while len(listeners(port)) < 2 and time.monotonic() < deadline:  # the second may still start
        await asyncio.sleep(0.1)
    return parent.pid, children_of(parent.pid), url


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
async def test_two_processes_serve_one_port_and_stop_together(database_url: str, redis_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="zonehub-serve-") as tmp, Processes(Path(tmp) / "logs") as procs:
        env = child_env(database_url=database_url, redis_url=redis_url,
                        secret_key=secrets.token_urlsafe(48), wechat_api_base="http://127.0.0.1:9",
                        data_dir=str(Path(tmp) / "data"))
        parent, children, url = await _start(procs, "api", env)
        port = int(url.split(":")[2].split("/")[0])
        assert len(children) == 2, procs.log_tail("api")
        listening = listeners(port)
        assert len(listening) == 2 and all(sockets_of(c) & listening for c in children)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            for _ in range(20):
                async with http.get(url) as r:
                    assert r.status == 200
        os.kill(parent, signal.SIGTERM)                     # systemd's stop
        assert procs.children["api"].wait(timeout=15) == 0
        assert gone(children, 5) and not listeners(port)

        # one API process dies: the parent stops the other and exits with a failure, so a
        # supervisor restarts the whole set instead of leaving half of it serving
        parent, children, url = await _start(procs, "api-2", env)
        os.kill(children[0], signal.SIGKILL)
        assert procs.children["api-2"].wait(timeout=15) != 0
        assert gone(children, 5)
