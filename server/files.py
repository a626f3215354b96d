"""Routes: upload an attachment (notices, ledger lines, supervision, activity records), download it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.keys import SETTINGS
from server.routing import (
    Access,
    MultipartInvalid,
    PayloadTooLarge,
    Router,
    invalid,
    read_multipart,
)
from server.schemas.files import AttachmentOut
from services import files, storage
from services.auth import Principal

router = Router()


@router.route("POST", "/attachments", access=Access.UNIT_ADMIN, response=AttachmentOut, status=201,
              tags=["files"],
              errors=[storage.AttachmentRejected, MultipartInvalid, PayloadTooLarge],
              form={"type": "object", "required": ["file"], "properties": {"file": {
                  "type": "string", "format": "binary", "description": "the file, with a filename; "
                  "its type from the part's Content-Type or else its first bytes and extension"}}},
              summary="Upload an attachment (PDF, JPEG, PNG, DOCX, XLSX; size limited)")
async def upload(request: web.Request, *, principal: Principal) -> dict[str, Any]:
    """Multipart field `file`. The answer goes as it is into an `attachments` list; the file is
    then served to whoever may see what it is attached to (and to the uploader's unit admins)."""
    settings = request.app[SETTINGS]
    parts = await read_multipart(request, max_bytes=settings.attachment_max_bytes)
    part = parts.get("file")
    if part is None or not part.filename:
        raise invalid(["body", "file"], "缺少文件", "missing")
    stored = await storage.store_async(settings.files_dir, content=part.content,
                                       content_type=part.content_type, filename=part.filename,
                                       max_bytes=settings.attachment_max_bytes)
    return asdict(await files.record_upload(principal, stored=stored, name=part.filename))


@router.route("GET", "/attachments/{key:[0-9a-f]{64}}", access=Access.MEMBER, tags=["files"],
              errors=[storage.AttachmentNotFound], content_type="application/octet-stream",
              summary="Download an attachment (whoever may see what it is attached to)")
async def download(request: web.Request, *, principal: Principal) -> web.StreamResponse:
    found = await files.open_for(principal, root=request.app[SETTINGS].files_dir,
                                 key=request.match_info["key"])
    return web.FileResponse(found.path, headers={
        "Content-Type": found.content_type, "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.name, safe='')}",
        "Cache-Control": "private, max-age=300"})
