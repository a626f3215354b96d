"""Org import: CSV and XLSX, all or nothing per file with a row report, re-import changes nothing."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from openpyxl import Workbook

from models.audit import AuditEntry
from models.org import ImportRun, Member, Position, Role, Unit, Zone
from tests.support import City, bearer, staff_login, wechat_login

UNITS_CSV = """name,zone,district,nature,member_count,strength
市教育局党委,第一网络区,中心区,党政机关,40,88
市财政局党委,第一网络区,东城区,党政机关,35,72
市公交集团党委,第二网络区,西城区,国有企业,120,65
"""

MEMBERS_CSV = """单位,姓名,手机号,角色
市教育局党委,张三,13900000001,党员
市教育局党委,李四,13900000002,管理员
市公交集团党委,王五,13900000003,
"""


async def _upload(client: TestClient[Any, Any], token: str, name: str, content: bytes,
                  kind: str | None = None) -> tuple[int, dict[str, Any]]:
    form = FormData()
    form.add_field("file", content, filename=name)
    if kind:
        form.add_field("kind", kind)
    r = await client.post("/api/v1/org/import", data=form, headers=bearer(token))
    return r.status, await r.json()


async def test_units_then_members_and_reimport_changes_nothing(client: TestClient[Any, Any],
                                                               city: City) -> None:
    staff = await staff_login(client)
    status, body = await _upload(client, staff, "units.csv", UNITS_CSV.encode())
    assert status == 200 and body == {"kind": "units", "rows": 3, "created": 3, "updated": 0, "unchanged": 0,
                                      "warnings": body["warnings"]}
    assert await Zone.filter(name__in=["第一网络区", "第二网络区"]).count() == 2
    status, body = await _upload(client, staff, "members.csv", MEMBERS_CSV.encode())
    assert status == 200 and body["created"] == 3
    li = await Member.get(name="李四")
    assert li.role is Role.UNIT_ADMIN

    before_units = [(u.id, u.name, u.zone_id, u.strength, u.invite_code) for u in await Unit.all()]
    before_members = [(m.id, m.name, m.role, m.token_version) for m in await Member.all()]
    runs = await ImportRun.all().count()
    for name, content in [("units.csv", UNITS_CSV), ("members.csv", MEMBERS_CSV)]:
        status, body = await _upload(client, staff, name, content.encode())
        assert status == 200 and body["created"] == body["updated"] == 0 and body["unchanged"] == 3
    assert [(u.id, u.name, u.zone_id, u.strength, u.invite_code) for u in await Unit.all()] == before_units
    assert [(m.id, m.name, m.role, m.token_version) for m in await Member.all()] == before_members
    assert await ImportRun.all().count() == runs


async def test_one_bad_row_rejects_the_whole_file_with_a_row_report(client: TestClient[Any, Any],
                                                                    city: City) -> None:
    staff = await staff_login(client)
    bad = UNITS_CSV + "市审计局党委,第三网络区,中心区,党政机关,-5,150\n,第三网络区,,,,\n市教育局党委,第一网络区,,,1,1\n"
    status, body = await _upload(client, staff, "units.csv", bad.encode())
    assert status == 422 and body["code"] == "import_invalid"
    rows = {tuple(e["loc"][1:3]) for e in body["errors"]}
    assert {(5, "member_count"), (5, "strength"), (6, "name")} <= rows
    assert await Unit.filter(name="市教育局党委").count() == 0      # nothing from the good rows
    assert await Zone.filter(name="第三网络区").count() == 0
    # A duplicate inside the file is reported too, and a valid file still imports afterwards.
    status, body = await _upload(client, staff, "u.csv", (UNITS_CSV + "市教育局党委,第一网络区,,,1,1\n").encode())
    assert status == 422 and {"loc": ["file", 5, "name"], "msg": "与第 2 行重复",
                              "type": "duplicate"} in body["errors"]
    status, _ = await _upload(client, staff, "units.csv", UNITS_CSV.encode())
    assert status == 200


async def test_members_of_unknown_units_or_taken_openids_are_refused(client: TestClient[Any, Any],
                                                                     city: City) -> None:
    staff = await staff_login(client)
    await _upload(client, staff, "units.csv", UNITS_CSV.encode())
    header = "单位,姓名,手机号,角色,openid\n"
    body_rows = MEMBERS_CSV.split("\n", 1)[1]
    status, body = await _upload(client, staff, "m.csv",
                                 (header + body_rows + "不存在的单位,赵六,13900000004,党员\n").encode())
    assert status == 422 and {tuple(e["loc"][1:]) for e in body["errors"]} == {(5, "unit")}
    taken = city.members[city.units[city.zones[0].id][0].id][0].openid
    status, body = await _upload(client, staff, "m.csv", (
        header + body_rows + f"市财政局党委,钱七,13900000005,党员,{taken}\n").encode())
    assert status == 422 and {tuple(e["loc"][1:]) for e in body["errors"]} == {(5, "openid")}
    assert await Member.filter(name="张三").count() == 0


async def test_xlsx_import_and_role_change_revokes_tokens(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    member = city.members[unit.id][0]
    token = await wechat_login(client, member.openid or "")
    wb = Workbook()
    ws = wb.active
    ws.append(["unit", "name", "phone", "role"])
    ws.append([unit.name, member.name, int(member.phone), "unit_admin"])  # numbers as Excel has them
    buf = io.BytesIO()
    wb.save(buf)
    status, body = await _upload(client, staff, "members.xlsx", buf.getvalue())
    assert status == 200 and body == {"kind": "members", "rows": 1, "created": 0, "updated": 1, "unchanged": 0,
                                      "warnings": []}
    assert (await Member.get(id=member.id)).role is Role.UNIT_ADMIN
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401
    entry = await AuditEntry.get(action="member.role_changed", target_id=member.id)
    assert (entry.detail, entry.zone_id) == (
        {"source": "import", "before": "member", "after": "unit_admin"}, city.zones[0].id)


async def test_positions_import_in_chinese_and_empty_keeps_them(client: TestClient[Any, Any],
                                                                city: City) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][0]
    one, two = city.members[unit.id][:2]
    csv = (f"单位,姓名,手机号,职务\n{unit.name},{one.name},{one.phone},书记\n"
           f"{unit.name},{two.name},{two.phone},支委\n{unit.name},新党员,13911112222,\n")
    status, body = await _upload(client, staff, "members.csv", csv.encode())
    assert status == 200 and (body["created"], body["updated"]) == (1, 2)
    positions = {m.name: m.position for m in await Member.filter(unit_id=unit.id)}
    assert (positions[one.name], positions[two.name], positions["新党员"]) == (
        Position.SECRETARY, Position.COMMITTEE_MEMBER, Position.MEMBER)
    # Again without the column: nobody's position changes, nothing is updated.
    csv = f"单位,姓名,手机号\n{unit.name},{one.name},{one.phone}\n"
    status, body = await _upload(client, staff, "members.csv", csv.encode())
    assert status == 200 and body["unchanged"] == 1
    assert (await Member.get(id=one.id)).position is Position.SECRETARY
    status, body = await _upload(client, staff, "members.csv",
                                 f"单位,姓名,手机号,职务\n{unit.name},{one.name},{one.phone},部长\n".encode())
    assert status == 422 and body["errors"][0]["loc"][-1] == "position"


async def test_garbage_files_are_clear_errors(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    for name, content, kind, expected in [
            ("x.xlsx", b"PK\x03\x04 not really a zip", None, (422, "import_invalid", "xlsx")),
            ("x.csv", b"foo,bar\n1,2\n", None, (422, "import_invalid", "unknown_columns")),
            ("x.csv", b"", "units", (422, "invalid_request", "missing")),
            ("x.csv", "name,zone\n".encode(), "units", (422, "import_invalid", "import_row")),
            ("x.csv", b"\xff\xfe\x00garbage\x00", "members", (422, "import_invalid", "encoding"))]:
        status, body = await _upload(client, staff, name, content, kind)
        assert (status, body["code"], body["errors"][0]["type"]) == expected, (name, body)
    r = await client.post("/api/v1/org/import", json={"file": "x"}, headers=bearer(staff))
    assert r.status == 422 and (await r.json())["code"] == "invalid_request"


def test_cli_import_reports_rows_and_changes_nothing_on_error(tmp_path: Path, database_url: str) -> None:
    env = {"ZONEHUB_DATABASE_URL": database_url, "ZONEHUB_SECRET_KEY": "x" * 40, "PATH": "/usr/bin:/bin"}
    bad = tmp_path / "units.csv"
    bad.write_text("name,zone,strength\n市统计局党委,第九网络区,101\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "server.cli", "import", str(bad)], env=env,
                         capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert out.returncode == 1
    assert "row 2: strength" in out.stderr


async def test_a_units_import_flags_the_zones_left_outside_8_to_10_units(
        client: TestClient[Any, Any]) -> None:
    """Zone A gets 8 units (fine), B 11 (too many), C 7 (too few); moving one unit from B to C
    leaves B with 10 and C with 8, and no warning."""
    await City.build(zones=0)
    staff = await staff_login(client)
    rows = ([f"单位A{i},A区" for i in range(8)] + [f"单位B{i},B区" for i in range(11)]
            + [f"单位C{i},C区" for i in range(7)])
    status, body = await _upload(client, staff, "units.csv", ("单位名称,网络区\n" + "\n".join(rows)).encode())
    assert status == 200 and body["created"] == 26
    zones = dict(await Zone.all().values_list("name", "id"))
    assert [(w["code"], w["zone_id"], w["zone_name"], w["units"]) for w in body["warnings"]] == [
        ("zone_size", zones["B区"], "B区", 11), ("zone_size", zones["C区"], "C区", 7)]
    assert all("不在 8 至 10 个之间" in w["message"] for w in body["warnings"])

    rows[8 + 10] = "单位B10,C区"
    status, body = await _upload(client, staff, "units.csv", ("单位名称,网络区\n" + "\n".join(rows)).encode())
    assert status == 200 and body["updated"] == 1 and body["warnings"] == []
