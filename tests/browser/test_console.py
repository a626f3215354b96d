"""The console end to end in headless Chromium: the real app on a real port, the real arq
worker, the fake WeChat (and WeChat Pay) server. Screenshots of the main pages go to
docs/screenshots/ (the README's "Console" section shows them)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services import clock
from tests.integration.test_funds import new_campaign, paid_order
from tests.support import STAFF_PASSWORD, City, bearer, run_workers, staff_login, wechat_login

pytestmark = pytest.mark.browser
TIMEOUT_MS = 20_000


def decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code on the screenshot"
    return str(found[0].text)


async def open_page(browser: Any, client: TestClient[Any, Any]) -> Any:
    context = await browser.new_context(base_url=str(client.make_url("")).rstrip("/"),
                                        viewport={"width": 1366, "height": 900}, locale="zh-CN")
    context.set_default_timeout(TIMEOUT_MS)
    return await context.new_page()


async def console_login(page: Any, username: str = "staff", password: str = STAFF_PASSWORD) -> None:
    await page.goto("/console/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("form[action='/console/login'] button")
    await page.wait_for_url(re.compile(r"/console/$"))


async def generate_rotations(client: TestClient[Any, Any], staff: str) -> None:
    year, _ = clock.quarter_of(clock.now())
    resp = await client.post("/api/v1/rotations/generate", json={"year": year}, headers=bearer(staff))
    assert resp.status == 200, await resp.text()


def local_input(delta: timedelta) -> str:
    """A datetime-local value (Asia/Shanghai wall time), minutes precision."""
    return (clock.now() + delta).astimezone(clock.SHANGHAI).strftime("%Y-%m-%dT%H:%M")


async def test_staff_log_in_and_see_the_dashboard(client: TestClient[Any, Any], city: City,
                                                 browser: Any, screenshots: Path) -> None:
    await generate_rotations(client, await staff_login(client))
    page = await open_page(browser, client)
    await page.goto("/console/")
    await page.wait_for_url(re.compile(r"/console/login$"))  # no session: the login page
    await page.fill("#username", "staff")
    await page.fill("#password", "not-the-password")
    await page.click("form[action='/console/login'] button")
    error = page.locator(".field-error[data-field='password']")
    await error.wait_for()
    assert "用户名或密码" in await error.inner_text() or await error.inner_text()
    await console_login(page)
    zones = page.locator("#zones")
    await zones.wait_for()
    text = await zones.inner_text()
    for zone in city.zones:
        assert zone.name in text
    assert "未排班" not in text  # every zone shows its duty unit this quarter
    await page.locator("#attendance-chart canvas").wait_for()


async def test_the_demo_city_in_the_console(client: TestClient[Any, Any], browser: Any,
                                            screenshots: Path) -> None:
    """The demo city's lived-in year (`zonehub demo`) through the console's main pages: the
    README's pictures of them."""
    from services.demo import load_demo

    await load_demo(admin_password=STAFF_PASSWORD)
    page = await open_page(browser, client)
    await console_login(page, username="admin")
    await page.locator("#attendance-chart canvas").wait_for()
    assert await page.locator("#zones tr").count() == 11  # ten zones and the header
    assert await page.locator("#in-flight tr[data-notice]").count() > 0
    await page.wait_for_timeout(500)  # the charts' entry animation
    await page.screenshot(path=screenshots / "dashboard.png", full_page=True)
    for path, name in (("/console/supervision", "supervision"), ("/console/funds", "funds"),
                       ("/console/activities", "activities"), ("/console/zones", "zones"),
                       ("/console/notices", "notices"), ("/console/admin", "admin"),
                       ("/console/audit", "audit"), ("/console/meetings", "meetings"),
                       ("/console/evaluation", "evaluation")):
        resp = await page.goto(path)
        assert resp is not None and resp.status == 200, path
        await page.screenshot(path=screenshots / f"{name}.png", full_page=True)
    await page.goto("/console/zones")
    await page.click("#zones a >> nth=0")
    calendar = await page.locator("#calendar").inner_text()
    assert "第 4 季度" in calendar and "已开展" in calendar
    await page.screenshot(path=screenshots / "zone.png", full_page=True)
    await page.click("#zone-funds")
    await page.locator("#entries").wait_for()
    await page.screenshot(path=screenshots / "zone-funds.png", full_page=True)
    await page.goto("/console/ledger")
    async with page.expect_download() as info:
        await page.click("#download")
    download = await info.value
    assert download.suggested_filename.endswith(".xlsx")
    assert Path(await download.path()).read_bytes()[:2] == b"PK"
    await page.goto("/console/funds")
    await page.click("#drives a:has-text(\"特殊党费\")")
    await page.locator("#leaderboard canvas").wait_for()
    await page.wait_for_timeout(500)
    await page.screenshot(path=screenshots / "drive.png", full_page=True)


