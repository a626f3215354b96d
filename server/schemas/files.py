"""Attachments: the one shape every domain takes and gives."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from server.schemas.common import In, Out
from services.storage import TYPES

STORED_URL = r"/api/v1/attachments/[0-9a-f]{64}"
# Controls (C0, C1) and every kind of space, spelled out: `\s` means different sets to ECMA (the
# spec's reader), Python and Rust (pydantic), e.g. only Rust counts U+0085 as a space.
NOT_IN_LINKS = (r"\u0000-\u0020\u007f-\u00a0\u1680\u180e\u2000-\u200b\u2028\u2029\u202f\u205f"
                r"\u3000\ufeff")


class AttachmentIn(In):
    """A file from `POST /api/v1/attachments` (its answer, as it is), or an external https link.
    For a stored file the server keeps its own size and type, whatever is sent."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    url: Annotated[str, StringConstraints(pattern=rf"^({STORED_URL}|https://[^{NOT_IN_LINKS}]{{1,500}})$")] = Field(
        description="from POST /api/v1/attachments, or an https:// link")
    size: int | None = Field(default=None, ge=0, le=1 << 40)
    content_type: Annotated[str, StringConstraints(pattern=r"^[\w.+-]{1,63}/[\w.+-]{1,63}$")] | None = None


Attachments = Annotated[list[AttachmentIn], Field(max_length=10, description="at most 10")]


class PhotoIn(AttachmentIn):
    """A picture: a file from `POST /api/v1/attachments` only (a link is no picture we can show)."""

    url: Annotated[str, StringConstraints(pattern=rf"^{STORED_URL}$")] = Field(
        description="from POST /api/v1/attachments; a JPEG or PNG by its first bytes")


Photos = Annotated[list[PhotoIn], Field(max_length=10, description="at most 10")]


class AttachmentOut(Out):
    name: str
    url: str
    size: int
    content_type: str = Field(description=f"stored files: one of {', '.join(sorted(TYPES))}")
