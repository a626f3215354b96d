"""The role matrix, generated from the route table: every route x every role, against rows of
another zone (zone 2) and, for duty powers, rows of the caller's own zone (zone 1).

Each route declares its cases below: a path, a body, and the roles that may act. A role that may
not must be refused (401 anonymous; 403 or 404 signed in — a hidden row is a 404); a role that
may must get past every check (anything but 401, 403, 404 or 5xx; a business refusal such as
409 already_decided is fine). A route without a declared case (or a reason it has none) fails
the test, so a new route cannot slip in unchecked. The control removes one route's check and
shows the matrix sees it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from models.org import Liaison, Member, Role, Rotation
from server.app import ROUTERS
from server.keys import REDIS
from server.routing import openapi_path
from services import clock, console
from services.auth import hash_password
from tests.support import STAFF_PASSWORD, City, bearer, staff_login, wechat_login

ROLES = ["anonymous", "member", "unit_admin", "duty", "last_duty", "liaison", "committee"]
SIGNED_IN = set(ROLES) - {"anonymous"}
ADMINS = {"unit_admin", "duty", "last_duty", "liaison", "committee"}
PDF = b"%PDF-1.4\n" + b"1" * 32

# Routes with no case here, and why.
EXEMPT = {
    ("POST", "/auth/wechat"): "anyone: a login, nothing to scope (tests/integration/test_auth.py)",
    ("POST", "/auth/bind"): "anyone: a login (test_auth.py, test_security.py)",
    ("POST", "/auth/login"): "anyone: a login (test_auth.py, test_security.py)",
    ("POST", "/auth/logout"): "revokes the caller's own token (test_auth.py)",
    ("POST", "/pay/wechat/notify"): "WeChat Pay's callback: only a signed body counts (test_funds.py)",
    ("POST", "/pay/wechat/refund-notify"): "WeChat Pay's callback (test_funds.py)",
}


@dataclass
class Case:
    method: str
    path: str                      # with {placeholders} filled from the world
    allowed: set[str]
    body: Any = None               # dict (JSON), or a callable(world) -> FormData
    note: str = ""
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _iso(delta: timedelta) -> str:
    return (clock.now() + delta).isoformat()


def _today() -> str:
    return clock.now().astimezone(clock.SHANGHAI).date().isoformat()


def _pdf_form(_: dict[str, Any]) -> FormData:
    form = FormData()
    form.add_field("file", PDF, filename="x.pdf", content_type="application/pdf")
    return form


def _csv_form(_: dict[str, Any]) -> FormData:
    form = FormData()
    form.add_field("file", "name,zone\n市测试局党委,新网络区\n".encode(), filename="u.csv",
                   content_type="text/csv")
    form.add_field("kind", "units")
    return form


def cases(w: dict[str, Any]) -> list[Case]:
    """Every route's cases; rows named {a2}, {z2}... live in zone 2, {a1}, {z1}... in zone 1."""
    inside = w["inside"]  # a start inside zone 1's current rotation
    activity = {"kind": "party_lesson", "title": "党课", "starts_at": inside.isoformat(),
                "ends_at": (inside + timedelta(minutes=30)).isoformat()}
    line = {"direction": "income", "category": "other_income", "amount_fen": 100,
            "description": "捐赠", "occurred_on": _today()}
    return [
        # organisation
        Case("GET", "/zones", SIGNED_IN),
        Case("GET", "/zones/{z2}", SIGNED_IN),
        Case("GET", "/zones/{z2}/rotations", SIGNED_IN),
        Case("GET", "/zones/{z2}/compliance", SIGNED_IN, query={"quarter": w["quarter"]}),
        Case("GET", "/zones/{z2}/attendance", {"committee"}, query={"year": w["year"]}),
        Case("GET", "/units", ADMINS),
        Case("GET", "/units/{u2}/members", {"committee"}),
        Case("GET", "/units/{u1}/members", {"unit_admin", "liaison", "committee"},
             note="the unit admin's own unit"),
        Case("POST", "/rotations/generate", {"committee"}, {"year": w["year"]}),
        Case("GET", "/rotation-plans/{year}", {"liaison", "committee"}),
        Case("POST", "/rotation-plans/{year}/confirm", {"committee"}),
        Case("PUT", "/zones/{z2}/duty-order", {"committee"}, {"unit_ids": w["z2_units"]}),
        Case("POST", "/zones/{z2}/duty-change", {"committee"}, {"unit_id": w["u2"], "reason": "调整"}),
        Case("POST", "/org/import", {"committee"}, _csv_form),
        # activities
        Case("GET", "/activities", SIGNED_IN),
        Case("POST", "/activities", {"committee"}, {**activity, "zone_id": w["z2"]}),
        Case("POST", "/activities", {"duty", "liaison", "committee"}, {**activity, "zone_id": w["z1"]},
             note="zone 1: the duty unit now, not last quarter's"),
        Case("GET", "/activities/{a2}", {"committee"}),
        Case("PATCH", "/activities/{a2}", {"committee"}, {"title": "改名"}),
        Case("PATCH", "/activities/{a1}", {"duty", "liaison", "committee"}, {"place": "礼堂"}),
        Case("POST", "/activities/{a2x}/cancel", {"committee"}, {"reason": "天气原因"}),
        Case("GET", "/activities/{a2}/attendance", {"committee"}),
        Case("GET", "/activities/{a2}/signups", {"committee"}),
        Case("GET", "/activities/{a1}/signups", {"duty", "liaison", "committee"}),
        Case("POST", "/activities/{a2}/signup", set(), note="not in the audience, or staff"),
        Case("DELETE", "/activities/{a2}/signup", set(), note="nobody here signed up"),
        Case("POST", "/activities/{a2}/signups/batch", set(), {"member_ids": [w["member_id"]]}),
        Case("GET", "/activities/{a2}/checkin-code", {"committee"}),
        Case("POST", "/activities/{a2}/checkin", {"committee"}, {"token": "1.1.x"},
             note="staff see it (then a check-in error); outsiders do not"),
        Case("POST", "/activities/{a2}/pass-scans", {"committee"},
             {"scans": [{"pass_token": "P1.x.y", "nonce": "nonce-0001"}]}),
        Case("GET", "/me/pass", SIGNED_IN),
        Case("GET", "/checkin/pass-key", set(ROLES)),
        Case("GET", "/me/activities", SIGNED_IN),
        # activity records ({a1} starts within hours: allowed callers get past every check to 409
        # record_window_closed); zone 2's activity is open to all, its record to its zone only
        Case("GET", "/activities/{a2}/record", {"committee"}),
        Case("GET", "/activities/{a1}/record", SIGNED_IN),
        Case("PUT", "/activities/{a2}/record", {"committee"}, {"minutes": "纪要"}),
        Case("PUT", "/activities/{a1}/record", {"duty", "liaison", "committee"}, {"minutes": "纪要"},
             note="the duty unit of the rotation it belongs to; staff governing the zone"),
        # good practice ({pr2}: published by a unit of zone 2)
        Case("POST", "/practices", {"unit_admin", "duty", "last_duty"}, {"title": "经验", "body": "做法"},
             note="a unit admin, for their own unit"),
        Case("POST", "/practices", set(), {"title": "经验", "body": "做法", "unit_id": w["u2"]},
             note="another zone's unit: nobody publishes in its name"),
        Case("GET", "/practices", SIGNED_IN),
        Case("GET", "/practices/{pr2}", SIGNED_IN),
        Case("POST", "/practices/{pr2}/feature", {"committee"}),
        Case("GET", "/activities/{c2}/entries", {"committee"}),
        Case("POST", "/activities/{c2}/entries", set(), {"title": "作品"}),
        Case("GET", "/activities/{c2}/results", {"committee"}),
        Case("POST", "/activities/{c2}/rounds/preliminary", {"committee"},
             {"zone_id": w["z2"], "advance_top": 1, "scores": [{"entry_id": 1, "score": 1}]}),
        Case("POST", "/activities/{c2}/rounds/final", {"committee"},
             {"scores": [{"entry_id": 1, "score": 1}]}),
        # notices
        Case("POST", "/notices", {"committee"}, {"title": "通知", "audience": {"zone_ids": [w["z2"]]}}),
        Case("POST", "/notices", {"duty", "liaison", "committee"},
             {"title": "通知", "audience": {"zone_ids": [w["z1"]]}}),
        Case("GET", "/notices/{n2}/stats", {"committee"}),
        Case("POST", "/notices/{n2}/read", set()),
        Case("POST", "/notices/{n2}/ack", set()),
        Case("POST", "/notices/{n2}/sign", set()),
        Case("GET", "/me/notices", SIGNED_IN),
        Case("POST", "/me/subscriptions", SIGNED_IN, {"template_id": "t1", "result": "accept"}),
        Case("POST", "/attachments", ADMINS, _pdf_form),
        Case("GET", "/attachments/{key2}", {"committee"}),
        # supervision
        Case("POST", "/supervision-items", {"committee"},
             {"title": "督办", "due_at": _iso(timedelta(days=3)), "unit_ids": [w["u2"]]}),
        Case("POST", "/supervision-items", {"liaison", "committee"},
             {"title": "督办", "due_at": _iso(timedelta(days=3)), "zone_ids": [w["z1"]]}),
        Case("GET", "/supervision-items", ADMINS),
        Case("GET", "/supervision-items/{s2}", {"committee"}),
        Case("POST", "/supervision-items/{s2}/progress", set(), {"note": "进展"}),
        Case("POST", "/supervision-items/{s2}/urge", {"committee"}, {"unit_id": w["u2"]}),
        Case("POST", "/supervision-items/{s1}/urge", {"duty", "liaison", "committee"},
             {"unit_id": w["u1"]}),
        Case("POST", "/supervision-items/{s2}/review", {"committee"},
             {"unit_id": w["u2"], "accept": True}),
        # funds
        Case("POST", "/campaigns", {"committee"},
             {"title": "捐款", "kind": "donation", "ends_at": _iso(timedelta(days=2))}),
        Case("GET", "/campaigns", SIGNED_IN),
        Case("GET", "/campaigns/{k2}", {"committee"}),
        Case("POST", "/campaigns/{k2}/open", {"committee"}),
        Case("POST", "/campaigns/{k2c}/close", {"committee"}),
        Case("GET", "/campaigns/{k2}/totals", {"committee"}),
        Case("GET", "/campaigns/{k2}/leaderboard", {"committee"}),
        Case("POST", "/campaigns/{k2}/contributions", set(), {"amount_fen": 100},
             headers={"Idempotency-Key": "matrix-1"}),
        Case("GET", "/campaigns/{k2}/contributions", {"committee"}),
        Case("POST", "/campaigns/{k2}/offline-contributions", {"committee"},
             {"unit_id": w["u2"], "amount_fen": 100, "channel": "cash", "receipt_no": "R-9",
              "received_on": _today()}),
        Case("GET", "/contributions/{contribution2}", {"committee"}),
        Case("POST", "/contributions/{contribution2}/reverse", {"committee"}, {"reason": "录错"}),
        Case("POST", "/contributions/{contribution2}/refunds", {"committee"},
             {"amount_fen": 1, "reason": "退"}),
        Case("GET", "/me/contributions", SIGNED_IN),
        # ledger
        Case("GET", "/zones/{z2}/fund-ledger", {"committee"}),
        Case("GET", "/fund-ledger/summary", {"committee"}),
        Case("POST", "/zones/{z2}/fund-entries", {"committee"}, line),
        Case("POST", "/zones/{z1}/fund-entries", {"duty", "liaison", "committee"}, line),
        Case("POST", "/zones/{z2}/fund-entries/{p2}/approve", {"committee"}, {}),
        Case("POST", "/zones/{z2}/fund-entries/{p2r}/reject", {"committee"}, {"note": "不符合"}),
        Case("POST", "/zones/{z2}/fund-entries/{b2}/reverse", {"committee"}, {"reason": "冲销"}),
        # running the zones: plans, meetings, handovers ({r1} zone 1's rotation now, {rl} its
        # last one, {r2} zone 2's now; {m} this quarter's meeting)
        Case("GET", "/rotations/{r2}/plan", {"committee"}),
        Case("GET", "/rotations/{r1}/plan", ADMINS, note="the units of the zone discuss it"),
        Case("PUT", "/rotations/{r1}/plan", {"duty"}, {"goals": "目标"}),
        Case("PUT", "/rotations/{r2}/plan", set(), {"goals": "目标"}),
        Case("POST", "/rotations/{r1}/plan/comments", {"unit_admin", "last_duty"}, {"body": "意见"},
             note="member units of the zone; the duty unit does not comment on its own plan"),
        Case("POST", "/rotations/{r1}/plan/submit", {"duty"}),
        Case("POST", "/rotations/{r2}/plan/file", {"committee"}, {"decision": "file"}),
        Case("POST", "/rotations/{r1}/plan/file", {"liaison", "committee"}, {"decision": "file"}),
        Case("POST", "/meetings", {"committee"}, {"year": w["year"] + 1, "quarter": 2, "title": "例会",
                                                   "starts_at": _iso(timedelta(days=5))}),
        Case("GET", "/meetings", ADMINS),
        Case("GET", "/meetings/{m}", {"duty", "liaison", "committee"},
             note="staff and the units at it (zone 1's duty unit now and next)"),
        Case("PUT", "/meetings/{m}/zones/{z1}/report", {"duty"}, {"text": "汇报"}),
        Case("PUT", "/meetings/{m}/zones/{z2}/comments", {"committee"}, {"text": "讲评"}),
        Case("PUT", "/meetings/{m}/zones/{z1}/comments", {"liaison", "committee"}, {"text": "讲评"}),
        Case("POST", "/meetings/{m}/deployments", {"committee"},
             {"title": "部署", "due_at": _iso(timedelta(days=100))}),
        Case("POST", "/meetings/{mx}/close", {"committee"}, {"minutes": "纪要"}),
        Case("GET", "/rotations/{r2}/handover", {"committee"}),
        Case("GET", "/rotations/{rl}/handover", {"last_duty", "duty", "liaison", "committee"},
             note="the outgoing and incoming units, and staff of the zone"),
        Case("POST", "/rotations/{rl}/handover", {"last_duty", "duty"}, {}),
        Case("POST", "/rotations/{r2}/handover", set(), {}),
        Case("GET", "/ledger", {"committee"}, query={"year": w["year"]}),
        Case("GET", "/ledger", {"liaison", "committee"}, query={"year": w["year"], "zone_id": w["z1"]}),
        Case("GET", "/ledger", {"unit_admin", "liaison", "committee"},
             query={"year": w["year"], "unit_id": w["u1"]}, note="the unit admin's own unit"),
        Case("GET", "/evaluation/{year}", {"liaison", "committee"}),
        Case("PUT", "/evaluation/{year}/rubric", {"committee"}, {"weights": {"plans": 10}}),
        Case("POST", "/evaluation/{year}/compute", {"committee"}),
        # administration and the audit log ({m1}: a member of zone 1's plain unit, {m2}: of zone 2)
        Case("GET", "/staff", {"committee"}),
        Case("POST", "/staff", {"committee"}, {"username": "new-staff", "name": "新人", "phone": "13800009999",
                                               "role": "liaison", "zone_ids": [w["z2"]]}),
        Case("POST", "/staff/{staff2}/reset-password", {"committee"}),
        Case("POST", "/staff/{staff2}/disable", {"committee"}),
        Case("POST", "/staff/{staff2}/enable", {"committee"}),
        Case("PUT", "/staff/{staff2}/zones", {"committee"}, {"zone_ids": [w["z2"]]}),
        Case("POST", "/zones", {"committee"}, {"name": "矩阵网络区"}),
        Case("PATCH", "/zones/{z2}", {"committee"}, {"description": "说明"}),
        Case("PATCH", "/members/{m2}", {"committee"}, {"position": "committee_member"}),
        Case("PATCH", "/members/{m1}", {"unit_admin", "liaison", "committee"}, {"position": "member"},
             note="the unit admin's own unit"),
        Case("POST", "/units/{u2}/invite-code", {"committee"}),
        Case("POST", "/units/{u1}/invite-code", {"unit_admin", "liaison", "committee"}),
        Case("GET", "/audit", {"liaison", "committee"}),
        Case("GET", "/members/{member_id}/export", {"member", "committee"}, note="the member's own data"),
        Case("GET", "/members/{m2}/export", {"committee"}),
        Case("POST", "/members/{m_erase}/erase", {"committee"}),
        Case("GET", "/notices", ADMINS, note="each sees what they may: the committee all, others their own"),
        # re-partitioning ({pp}: a pending proposal; applying it comes last, from year + 2)
        Case("POST", "/partitions", {"committee"}, {"seed": 1, "time_budget_s": 5}),
        Case("GET", "/partitions", {"committee"}),
        Case("GET", "/partitions/{pp}", {"committee"}),
        Case("POST", "/partitions/{pp}/apply", {"committee"}, {"from_quarter": f"{w['year'] + 2}Q1"}),
        # me and meta
        Case("GET", "/me", SIGNED_IN),
        Case("PUT", "/me/password", {"unit_admin", "duty", "last_duty"},
             body={"username": "matrix-admin", "password": "a-long-passphrase"},
             note="a unit admin's own account; staff are refused (the committee resets theirs); "
                  "after the first, the username is taken (409)"),
        Case("POST", "/console/tickets/{ticket}/confirm", ADMINS,
             note="plain members are refused (console_not_allowed); the first admin confirms, "
                  "the next find it used (410 console_ticket_invalid)"),
        Case("GET", "/health", set(ROLES)),
    ]


