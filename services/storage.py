"""Attachment storage on a directory (ZONEHUB_STORAGE_DIR): content-addressed, type and size
checked. Files are named by their SHA-256, so the same file stored twice is one file."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from services.errors import AttachmentNotFound, AttachmentRejected

TYPES = {
    "application/pdf": b"%PDF",
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": b"PK\x03\x04",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": b"PK\x03\x04",
}
KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    content_type: str


EXTENSIONS = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".png": "image/png", ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def sniff(content: bytes, filename: str | None) -> str | None:
    """The type of an upload that did not say (no Content-Type, or octet-stream): the first bytes,
    and the extension where two types share them (DOCX and XLSX are both ZIP files)."""
    by_name = EXTENSIONS.get(os.path.splitext(filename or "")[1].lower())
    if by_name is not None and content.startswith(TYPES[by_name]):
        return by_name
    matching = {t for t, magic in TYPES.items() if content.startswith(magic)}
    return matching.pop() if len(matching) == 1 else None


def store(root: Path, *, content: bytes, content_type: str, max_bytes: int,
          filename: str | None = None) -> Stored:
    """Check the declared (or sniffed) type against the file's first bytes, and the size; then
    write once."""
    if content_type not in TYPES and content_type in ("", "application/octet-stream"):
        content_type = sniff(content, filename) or content_type
    magic = TYPES.get(content_type)
    if magic is None:
        raise AttachmentRejected(reason="type", allowed=sorted(TYPES))
    if not content or len(content) > max_bytes:
        raise AttachmentRejected(reason="size", max_bytes=max_bytes)
    if not content.startswith(magic):
        raise AttachmentRejected(reason="content_does_not_match_type")
    key = hashlib.sha256(content).hexdigest()
    path = root / key[:2] / key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        path.with_suffix(".type").write_text(content_type)
    return Stored(key=key, size=len(content), content_type=content_type)


async def store_async(root: Path, *, content: bytes, content_type: str, max_bytes: int,
                      filename: str | None = None) -> Stored:
    """`store` in a thread: hashing and writing 20 MB must not stall the event loop."""
    return await asyncio.to_thread(store, root, content=content, content_type=content_type,
                                   max_bytes=max_bytes, filename=filename)


def open_file(root: Path, key: str) -> tuple[Path, str]:
    if not KEY.match(key):
        raise AttachmentNotFound()
    path = root / key[:2] / key
    if not path.exists():
        raise AttachmentNotFound()
    kind = path.with_suffix(".type")
    return path, kind.read_text() if kind.exists() else "application/octet-stream"


IMAGES = ("image/jpeg", "image/png")


def is_image(root: Path, key: str) -> bool:
    """Whether the stored file is a JPEG or PNG image, by its own first bytes (not by what its
    uploader declared)."""
    path, _ = open_file(root, key)
    with path.open("rb") as f:
        head = f.read(8)
    return any(head.startswith(TYPES[t]) for t in IMAGES)
