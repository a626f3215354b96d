"""Service errors: a stable machine `code`, an HTTP status and a zh-CN message for people."""

from __future__ import annotations


class ServiceError(Exception):
    code = "bad_request"
    http_status = 400
    default_message = "请求无法处理"

    def __init__(self, message: str | None = None, **data: object) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.data = data

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, **self.data}


class NotAuthenticated(ServiceError):
    code, http_status, default_message = "not_authenticated", 401, "请先登录"


class TokenInvalid(ServiceError):
    code, http_status, default_message = "token_invalid", 401, "登录凭证无效或已过期，请重新登录"


class Forbidden(ServiceError):
    code, http_status, default_message = "forbidden", 403, "没有权限执行此操作"


class NotFound(ServiceError):
    code, http_status, default_message = "not_found", 404, "找不到该资源"


class Conflict(ServiceError):
    code, http_status, default_message = "conflict", 409, "数据冲突，请刷新后重试"


class RateLimited(ServiceError):
    code, http_status, default_message = "rate_limited", 429, "操作过于频繁，请稍后再试"


class InvalidInput(ServiceError):
    """A business-level validation failure that points at fields, shaped like a 422."""

    code, http_status, default_message = "invalid_request", 422, "请求内容不合法"


class Unavailable(ServiceError):
    code, http_status, default_message = "service_unavailable", 503, "服务暂不可用，请稍后再试"


class UpstreamError(ServiceError):
    code, http_status, default_message = "wechat_unavailable", 502, "微信服务暂不可用，请稍后再试"


class Busy(ServiceError):
    """Lost a race for a row lock; the request changed nothing and may be retried at once."""

    code, http_status, default_message = "busy", 409, "操作繁忙，请重试"


class ZoneNotFound(NotFound):
    code, default_message = "zone_not_found", "找不到指定的网络区"


class UnitNotFound(NotFound):
    code, default_message = "unit_not_found", "找不到指定的单位"


class IllegalTransition(ServiceError):
    code, http_status, default_message = "illegal_transition", 409, "当前状态下不能执行此操作"


class IdempotencyKeyReused(ServiceError):
    """The same Idempotency-Key with a different request: refused, nothing is done."""

    code, http_status, default_message = ("idempotency_key_reused", 409,
                                          "该 Idempotency-Key 已用于另一笔不同的请求，请换一个新的")
