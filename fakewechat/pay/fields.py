"""Request field parsers of the pay API: a bad field is PayError 400 PARAM_ERROR naming it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fakewechat.pay.errors import param_error

__all__ = ["fen", "json_object", "optional_string", "optional_time", "string", "url"]

JSON = dict[str, Any]


def json_object(value: object, field: str) -> JSON:
    """``value`` if it is a JSON object (``field``: where it is, ``""`` for the body)."""
    if not isinstance(value, dict):
        raise param_error(field, "必须是JSON对象")
    return value


def string(
    obj: JSON,
    key: str,
    *,
    where: str = "",
    max_len: int = 128,
    pattern: re.Pattern[str] | None = None,
) -> str:
    """A required non-empty string of at most ``max_len`` characters matching ``pattern``.

    ``where``: the path of ``obj`` in the body (``amount/``), to name the field.
    """
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise param_error(where + key, "此字段为必填项，须为非空字符串")
    if len(value) > max_len:
        raise param_error(where + key, f"长度不能超过{max_len}")
    if pattern is not None and pattern.fullmatch(value) is None:
        raise param_error(where + key, "格式错误")
    return value


def optional_string(obj: JSON, key: str, *, where: str = "", max_len: int = 128) -> str | None:
    """Like :func:`string`, but absent or ``null`` is ``None``."""
    return None if obj.get(key) is None else string(obj, key, where=where, max_len=max_len)


def fen(obj: JSON, key: str, *, where: str = "") -> int:
    """A required amount in fen: an int (not a bool) of at least 1."""
    value = obj.get(key)
    if type(value) is not int or value < 1:
        raise param_error(where + key, "须为大于0的整数（单位：分）")
    return value


def url(obj: JSON, key: str) -> str:
    """A required http(s) URL of at most 255 characters."""
    value = string(obj, key, max_len=255)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise param_error(key, "须为http(s)地址")
    return value


def optional_time(obj: JSON, key: str) -> datetime | None:
    """An optional RFC3339 time with its offset."""
    value = optional_string(obj, key, max_len=64)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise param_error(key, "须为RFC3339时间，如2018-06-08T10:34:56+08:00")
    return moment
