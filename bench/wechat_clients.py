"""Why pushes go through aiohttp: wechatpy (blocking, in threads) against aiohttp, both sending
subscribe messages to the fake WeChat at 50 in flight, in the same run.

    python -m bench.wechat_clients [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from wechatpy import WeChatClient

APPID, SECRET = "wx-bench", "bench-secret"
IN_FLIGHT = 50
DATA = {"thing1": {"value": "压测通知"}, "time2": {"value": "2026-11-26 10:00"}}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _aiohttp(base: str, token: str, n: int) -> float:
    body = json.dumps({"touser": "bench", "template_id": "t", "data": DATA}).encode()
    slots = asyncio.Semaphore(IN_FLIGHT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as http:
        async def one() -> None:
            async with slots, http.post(f"{base}/cgi-bin/message/subscribe/send",
                                        params={"access_token": token}, data=body) as r:
                assert (await r.json())["errcode"] == 0
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def _wechatpy(base: str, n: int) -> float:
    client = WeChatClient(APPID, SECRET)
    client.API_BASE_URL = f"{base}/cgi-bin/"
    client.wxa.API_BASE_URL = f"{base}/"
    client.fetch_access_token = lambda: client._fetch_access_token(  # type: ignore[method-assign]
        url=f"{base}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET})
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        start = time.perf_counter()
        await asyncio.gather(*(loop.run_in_executor(
            pool, client.wxa.send_subscribe_message, "bench", "t", DATA) for _ in range(n)))
        return n / (time.perf_counter() - start)


async def main(n: int) -> None:
    port = _port()
    fake = subprocess.Popen([sys.executable, "-m", "fakewechat.app", "--port", str(port),
                             "--appid", APPID, "--secret", SECRET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/cgi-bin/token", params={
                            "grant_type": "client_credential", "appid": APPID, "secret": SECRET}) as r:
                        token = (await r.json())["access_token"]
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        a = await _aiohttp(base, token, n)
        w = await _wechatpy(base, n)
        print(f"{n} subscribe messages to the fake WeChat, {IN_FLIGHT} in flight")
        print(f"aiohttp            {a:8,.0f} msg/s   1.00")
        print(f"wechatpy, threads  {w:8,.0f} msg/s   {w / a:.2f}")
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    asyncio.run(main(parser.parse_args().messages))
