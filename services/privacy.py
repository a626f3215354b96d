"""Personal data (个人信息保护法): who sees a member's phone number in full.

A phone is shown whole to the member, their unit's admin and the committee; everyone else (a
liaison, another member, the audit log read by a liaison) sees 138****1234.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.auth import Principal


def mask_phone(phone: str | None) -> str | None:
    """138****1234: the carrier prefix and the last four digits, enough to tell two people apart."""
    if not phone:
        return phone
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def sees_phone(viewer: Principal | None, *, member_id: int, unit_id: int | None) -> bool:
    """None: the system itself (jobs, the member's own session)."""
    if viewer is None or viewer.member_id == member_id or viewer.is_committee:
        return True
    return viewer.is_unit_admin and unit_id is not None and viewer.unit_id == unit_id


def phone_for(viewer: Principal | None, *, member_id: int, unit_id: int | None, phone: str | None) -> str | None:
    return phone if sees_phone(viewer, member_id=member_id, unit_id=unit_id) else mask_phone(phone)


def mask_phones_in(value: Any) -> Any:
    """A JSON value with every `phone` entry masked (audit details read outside the committee)."""
    if isinstance(value, dict):
        return {k: mask_phone(v) if k == "phone" and isinstance(v, str) else mask_phones_in(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_phones_in(v) for v in value]
    return value
