"""The work ledger as an XLSX workbook: a first sheet with the year's figures, then a sheet per
section with Chinese headers and a totals row (合计); money in yuan, shares as percentages,
times in Asia/Shanghai. The year-end evaluation, when given, adds its sheets."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from services import clock

BOLD = Font(bold=True)
CITY_TITLES = {
    "party_lessons_held": "全年党课（场）", "party_lesson_attendee_times": "党课参加（人次）",
    "activities_held": "开展活动（场）", "attendee_times": "参加活动（人次）",
    "leaders": "领导干部（人）", "leaders_attending": "参加活动的领导干部（人）",
    "leader_participation": "领导干部参与率",
}


def _cell(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "fen":
        return value / 100
    if kind == "bool":
        return "是" if value else "否"
    if kind == "time":
        at = datetime.fromisoformat(value) if isinstance(value, str) else value
        return at.astimezone(clock.SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return value


def _format(kind: str) -> str | None:
    return {"fen": "#,##0.00", "share": "0.0%", "int": "0"}.get(kind)


def _title(column: dict[str, Any]) -> str:
    return column["title"].replace("（分）", "（元）")


def _sheet(wb: Workbook, title: str, columns: list[dict[str, Any]], rows: list[dict[str, Any]],
           totals: dict[str, Any] | None) -> None:
    ws = wb.create_sheet(title[:31])
    ws.append([_title(c) for c in columns])
    for cell in ws[1]:
        cell.font = BOLD
    for row in [*rows, *([totals] if totals else [])]:
        ws.append([_cell(c["kind"], row.get(c["key"])) for c in columns])
    if totals:
        for cell in ws[ws.max_row]:
            cell.font = BOLD
    for i, c in enumerate(columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(10, min(40, 2 * len(_title(c)) + 2))
        if fmt := _format(c["kind"]):
            for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = fmt
    ws.freeze_panes = "A2"


def workbook(book: dict[str, Any], evaluation: dict[str, Any] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "概况"
    ws.append(["年度", book["year"]])
    for key, title in CITY_TITLES.items():
        value = book["city"].get(key)
        ws.append([title, value])
        if key == "leader_participation":
            ws.cell(ws.max_row, 2).number_format = "0.0%"
    for z in book["city"].get("zones_outside_size", []):
        ws.append(["规模不在 8-10 家的网络区", f"{z['zone_name']}（{z['units']} 家）"])
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 24
    for section in book["sections"]:
        _sheet(wb, section["title"], section["columns"], section["rows"], section["totals"])
    if evaluation is not None:
        for part, title in (("zones", "年终考核（网络区）"), ("units", "年终考核（单位）")):
            columns = [{"key": "rank", "title": "名次", "kind": "int"},
                       {"key": "name", "title": "网络区" if part == "zones" else "单位", "kind": "text"},
                       {"key": "score", "title": "得分", "kind": "text"},
                       *({"key": m, "title": t, "kind": "share"}
                         for m, t in evaluation["metric_titles"].items())]
            rows = [{"rank": r["rank"], "name": r["name"], "score": r["score"],
                     **{m: r["metrics"][m]["value"] for m in evaluation["metric_titles"]}}
                    for r in evaluation[part]]
            _sheet(wb, title, columns, rows, None)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
