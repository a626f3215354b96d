"""The walkthrough a newcomer does on a freshly started stack, over HTTP only (README, demo city,
curl): log in, sign up, check in, read and acknowledge a notice, pay, run a supervision round,
find next year's rotations. Each step prints one line; any surprise stops it with the answer.

    python -m tests.e2e.walkthrough                 # starts `zonehub up` in a temporary folder
    python -m tests.e2e.walkthrough --api http://127.0.0.1:8080 --wechat http://127.0.0.1:8081 \\
        --admin-password ...                        # against a stack already running
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
SHANGHAI = timezone(timedelta(hours=8))


class Surprise(AssertionError):
    pass


def call(method: str, url: str, body: Any = None, token: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
        **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def expect(status: int, answer: Any, wanted: int | tuple[int, ...], what: str) -> Any:
    if status not in (wanted if isinstance(wanted, tuple) else (wanted,)):
        raise Surprise(f"{what}: {status} {json.dumps(answer, ensure_ascii=False)[:400]}")
    return answer


def until(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise Surprise(f"{what}: not within {timeout_s:.0f} s")


def walk(api: str, wechat: str, admin_password: str, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every step of the walkthrough; returns what it made."""
    v1 = api + "/api/v1"
    expect(*call("GET", v1 + "/health"), 200, "health")
    staff = expect(*call("POST", v1 + "/auth/login", {"username": "admin", "password": admin_password}),
                   200, "committee login")["token"]
    member = expect(*call("POST", v1 + "/auth/wechat", {"code": "test-demo-1"}), 200, "member login")
    me = expect(*call("GET", v1 + "/me", token=member["token"]), 200, "me")
    zone_id, unit_id = me["zone"]["id"], me["unit"]["id"]
    say(f"logged in: committee admin, member {me['name']} of {me['unit']['name']}")

    zone = expect(*call("GET", v1 + f"/zones/{zone_id}", token=staff), 200, "zone")
    duty_unit = zone["rotation"]["unit"]["id"]
    duty = expect(*call("POST", v1 + "/auth/wechat", {"code": f"test-demo-admin-{duty_unit}"}), 200,
                  "duty unit admin login")["token"]
    now = datetime.now(SHANGHAI)
    ends = min(datetime.fromisoformat(zone["rotation"]["ends_at"]) - timedelta(minutes=5),
               now + timedelta(hours=2))
    activity = expect(*call("POST", v1 + "/activities", {
        "zone_id": zone_id, "kind": "party_lesson", "title": "走一遍：党课", "place": "会议室",
        "starts_at": (now + timedelta(minutes=30)).isoformat(), "ends_at": ends.isoformat(),
        "checkin_opens_at": now.isoformat(), "capacity": 50}, token=duty), 201, "duty unit creates a lesson")
    signup = expect(*call("POST", v1 + f"/activities/{activity['id']}/signup", token=member["token"]),
                    201, "sign-up")
    code = expect(*call("GET", v1 + f"/activities/{activity['id']}/checkin-code", token=duty), 200,
                  "venue code")["token"]
    expect(*call("POST", v1 + f"/activities/{activity['id']}/checkin", {"token": code},
                 token=member["token"]), 200, "check-in")
    attendance = expect(*call("GET", v1 + f"/activities/{activity['id']}/attendance", token=duty),
                        200, "attendance")
    assert attendance["checked_in"] >= 1, attendance
    say(f"activity {activity['id']}: signed up ({signup['status']}), checked in")

    notice = expect(*call("POST", v1 + "/notices", {
        "title": "走一遍：请确认", "audience": {"zone_ids": [zone_id]}, "require_ack": True},
        token=staff), 202, "notice sent")

    def in_inbox() -> bool:
        inbox = expect(*call("GET", v1 + "/me/notices", token=member["token"]), 200, "inbox")
        return any(i["notice_id"] == notice["id"] for i in inbox["items"])

    until(in_inbox, "the notice reaching the member's inbox")
    expect(*call("POST", v1 + f"/notices/{notice['id']}/read", token=member["token"]), 200, "read")
    expect(*call("POST", v1 + f"/notices/{notice['id']}/ack", token=member["token"]), 200, "ack")
    stats = expect(*call("GET", v1 + f"/notices/{notice['id']}/stats", token=staff), 200, "stats")
    assert stats["read"] >= 1 and stats["acked"] >= 1, stats
    say(f"notice {notice['id']}: {stats['delivered']} delivered, read and acknowledged")

    drive = expect(*call("POST", v1 + "/campaigns", {
        "title": "走一遍：捐款", "kind": "donation",
        "ends_at": (now + timedelta(days=7)).isoformat()}, token=staff), 201, "drive opened")
    order = expect(*call("POST", v1 + f"/campaigns/{drive['id']}/contributions", {"amount_fen": 2600},
                         token=member["token"], headers={"Idempotency-Key": str(uuid.uuid4())}),
                   201, "order")
    expect(*call("POST", wechat + f"/_fake/pay/orders/{order['out_trade_no']}/succeed", {}), 200,
           "paid at the fake WeChat Pay")

    def counted() -> bool:
        totals = expect(*call("GET", v1 + f"/campaigns/{drive['id']}/totals", token=staff), 200, "totals")
        return totals["total_fen"] == 2600

    until(counted, "the payment being counted")
    say(f"drive {drive['id']}: paid 26.00 yuan, counted once")

    item = expect(*call("POST", v1 + "/supervision-items", {
        "title": "走一遍：督办", "due_at": (now + timedelta(days=3)).isoformat(), "unit_ids": [unit_id]},
        token=staff), 201, "supervision item")
    unit_admin = expect(*call("POST", v1 + "/auth/wechat", {"code": f"test-demo-admin-{unit_id}"}),
                        200, "unit admin login")["token"]
    expect(*call("POST", v1 + f"/supervision-items/{item['id']}/progress",
                 {"note": "已办结", "done": True}, token=unit_admin), 200, "submitted")
    reviewed = expect(*call("POST", v1 + f"/supervision-items/{item['id']}/review",
                            {"unit_id": unit_id, "accept": True}, token=staff), 200, "accepted")
    assert reviewed["state"] == "accepted", reviewed
    say(f"supervision item {item['id']}: assigned, submitted, accepted")

    next_year = now.year + 1
    rotations = expect(*call("GET", v1 + f"/zones/{zone_id}/rotations?year={next_year}", token=staff),
                       200, "next year's rotations")
    if now.month >= 11 and len(rotations["items"]) != 4:
        raise Surprise(f"next year's rotations missing in {now:%B}: {rotations}")
    say(f"rotations of {next_year}: {len(rotations['items'])} quarters planned")
    return {"activity": activity["id"], "notice": notice["id"], "drive": drive["id"], "item": item["id"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_stack(folder: Path, admin_password: str) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """`zonehub up` in an empty folder (embedded Redis, SQLite): the newcomer's first start."""
    api, wechat = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONEHUB_")}
    env.update(ZONEHUB_SECRET_KEY="w" * 48, ZONEHUB_ADMIN_PASSWORD=admin_password,
               PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "up", "--port", str(api),
                             "--wechat-port", str(wechat)], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            # started as a shell starts a background job (`zonehub up &`, nohup, CI
                            # runners): SIGINT ignored, which Python would otherwise keep ignoring
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    base = f"http://127.0.0.1:{api}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                raise Surprise("zonehub up stopped:\n" + (proc.stdout.read() if proc.stdout else ""))
            try:
                return call("GET", base + "/api/v1/health")[0] == 200
            except OSError:
                return False

        until(healthy, "the stack answering /health", timeout_s=180)
        yield base, f"http://127.0.0.1:{wechat}", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api")
    parser.add_argument("--wechat")
    parser.add_argument("--admin-password", default=os.environ.get("ZONEHUB_ADMIN_PASSWORD", "walkthrough-pass"))
    args = parser.parse_args()
    if args.api:
        walk(args.api, args.wechat or "http://127.0.0.1:8081", args.admin_password)
        return
    with tempfile.TemporaryDirectory() as folder, fresh_stack(Path(folder), args.admin_password) as (api, wechat, proc):
        walk(api, wechat, args.admin_password)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
    print("walkthrough done")


if __name__ == "__main__":
    main()