async def _staff(client: TestClient[Any, Any], username: str, role: Role,
                 zones: list[int] = ()) -> tuple[str, int]:  # type: ignore[assignment]
    m = await Member.create(name=username, phone="13811112222", role=role, username=username,
                            password_hash=hash_password(STAFF_PASSWORD))
    for z in zones:
        await Liaison.create(member_id=m.id, zone_id=z)
    return await staff_login(client, username), m.id


async def world(client: TestClient[Any, Any], city: City) -> dict[str, Any]:
    """Callers from zone 1, rows in zone 2 (and a few in zone 1 for duty powers)."""
    staff = await staff_login(client)
    year, quarter = clock.quarter_of(clock.now())
    for y in (year - 1, year, year + 1):
        r = await client.post("/api/v1/rotations/generate", json={"year": y}, headers=bearer(staff))
        assert r.status == 200
    z1, z2 = city.zones[0].id, city.zones[1].id
    now = clock.now()
    duty = await Rotation.get(zone_id=z1, starts_at__lte=now, ends_at__gt=now)
    last = await Rotation.filter(zone_id=z1, ends_at__lte=duty.starts_at).order_by("-starts_at").first()
    assert last is not None and last.unit_id != duty.unit_id
    nxt = await Rotation.filter(zone_id=z1, starts_at__gte=duty.ends_at).order_by("starts_at").first()
    assert nxt is not None
    plain = next(u for u in city.units[z1] if u.id not in (duty.unit_id, last.unit_id, nxt.unit_id))
    duty2 = await Rotation.get(zone_id=z2, starts_at__lte=now, ends_at__gt=now)
    u2 = next(u for u in city.units[z2] if u.id != duty2.unit_id)
    member = city.members[plain.id][0]
    staff2, staff2_id = await _staff(client, "staff2", Role.COMMITTEE)
    tokens = {
        "member": await wechat_login(client, member.openid or ""),
        "unit_admin": await wechat_login(client, city.admins[plain.id].openid or ""),
        "duty": await wechat_login(client, city.admins[duty.unit_id].openid or ""),
        "last_duty": await wechat_login(client, city.admins[last.unit_id].openid or ""),
        "liaison": (await _staff(client, "liaison-z1", Role.LIAISON, [z1]))[0],
        "committee": staff,
    }
    duty2_token = await wechat_login(client, city.admins[duty2.unit_id].openid or "")

    async def post(path: str, body: Any, token: str = staff, expect: int = 201, **kw: Any) -> Any:
        r = await client.post("/api/v1" + path, json=body, headers=bearer(token), **kw)
        assert r.status == expect, (path, await r.text())
        return await r.json()

    inside = now + min(timedelta(hours=2), (duty.ends_at - now) / 3)
    lesson = {"kind": "party_lesson", "title": "党课", "starts_at": _iso(timedelta(days=2)),
              "ends_at": _iso(timedelta(days=2, hours=1))}
    w: dict[str, Any] = {"z1": z1, "z2": z2, "u1": plain.id, "u2": u2.id, "year": year,
                         "z2_units": [u.id for u in city.units[z2]],
                         "quarter": f"{year}Q{quarter}", "inside": inside, "member_id": member.id}
    w["a2"] = (await post("/activities", {**lesson, "zone_id": z2}))["id"]
    w["a2x"] = (await post("/activities", {**lesson, "zone_id": z2}))["id"]
    w["c2"] = (await post("/activities", {**lesson, "kind": "contest", "zone_id": z2}))["id"]
    w["a1"] = (await post("/activities", {**lesson, "zone_id": z1, "starts_at": inside.isoformat(),
                                          "ends_at": (inside + timedelta(minutes=30)).isoformat()},
                          tokens["duty"]))["id"]
    form = FormData()
    form.add_field("file", PDF + b"zone2", filename="二区.pdf", content_type="application/pdf")
    upload = await post("/attachments", None, duty2_token, data=form)
    w["key2"] = upload["url"].rsplit("/", 1)[1]
    w["n2"] = (await post("/notices", {"title": "二区", "audience": {"zone_ids": [z2]},
                                       "attachments": [upload]}, duty2_token, expect=202))["id"]
    item = {"title": "督办", "due_at": _iso(timedelta(days=3))}
    w["s2"] = (await post("/supervision-items", {**item, "unit_ids": [u2.id]}))["id"]
    w["s1"] = (await post("/supervision-items", {**item, "unit_ids": [plain.id]}))["id"]
    drive = {"title": "区经费", "kind": "zone_fund", "fund_zone_id": z2, "ends_at": _iso(timedelta(days=3))}
    w["k2"] = (await post("/campaigns", drive))["id"]
    w["k2c"] = (await post("/campaigns", drive))["id"]
    w["contribution2"] = (await post(f"/campaigns/{w['k2']}/offline-contributions", {
        "unit_id": u2.id, "amount_fen": 500, "channel": "cash", "receipt_no": "R-1",
        "received_on": _today()}))["id"]
    subsidy = {"direction": "income", "category": "committee_subsidy", "amount_fen": 1000,
               "description": "补助", "occurred_on": _today()}
    w["p2"] = (await post(f"/zones/{z2}/fund-entries", subsidy, staff2))["id"]
    w["p2r"] = (await post(f"/zones/{z2}/fund-entries", subsidy, staff2))["id"]
    w["b2"] = (await post(f"/zones/{z2}/fund-entries", {
        "direction": "income", "category": "other_income", "amount_fen": 5000,
        "description": "捐赠", "occurred_on": _today()}))["id"]
    w.update(r1=duty.id, r2=duty2.id, rl=last.id, m1=city.members[plain.id][1].id,
             m2=city.members[u2.id][0].id, staff2=staff2_id, m_erase=city.members[u2.id][2].id)
    meeting = {"year": year, "quarter": quarter, "title": "例会", "starts_at": _iso(timedelta(days=3))}
    w["m"] = (await post("/meetings", meeting))["id"]
    w["mx"] = (await post("/meetings", {**meeting, "year": year + 1, "quarter": 1}))["id"]
    w["pr2"] = (await post("/practices", {"title": "二区经验", "body": "做法"}, duty2_token))["id"]
    w["pp"] = (await post("/partitions", {"seed": 1}))["id"]
    w["ticket"] = await console.create_ticket(client.app[REDIS], browser="matrix-browser")
    w["tokens"] = tokens
    return w


