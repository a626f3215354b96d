"""Routes: upload an attachment (notices, supervision reports), download it."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from server.keys import SETTINGS
from server.routing import Access, Router, invalid
from server.schemas.common import Out
from services import storage
from services.auth import Principal

router = Router()


class AttachmentOut(Out):
    name: str
    url: str
    size: int
    content_type: str


@router.route("POST", "/attachments", access=Access.UNIT_ADMIN, response=AttachmentOut, status=201,
              tags=["files"], errors=[storage.AttachmentRejected],
              request_content_type="multipart/form-data",
              summary="Upload an attachment (PDF, JPEG, PNG, DOCX, XLSX; size limited)")
async def upload(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    """Multipart field `file`. The answer's fields go as they are into a notice's `attachments`."""
    if not request.content_type.startswith("multipart/"):
        raise invalid(["body"], "expected multipart/form-data with a `file` field", "multipart")
    settings = request.app[SETTINGS]
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and part.name == "file":
            content = bytes(await part.read(decode=False))
            kind = (part.headers.get("Content-Type") or "").split(";")[0].strip()
            stored = storage.store(settings.files_dir, content=content, content_type=kind,
                                   max_bytes=settings.attachment_max_bytes)
            return {"name": (part.filename or stored.key)[:128],
                    "url": f"/api/v1/attachments/{stored.key}", "size": stored.size,
                    "content_type": stored.content_type}
    raise invalid(["body", "file"], "missing file", "missing")


@router.route("GET", "/attachments/{key:[0-9a-f]{64}}", access=Access.MEMBER, tags=["files"],
              errors=[storage.AttachmentNotFound], content_type="application/octet-stream",
              summary="Download an attachment")
async def download(request: web.Request, *, principal: Principal) -> web.StreamResponse:
    path, kind = storage.open_file(request.app[SETTINGS].files_dir, request.match_info["key"])
    return web.FileResponse(path, headers={"Content-Type": kind})