async def test_a_unit_admin_logs_in_by_qr_and_sees_only_their_unit(
        client: TestClient[Any, Any], city: City, browser: Any, screenshots: Path) -> None:
    unit, other = city.units[city.zones[0].id][1], city.units[city.zones[1].id][0]
    member = await wechat_login(client, city.members[unit.id][0].openid or "")
    admin = await wechat_login(client, city.admins[unit.id].openid or "")
    page = await open_page(browser, client)
    await page.goto("/console/login")
    qr = page.locator("#ticket-qr svg")
    await qr.wait_for()
    await page.screenshot(path=screenshots / "login.png")
    content = decode_qr(await qr.screenshot())
    assert content.startswith("zonehub-console:")
    ticket = content.removeprefix("zonehub-console:")
    confirm = f"/api/v1/console/tickets/{ticket}/confirm"
    resp = await client.post(confirm, headers=bearer(member))
    assert resp.status == 403 and (await resp.json())["code"] == "console_not_allowed"
    resp = await client.post(confirm, headers=bearer(admin))
    assert resp.status == 200, await resp.text()
    await page.wait_for_url(re.compile(r"/console/$"))  # the page polled and its session started
    await page.goto(f"/console/units/{unit.id}")
    names = await page.locator("#members input[name='name']").evaluate_all("els => els.map(e => e.value)")
    assert city.members[unit.id][0].name in names
    await page.goto(f"/console/units/{other.id}")
    refusal = page.locator(".error[data-code='forbidden']")
    await refusal.wait_for()
    assert "没有权限" in await refusal.inner_text()
    assert city.members[other.id][0].name not in await page.content()
    await page.screenshot(path=screenshots / "unit-refused.png")
    await page.goto("/console/zones")
    units = await page.locator("#units").inner_text()
    assert unit.name in units and other.name not in units


async def test_send_a_notice_and_watch_it_reach_everyone(
        client: TestClient[Any, Any], city: City, browser: Any, settings: Any,
        screenshots: Path) -> None:
    zone = city.zones[0]
    page = await open_page(browser, client)
    await console_login(page)
    await page.goto("/console/notices")
    await page.fill("#title", "关于开展主题党日活动的通知")
    await page.fill("#body", "请各单位于本周五前组织开展主题党日活动。")
    await page.check(f"input[name='zone_ids'][value='{zone.id}']")
    await page.screenshot(path=screenshots / "notice-compose.png", full_page=True)
    await page.click("#compose button[type='submit']")
    await page.wait_for_url(re.compile(r"/console/notices/\d+$"))
    notice_id = int(page.url.rsplit("/", 1)[1])
    assert await page.locator("#delivered").inner_text() == "0"
    await run_workers(settings)  # the real arq worker fans the notice out
    await page.locator("#delivered-pct").filter(has_text=re.compile(r"^100%$")).wait_for()
    recipients = int(await page.locator("#recipients").inner_text())
    people = [m for u in city.units[zone.id] for m in [city.admins[u.id], *city.members[u.id]]]
    assert recipients == len(people)
    for person in people:  # everyone reads it in the mini-program
        token = await wechat_login(client, person.openid or "")
        resp = await client.post(f"/api/v1/notices/{notice_id}/read", headers=bearer(token))
        assert resp.status == 200, await resp.text()
    await page.locator("#read-pct").filter(has_text=re.compile(r"^100%$")).wait_for()
    await page.screenshot(path=screenshots / "notice-progress.png", full_page=True)