def _shape(path: str) -> str:
    """'/zones/{zone_id}/x' and '/zones/{z2}/x' -> '/zones/{}/x'."""
    return re.sub(r"\{\w+\}", "{}", path)


async def run_matrix(client: TestClient[Any, Any], w: dict[str, Any],
                     only: Callable[[Case], bool] = lambda c: True) -> list[str]:
    """Every case x every role; returns what went wrong. Refused roles go first, so a caller that
    should be refused cannot change what the allowed ones then see."""
    problems = []
    for case in [c for c in cases(w) if only(c)]:
        path = "/api/v1" + case.path.format(**{k: v for k, v in w.items()
                                              if isinstance(v, (int, str))})
        for role in sorted(ROLES, key=lambda r: r in case.allowed):
            headers = {**(bearer(w["tokens"][role]) if role != "anonymous" else {}), **case.headers}
            kwargs: dict[str, Any] = {"params": case.query}
            if callable(case.body):
                kwargs["data"] = case.body(w)
            elif case.body is not None:
                kwargs["data"] = json.dumps(case.body)
                headers["Content-Type"] = "application/json"
            r = await client.request(case.method, path, headers=headers, **kwargs)
            text = await r.text()
            where = f"{case.method} {case.path} as {role}: {r.status} {text[:160]}"
            if r.status >= 500:
                problems.append("server error: " + where)
            elif role in case.allowed:
                if r.status in (401, 403, 404):
                    problems.append("refused an allowed caller: " + where)
            elif role == "anonymous":
                if r.status != 401:
                    problems.append("anonymous not refused with 401: " + where)
            elif r.status not in (403, 404):
                problems.append("let a caller through: " + where)
    return problems


