"""Attachments: type and size checked against the content, stored by hash, used by notices."""

from __future__ import annotations

from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from server.keys import SETTINGS
from tests.support import City, bearer, run_workers, staff_login, wechat_login

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def _upload(client: TestClient[Any, Any], token: str, content: bytes, kind: str,
                  name: str = "会议通知.png") -> tuple[int, dict[str, Any]]:
    form = FormData()
    form.add_field("file", content, filename=name, content_type=kind)
    r = await client.post("/api/v1/attachments", data=form, headers=bearer(token))
    return r.status, await r.json()


async def test_upload_attach_to_a_notice_and_download(client: TestClient[Any, Any], city: City,
                                                      settings: Any) -> None:
    staff = await staff_login(client)
    status, body = await _upload(client, staff, PNG, "image/png")
    assert status == 201 and body["size"] == len(PNG) and body["url"].startswith("/api/v1/attachments/")
    again = await _upload(client, staff, PNG, "image/png")
    assert again[1]["url"] == body["url"]                            # stored once, by content
    unit = city.units[city.zones[0].id][0]
    r = await client.post("/api/v1/notices", headers=bearer(staff), json={
        "title": "附件通知", "audience": {"unit_ids": [unit.id]}, "attachments": [body]})
    assert r.status == 202
    await run_workers(settings)
    member = await wechat_login(client, city.members[unit.id][0].openid or "")
    inbox = await (await client.get("/api/v1/me/notices", headers=bearer(member))).json()
    assert inbox["items"][0]["attachments"][0]["url"] == body["url"]
    r = await client.get(body["url"], headers=bearer(member))
    assert r.status == 200 and await r.read() == PNG and r.headers["Content-Type"] == "image/png"
    assert (await client.get(body["url"])).status == 401


async def test_wrong_type_size_or_caller_is_refused(client: TestClient[Any, Any], city: City) -> None:
    staff = await staff_login(client)
    assert (await _upload(client, staff, b"MZ\x90\x00", "application/x-msdownload"))[1]["code"] == "attachment_rejected"
    status, body = await _upload(client, staff, PNG, "application/pdf")   # declared PDF, is a PNG
    assert (status, body["code"], body["reason"]) == (422, "attachment_rejected", "content_does_not_match_type")
    big = b"%PDF" + b"0" * (client.app[SETTINGS].attachment_max_bytes)
    status, body = await _upload(client, staff, big, "application/pdf")
    assert (status, body["code"]) == (413, "payload_too_large")
    member = await wechat_login(client, city.members[city.units[city.zones[0].id][0].id][0].openid or "")
    assert (await _upload(client, member, PNG, "image/png"))[0] == 403
    r = await client.get("/api/v1/attachments/" + "0" * 64, headers=bearer(member))
    assert r.status == 404 and (await r.json())["code"] == "attachment_not_found"
    r = await client.post("/api/v1/notices", headers=bearer(staff), json={
        "title": "x", "audience": {"all": True},
        "attachments": [{"name": "a", "url": "/etc/passwd", "size": 1, "content_type": "image/png"}]})
    assert r.status == 422
