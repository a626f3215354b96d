"""The pay API's error answers: an HTTP status and ``{"code": "...", "message": "..."}``."""

from __future__ import annotations

from typing import Any

__all__ = ["PayError", "order_not_exist", "order_paid", "param_error", "sign_error"]


class PayError(Exception):
    """An error answer of the pay API: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"code": self.code, "message": self.message}


def param_error(field: str, problem: str) -> PayError:
    """400 PARAM_ERROR naming the request field (``amount/total``) and its problem."""
    return PayError(400, "PARAM_ERROR", f"输入源“/body/{field}”映射到字段校验失败：{problem}")


def sign_error(message: str) -> PayError:
    """401 SIGN_ERROR: the request's Authorization is missing, malformed or wrong."""
    return PayError(401, "SIGN_ERROR", message)


def order_not_exist() -> PayError:
    """404 ORDER_NOT_EXIST."""
    return PayError(404, "ORDER_NOT_EXIST", "订单不存在")


def order_paid() -> PayError:
    """400 ORDERPAID: the order is paid, it can no longer be prepaid or closed."""
    return PayError(400, "ORDERPAID", "该订单已支付")