async def test_create_an_activity_and_check_in_from_its_screen(
        client: TestClient[Any, Any], city: City, browser: Any, screenshots: Path) -> None:
    zone = city.zones[0]
    page = await open_page(browser, client)
    await console_login(page)
    await page.goto("/console/activities")
    await page.select_option("#zone_id", str(zone.id))
    await page.select_option("#kind", "party_lesson")
    await page.fill("#title", "学习贯彻专题党课")
    await page.fill("#place", "市委党校报告厅")
    await page.fill("#starts_at", local_input(timedelta(hours=2)))
    await page.fill("#ends_at", local_input(timedelta(hours=1)))  # before the start: refused
    await page.click("#create-activity button[type='submit']")
    error = page.locator(".field-error[data-field='starts_at']")
    await error.wait_for()
    assert "starts_at" in await error.inner_text()
    await page.screenshot(path=screenshots / "activity-field-error.png", full_page=True)
    assert await page.locator("#title").input_value() == "学习贯彻专题党课"  # kept for the fix
    await page.fill("#starts_at", local_input(timedelta(minutes=10)))
    await page.fill("#ends_at", local_input(timedelta(hours=2)))
    await page.fill("#capacity", "1")
    await page.click("#create-activity button[type='submit']")
    await page.wait_for_url(re.compile(r"/console/activities/\d+$"))
    activity_id = int(page.url.rsplit("/", 1)[1])
    unit = city.units[zone.id][0]
    first, second = city.members[unit.id][0], city.members[unit.id][1]
    tokens = [await wechat_login(client, m.openid or "") for m in (first, second)]
    for token, status in zip(tokens, ("confirmed", "waitlisted"), strict=True):
        resp = await client.post(f"/api/v1/activities/{activity_id}/signup", headers=bearer(token))
        assert resp.status == 201 and (await resp.json())["status"] == status
    await page.reload()
    assert first.name in await page.locator("#confirmed").inner_text()
    assert second.name in await page.locator("#waitlist").inner_text()
    await page.screenshot(path=screenshots / "activity.png", full_page=True)
    await page.click("#open-checkin")
    code = page.locator(".screen .code svg")
    await code.wait_for()
    await page.screenshot(path=screenshots / "checkin-screen.png")
    token = decode_qr(await code.screenshot())
    resp = await client.post(f"/api/v1/activities/{activity_id}/checkin", json={"token": token},
                             headers=bearer(tokens[0]))
    assert resp.status == 200, await resp.text()
    # the screen counts who checked in at its next refresh
    await page.locator("#checked-in").filter(has_text=re.compile(r"^1$")).wait_for()
    resp = await client.post(f"/api/v1/activities/{activity_id}/checkin", json={"token": "x" * 20},
                             headers=bearer(tokens[0]))
    assert resp.status in (400, 403, 409, 422)  # control: the route refuses a code not from the screen


async def test_urge_an_overdue_item(client: TestClient[Any, Any], city: City, browser: Any,
                                    screenshots: Path) -> None:
    staff = await staff_login(client)
    unit = city.units[city.zones[0].id][2]
    resp = await client.post("/api/v1/supervision-items", headers=bearer(staff), json={
        "title": "报送第四季度党建工作总结", "detail": "请按模板报送。", "unit_ids": [unit.id],
        "due_at": (clock.now() + timedelta(days=1)).isoformat()})
    assert resp.status == 201, await resp.text()
    item_id = (await resp.json())["id"]
    clock.travel(timedelta(days=2))  # the due time passes (server and test share the clock)
    page = await open_page(browser, client)
    await console_login(page)
    await page.goto("/console/supervision")
    overdue = page.locator("#overdue")
    assert unit.name in await overdue.inner_text()
    await page.click(f"#overdue a[href='/console/supervision/{item_id}']")
    await page.wait_for_url(re.compile(rf"/console/supervision/{item_id}$"))
    row = page.locator(f"#assignments tr[data-unit='{unit.id}']")
    await row.locator("input[name='note']").fill("请尽快报送")
    await row.locator("form.urge button").click()
    await page.locator("#done").wait_for()
    timeline = await page.locator("#timeline").inner_text()
    assert "催办" in timeline and "请尽快报送" in timeline
    await page.screenshot(path=screenshots / "supervision-item.png", full_page=True)
    # Urging again at once is refused, and the page says so beside the note.
    await page.locator(f"#assignments tr[data-unit='{unit.id}'] form.urge button").click()
    error = page.locator(f"#assignments tr[data-unit='{unit.id}'] .field-error")
    await error.wait_for()
    assert await error.inner_text()


async def test_a_drive_shows_its_totals_after_a_payment(
        client: TestClient[Any, Any], city: City, browser: Any, fake_wechat: Any,
        screenshots: Path) -> None:
    staff = await staff_login(client)
    campaign = await new_campaign(client, staff, title="抗洪救灾特殊党费")
    member = city.members[city.units[city.zones[0].id][0].id][0]
    token = await wechat_login(client, member.openid or "")
    await paid_order(client, fake_wechat, token, campaign["id"], 5000)
    page = await open_page(browser, client)
    await console_login(page)
    await page.goto("/console/funds")
    await page.click(f"#drives a[href='/console/funds/{campaign['id']}']")
    await page.wait_for_url(re.compile(rf"/console/funds/{campaign['id']}$"))
    assert await page.locator("#total").inner_text() == "50.00"
    assert await page.locator("#count").inner_text() == "1"
    # a second payment while the page is open: the live total follows
    other = city.members[city.units[city.zones[1].id][0].id][0]
    await paid_order(client, fake_wechat, await wechat_login(client, other.openid or ""),
                     campaign["id"], 12000)
    await page.locator("#total").filter(has_text="170.00").wait_for()
    assert await page.locator("#count").inner_text() == "2"