async def test_every_route_declares_its_roles(client: TestClient[Any, Any], city: City) -> None:
    w = await world(client, city)
    declared = {(c.method, _shape(c.path)) for c in cases(w)}
    missing = []
    for router in ROUTERS:
        for spec in router.specs:
            key = (spec.method, _shape(openapi_path(spec.path)[0]))
            if key not in declared and (spec.method, spec.path) not in EXEMPT:
                missing.append(f"{spec.method} {spec.path}")
    assert missing == [], "routes without a role-matrix case: " + ", ".join(missing)


async def test_role_matrix(client: TestClient[Any, Any], city: City) -> None:
    w = await world(client, city)
    problems = await run_matrix(client, w)
    assert problems == [], "\n".join(problems)


async def test_control_the_matrix_sees_a_check_removed(client: TestClient[Any, Any], city: City,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the zone check on subsidy approval, a liaison of zone 1 approves zone 2's subsidy:
    the matrix must report it (else it could not see a real hole either)."""
    import services.subsidies

    w = await world(client, city)
    monkeypatch.setattr(services.subsidies, "check_governs", lambda principal, zone_id: None)
    problems = await run_matrix(client, w, only=lambda c: c.path.endswith("/approve"))
    assert any("let a caller through" in p and "as liaison" in p for p in problems), problems
