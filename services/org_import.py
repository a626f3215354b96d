"""Import units or members from CSV or XLSX: all or nothing per file, with a row-by-row report.

Rows are matched on natural keys (a unit by name; a member by unit and phone), so importing
the same file again changes nothing. Headers may be English or Chinese. An accepted units file
answers `warnings` too: each zone holding units that is left outside 8-10 of them.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models.org import ImportRun, Member, Position, Role, Unit, Zone
from services import audit
from services.auth import sessions_changed
from services.errors import (
    ImportInvalid,
)
from services.messages import field_message
from services.partition import MAX_SIZE, MIN_SIZE

MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024

_Text64 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

HEADERS = {
    "units": {
        "name": "name", "单位名称": "name", "单位": "name",
        "zone": "zone", "网络区": "zone",
        "district": "district", "区县": "district", "所在区": "district",
        "nature": "nature", "单位性质": "nature", "性质": "nature",
        "member_count": "member_count", "党员数": "member_count", "党员人数": "member_count",
        "strength": "strength", "党建实力": "strength", "实力评分": "strength",
        "invite_code": "invite_code", "邀请码": "invite_code",
    },
    "members": {
        "unit": "unit", "单位": "unit", "单位名称": "unit",
        "name": "name", "姓名": "name",
        "phone": "phone", "手机": "phone", "手机号": "phone",
        "role": "role", "角色": "role",
        "position": "position", "职务": "position", "党内职务": "position",
        "openid": "openid",
    },
}
ROLE_ALIASES = {"": "member", "member": "member", "党员": "member", "unit_admin": "unit_admin",
                "管理员": "unit_admin", "单位管理员": "unit_admin"}
POSITION_ALIASES = {"": "member", "member": "member", "党员": "member",
                    "secretary": "secretary", "书记": "secretary", "支部书记": "secretary",
                    "deputy_secretary": "deputy_secretary", "副书记": "deputy_secretary",
                    "committee_member": "committee_member", "委员": "committee_member",
                    "支委": "committee_member", "支部委员": "committee_member"}


class _Row(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")


class UnitRow(_Row):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    zone: _Text64
    district: Annotated[str, StringConstraints(max_length=64)] = ""
    nature: Annotated[str, StringConstraints(max_length=64)] = ""
    member_count: int = Field(default=0, ge=0, le=1_000_000)
    strength: int = Field(default=50, ge=0, le=100)
    invite_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{4,32}$")] | None = None


class MemberRow(_Row):
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    name: _Text64
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9-]{5,20}$")]
    role: Literal["member", "unit_admin"] = "member"
    position: Literal["member", "secretary", "deputy_secretary", "committee_member"] | None = Field(
        default=None, description="no column or empty: a new member is a plain member, an existing one keeps theirs")
    openid: Annotated[str, StringConstraints(max_length=64)] | None = None


@dataclass
class Report:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row: int, field_name: str | None, msg: str, type_: str = "import_row") -> None:
        self.errors.append(row_error(row, field_name, msg, type_))


def row_error(row: int, field_name: str | None, msg: str, type_: str = "import_row") -> dict[str, Any]:
    """The one 422 error item shape: `loc` is ["file", row, field] (row 1 is the header)."""
    return {"loc": ["file", row, *([field_name] if field_name else [])], "msg": msg, "type": type_}


def read_table(filename: str, content: bytes) -> list[dict[str, str]]:
    """Rows of the first sheet (XLSX) or of the CSV, keyed by the raw header."""
    if len(content) > MAX_BYTES:
        raise ImportInvalid("文件超过 5 MB", errors=[row_error(0, None, "文件超过 5 MB", "too_large")])
    if filename.lower().endswith(".xlsx") or content[:2] == b"PK":
        return _read_xlsx(content)
    return _read_csv(content)


def _read_csv(content: bytes) -> list[dict[str, str]]:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in zh-CN saves CSV as GBK
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportInvalid("无法识别文件编码", errors=[row_error(0, None, "请使用 UTF-8 或 GBK 编码的 CSV", "encoding")])
    reader = csv.DictReader(io.StringIO(text))
    return [{(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in r.items()}
            for r in reader]


def _read_xlsx(content: bytes) -> list[dict[str, str]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file
        raise ImportInvalid("无法读取 XLSX 文件", errors=[row_error(0, None, "不是有效的 XLSX 文件", "xlsx")]) from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        out = []
        for values in rows:
            if values is None or all(v is None or str(v).strip() == "" for v in values):
                continue
            out.append({header[i]: _cell(v) for i, v in enumerate(values) if i < len(header)})
        return out
    finally:
        wb.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def detect_kind(rows: list[dict[str, str]]) -> str | None:
    if not rows:
        return None
    keys = set(rows[0])
    for kind in ("members", "units"):
        mapped = {HEADERS[kind].get(k) for k in keys}
        if kind == "members" and {"unit", "name", "phone"} <= mapped:
            return kind
        if kind == "units" and {"name", "zone"} <= mapped:
            return kind
    return None


def _normalise(kind: str, raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in raw.items():
        name = HEADERS[kind].get(k) or HEADERS[kind].get(k.lower())
        if name:
            out[name] = v if v != "" or name in {"name", "zone", "unit", "phone"} else None
    if kind == "members":
        out["role"] = ROLE_ALIASES.get((out.get("role") or "").lower(), out.get("role"))
        if out.get("position") is not None:
            out["position"] = POSITION_ALIASES.get(out["position"].lower(), out["position"])
    return {k: v for k, v in out.items() if v is not None}


def _validate(kind: str, rows: list[dict[str, str]], report: Report) -> list[tuple[int, Any]]:
    model = UnitRow if kind == "units" else MemberRow
    valid: list[tuple[int, Any]] = []
    for i, raw in enumerate(rows, start=2):
        try:
            valid.append((i, model.model_validate(_normalise(kind, raw))))
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                report.error(i, ".".join(str(p) for p in err["loc"]) or None, field_message(err),
                             err["type"])
    return valid


async def import_table(*, filename: str, content: bytes, kind: str | None,
                       by_member_id: int | None) -> Report:
    rows = await asyncio.to_thread(read_table, filename, content)  # XLSX parsing: off the loop
    kind = kind or detect_kind(rows)
    if kind not in HEADERS:
        raise ImportInvalid("无法判断导入类型，请指定 kind=units 或 kind=members",
                            errors=[row_error(1, None, "无法识别的表头", "unknown_columns")])
    report = Report(kind=kind, rows=len(rows))
    if not rows:
        report.error(1, None, "文件中没有数据行")
    if len(rows) > MAX_ROWS:
        report.error(0, None, f"超过 {MAX_ROWS} 行")
    valid = _validate(kind, rows, report) if not report.errors else []
    async with in_transaction():
        if kind == "units":
            await _apply_units(valid, report)
        else:
            await _apply_members(valid, report, by_member_id)
        if report.errors:
            # Raising inside the transaction rolls back everything this file touched.
            raise ImportInvalid(errors=report.errors[:500], error_count=len(report.errors),
                                rows=report.rows)
        if kind == "units":
            report.warnings = await zone_size_warnings()
        if report.created or report.updated:
            await ImportRun.create(kind=kind, filename=filename[:255],
                                   sha256=hashlib.sha256(content).hexdigest(), rows=report.rows,
                                   created=report.created, updated=report.updated,
                                   unchanged=report.unchanged, by_id=by_member_id)
    if report.updated:
        await sessions_changed()  # names, roles, positions of members already there
    return report


async def _apply_units(valid: list[tuple[int, UnitRow]], report: Report) -> None:
    seen: dict[str, int] = {}
    for row_no, row in valid:
        if row.name in seen:
            report.error(row_no, "name", f"与第 {seen[row.name]} 行重复", "duplicate")
        seen[row.name] = row_no
    zones = {z.name: z for z in await Zone.filter(name__in={r.zone for _, r in valid})}
    units = {u.name: u for u in await Unit.filter(name__in=list(seen))}
    codes = {r.invite_code: n for n, r in valid if r.invite_code}
    taken = {u.invite_code: u.name for u in await Unit.filter(invite_code__in=list(codes))}
    for row_no, row in valid:
        if row.invite_code and taken.get(row.invite_code, row.name) != row.name:
            report.error(row_no, "invite_code", "邀请码已被其他单位使用", "taken")
    if report.errors:
        return
    for _, row in valid:
        zone = zones.get(row.zone)
        if zone is None:
            zone = zones[row.zone] = await Zone.create(name=row.zone)
        unit = units.get(row.name)
        values = {"zone_id": zone.id, "district": row.district, "nature": row.nature,
                  "member_count": row.member_count, "strength": row.strength}
        if row.invite_code:
            values["invite_code"] = row.invite_code
        if unit is None:
            values.setdefault("invite_code", new_invite_code())
            await Unit.create(name=row.name, **values)
            report.created += 1
            continue
        changed = {k: v for k, v in values.items() if getattr(unit, k) != v}
        if not changed:
            report.unchanged += 1
            continue
        if "zone_id" in changed:
            changed["duty_order"] = None  # a re-partitioned unit joins its new zone's order
        await Unit.filter(id=unit.id).update(**changed)
        report.updated += 1


async def zone_size_warnings() -> list[dict[str, Any]]:
    """Zones holding units whose number is outside 8-10 (the rule of the zones)."""
    sizes = Counter(await Unit.filter(zone_id__isnull=False).values_list("zone_id", flat=True))
    names = dict(await Zone.filter(id__in=list(sizes)).values_list("id", "name"))
    return [{"code": "zone_size", "zone_id": z, "zone_name": names[z], "units": n,
             "message": f"网络区“{names[z]}”有 {n} 个单位，不在 {MIN_SIZE} 至 {MAX_SIZE} 个之间"}
            for z, n in sorted(sizes.items()) if not MIN_SIZE <= n <= MAX_SIZE]


async def _apply_members(valid: list[tuple[int, MemberRow]], report: Report,
                         by_member_id: int | None) -> None:
    unit_rows = await Unit.filter(name__in={r.unit for _, r in valid})
    units = {u.name: u.id for u in unit_rows}
    zones = {u.id: u.zone_id for u in unit_rows}
    seen: dict[tuple[str, str], int] = {}
    openids: dict[str, int] = {}
    for row_no, row in valid:
        if row.unit not in units:
            report.error(row_no, "unit", f"找不到单位“{row.unit}”", "unknown_unit")
        if (row.unit, row.phone) in seen:
            report.error(row_no, "phone", f"与第 {seen[(row.unit, row.phone)]} 行重复", "duplicate")
        seen[(row.unit, row.phone)] = row_no
        if row.openid:
            if row.openid in openids:
                report.error(row_no, "openid", f"与第 {openids[row.openid]} 行重复", "duplicate")
            openids[row.openid] = row_no
    if report.errors:
        return
    existing = {(m.unit_id, m.phone): m for m in await Member.filter(
        unit_id__in=list(units.values()), phone__in=list({r.phone for _, r in valid}))}
    bound = {m.openid: m for m in await Member.filter(openid__in=list(openids))}
    for row_no, row in valid:
        holder = bound.get(row.openid) if row.openid else None
        current = existing.get((units[row.unit], row.phone))
        if holder is not None and (current is None or holder.id != current.id):
            report.error(row_no, "openid", "该 openid 已绑定其他党员", "taken")
    if report.errors:
        return
    to_create = []
    for _, row in valid:
        unit_id = units[row.unit]
        current = existing.get((unit_id, row.phone))
        if current is None:
            to_create.append(Member(unit_id=unit_id, name=row.name, phone=row.phone,
                                    role=Role(row.role), position=Position(row.position or "member"),
                                    openid=row.openid or None))
            continue
        changed: dict[str, Any] = {}
        if current.name != row.name:
            changed["name"] = row.name
        if current.role.value != row.role:
            changed["role"] = Role(row.role)
            changed["token_version"] = F("token_version") + 1  # a role change revokes tokens
            await audit.record(by_member_id, "member.role_changed", "member", current.id,
                               zone_id=zones.get(unit_id), source="import",
                               before=current.role, after=row.role)
        if row.position is not None and current.position.value != row.position:
            changed["position"] = Position(row.position)
        if row.openid and current.openid != row.openid:
            changed["openid"] = row.openid
        if changed:
            await Member.filter(id=current.id).update(**changed)
            report.updated += 1
        else:
            report.unchanged += 1
    if to_create:
        await Member.bulk_create(to_create, batch_size=1000)
        report.created += len(to_create)


def new_invite_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))
