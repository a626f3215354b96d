"""Field messages in Chinese for pydantic's error types (`errors[].msg` of a 422), like the
top-level message. The machine-readable `type` stays pydantic's."""

from __future__ import annotations

from typing import Any

_TEMPLATES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_type": "应为布尔值 true 或 false",
    "bool_parsing": "应为布尔值 true 或 false",
    "string_type": "应为字符串",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "none_required": "应为 null",
    "string_too_short": "长度不能少于 {min_length} 个字符",
    "string_too_long": "长度不能超过 {max_length} 个字符",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "必须大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "less_than": "必须小于 {lt}",
    "multiple_of": "须为 {multiple_of} 的整数倍",
    "literal_error": "取值须为以下之一：{expected}",
    "enum": "取值须为以下之一：{expected}",
    "string_pattern_mismatch": "格式不正确",
    "datetime_type": "应为带时区偏移的 ISO 8601 时间，如 2026-12-01T09:00:00+08:00",
    "datetime_parsing": "应为带时区偏移的 ISO 8601 时间，如 2026-12-01T09:00:00+08:00",
    "datetime_from_date_parsing": "应为带时区偏移的 ISO 8601 时间，如 2026-12-01T09:00:00+08:00",
    "timezone_aware": "时间须带时区偏移，如 +08:00",
    "date_type": "应为日期，如 2026-12-01",
    "date_parsing": "应为日期，如 2026-12-01",
    "date_from_datetime_parsing": "应为日期，如 2026-12-01",
    "date_from_datetime_inexact": "应为日期，如 2026-12-01",
    "json_invalid": "不是合法的 JSON",
    "json_type": "不是合法的 JSON",
    "union_tag_invalid": "类型不正确",
}


def field_message(err: dict[str, Any]) -> str:
    """The Chinese message of one pydantic error (our own validators raise Chinese text)."""
    ctx = err.get("ctx") or {}
    if err["type"] in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    template = _TEMPLATES.get(err["type"])
    if template is None:
        return "格式不正确"
    try:
        return template.format(**{k: v for k, v in ctx.items()})
    except (KeyError, IndexError):
        return template.split("：")[0].split("{")[0].rstrip("，") or "格式不正确"
