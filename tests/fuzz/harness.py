"""Schemathesis against the live app, once per role: the city it needs, the runs, the report.

Used by tests/fuzz/test_schemathesis.py (the suite, a small budget) and scripts/fuzz (longer).
Each role gets its own schemathesis run with every built-in check, positive and negative data,
all phases (examples, coverage, fuzzing, stateful). Findings are deduplicated on (role,
operation, check, status, the server's error code) and printed with a reproduction: method,
path, body (and a curl command in the JSON report). Failures that are not bugs are listed in
KNOWN_FALSE_POSITIVES, each with its reason, and printed apart instead of counted.

ZONEHUB_FUZZ_EXAMPLES: examples per operation and phase (default DEFAULT_EXAMPLES);
ZONEHUB_FUZZ_SEED: Hypothesis' seed (default: fixed, so runs repeat);
ZONEHUB_FUZZ_ROLES: only these roles (comma-separated names).
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import schemathesis
from aiohttp.test_utils import TestClient
from schemathesis.engine import events, from_schema

from models.org import Rotation
from services import clock
from tests.support import City, bearer, staff_login, wechat_login

EXAMPLES_ENV = "ZONEHUB_FUZZ_EXAMPLES"
SEED_ENV = "ZONEHUB_FUZZ_SEED"
ROLES_ENV = "ZONEHUB_FUZZ_ROLES"
DEFAULT_EXAMPLES = 10
DEFAULT_SEED = 20240601
API = "/api/v1"

# Operations no role's main run sends, each with its reason. Nothing else is left out.
LOGOUT = "/api/v1/auth/logout"
EXCLUDED: dict[str, str] = {
    # Revokes the token of the request: run on its own with a throwaway token per role
    # (see `fuzz_role`), so the role's other operations keep a live token.
    LOGOUT: "revokes the caller's token; fuzzed separately with a throwaway token",
}


@dataclass(frozen=True)
class Known:
    """A failure schemathesis reports that is not a bug: the check on the operation, when the
    answer carries this error `code` (None: any answer) and, if given, this text. Listed, never
    silently dropped: the summary prints what each entry discounted."""

    check: str
    operation: str
    code: str | None
    why: str
    text: str | None = None
    when: Callable[[Finding], bool] | None = None  # and only when this holds of the failure


def _padded_text(finding: Finding) -> bool:
    """The request held a string with spaces at either end (in its body or its query)."""
    return bool(re.search(r'"\s|\s"|=(%20|\+)|(%20|\+)(&|$)', f"{finding.body or ''} {finding.path}"))


_RULE = "a business rule on the server's clock or its data, which no JSON Schema can state"
KNOWN_FALSE_POSITIVES: list[Known] = [
    Known("positive_data_acceptance", "POST /api/v1/auth/wechat", "wechat_code_invalid",
          "a wx.login code is a one-time credential from WeChat; a schema cannot make a real one"),
    Known("positive_data_acceptance", "POST /api/v1/auth/bind", "bind_ticket_invalid",
          "a bind ticket is a one-time credential the server issued"),
    Known("positive_data_acceptance", "POST /api/v1/console/tickets/{ticket}/confirm",
          "console_ticket_invalid",
          "a console login ticket is a one-time credential the console's login page issued"),
    Known("positive_data_acceptance", "POST /api/v1/org/import", "import_invalid",
          "the rows inside the CSV/XLSX file are not described by the multipart schema"),
    Known("positive_data_acceptance", "POST /api/v1/attachments", "multipart_invalid",
          "the schema allows any part name; a control character in a part header is broken "
          "multipart, which no JSON Schema can rule out"),
    Known("positive_data_acceptance", "POST /api/v1/org/import", "multipart_invalid",
          "as for POST /attachments"),
    Known("positive_data_acceptance", "POST /api/v1/attachments", "attachment_rejected",
          "a file is typed by its first bytes (PDF, JPEG, PNG, DOCX, XLSX); `format: binary` says "
          "nothing of a file's content"),
    Known("positive_data_acceptance", "POST /api/v1/org/import", "invalid_request",
          "an empty file part is no file; `format: binary` allows zero bytes", "缺少文件"),
    Known("positive_data_acceptance", "POST /api/v1/practices", "not_an_image",
          "a photo is a stored file typed by its first bytes (JPEG, PNG); the schema can say "
          "'stored', not what the bytes are"),
    Known("positive_data_acceptance", "PUT /api/v1/activities/{activity_id}/record", "not_an_image",
          "as for POST /practices"),
    Known("positive_data_acceptance", "POST /api/v1/activities", "invalid_request", _RULE,
          "不能晚于"),  # time windows defaulted from the start or from now
    Known("positive_data_acceptance", "PATCH /api/v1/activities/{activity_id}", "invalid_request",
          _RULE, "不能晚于"),
    Known("positive_data_acceptance", "POST /api/v1/campaigns", "invalid_request", _RULE,
          "须晚于现在"),
    Known("positive_data_acceptance", "POST /api/v1/supervision-items", "invalid_request", _RULE,
          "须晚于现在"),
    Known("positive_data_acceptance", "POST /api/v1/notices", "invalid_request", _RULE,
          "须晚于现在"),
    Known("positive_data_acceptance", "POST /api/v1/campaigns/{campaign_id}/offline-contributions",
          "invalid_request", _RULE, "不能晚于今天"),
    Known("positive_data_acceptance", "POST /api/v1/zones/{zone_id}/fund-entries",
          "invalid_request", _RULE, "不能晚于今天"),
    Known("positive_data_acceptance", "POST /api/v1/campaigns/{campaign_id}/offline-contributions",
          "invalid_request", _RULE, "member_not_in_unit"),
    Known("positive_data_acceptance", "POST /api/v1/campaigns/{campaign_id}/contributions",
          "amount_out_of_range", "each drive sets its own min and max amount"),
    Known("positive_data_acceptance", "POST /api/v1/activities/{activity_id}/rounds/preliminary",
          "invalid_request", _RULE, "score every entry"),
    Known("positive_data_acceptance", "POST /api/v1/activities/{activity_id}/rounds/final",
          "invalid_request", _RULE, "score every entry"),
    Known("positive_data_acceptance", "PUT /api/v1/zones/{zone_id}/duty-order", "invalid_request",
          _RULE, "全部单位"),  # every unit of the zone, each once
    Known("positive_data_acceptance", "POST /api/v1/zones/{zone_id}/duty-change",
          "unit_not_in_zone", _RULE),
    Known("positive_data_acceptance", "POST /api/v1/zones/{zone_id}/fund-entries",
          "unit_not_in_zone", _RULE),
    Known("positive_data_acceptance", "GET /api/v1/ledger", "unit_not_in_zone", _RULE),
    Known("positive_data_acceptance", "POST /api/v1/meetings/{meeting_id}/deployments", "no_units",
          _RULE + " (a zone at the meeting has no next duty unit yet)"),
    Known("positive_data_acceptance", "POST /api/v1/rotations/generate", "year_out_of_range",
          "the allowed years move with the current year (this year - 5 to + 10)"),
    Known("positive_data_acceptance", "GET /api/v1/rotation-plans/{year}", "year_out_of_range",
          "as for POST /rotations/generate"),
    Known("positive_data_acceptance", "POST /api/v1/rotation-plans/{year}/confirm",
          "year_out_of_range", "as for POST /rotations/generate"),
    Known("positive_data_acceptance", "POST /api/v1/partitions", "partition_infeasible", _RULE
          + " (whether the city's units fit that many zones of 8-10)"),
    Known("positive_data_acceptance", "POST /api/v1/partitions/{partition_id}/apply",
          "quarter_started", _RULE + " (the quarter must not have started)"),
    Known("positive_data_acceptance", "POST /api/v1/partitions/{partition_id}/apply",
          "year_out_of_range", "as for POST /rotations/generate"),
    # Rules on values JSON Schema has no words for, on every operation ("*").
    Known("positive_data_acceptance", "*", "invalid_request",
          "instants and days lie in 2000-2100 (said in each field's description): `format: "
          "date-time` has no range, and a pattern beside it would starve the generator",
          "须在 2000 年至 2100 年之间"),
    Known("positive_data_acceptance", "*", "invalid_request",
          "a time's offset is whole minutes within ±14:00, as real zones are; `format: date-time` "
          "allows any", "时区偏移"),
    Known("positive_data_acceptance", "*", "invalid_request",
          "text is trimmed before its length is checked (' 2' is one character); JSON Schema "
          "counts the spaces", "string_too_short", when=_padded_text),
    Known("ensure_resource_availability", "POST /api/v1/notices", "notice_not_found",
          "schemathesis links POST /notices to POST /notices/{id}/read, a recipient's action: "
          "the sender is not a recipient, and the worker that delivers does not run here"),
    Known("use_after_free", "DELETE /api/v1/activities/{activity_id}/signup", None,
          "cancelling my sign-up deletes nothing: the activity stays, and its sign-up list "
          "(GET .../signups) rightly goes on showing the cancelled one"),
]


def known_reason(finding: Finding) -> str | None:
    """Why this failure is a known false positive, or None when it counts."""
    try:
        code = json.loads(finding.answer or "").get("code")
    except (ValueError, AttributeError):
        code = None
    for known in KNOWN_FALSE_POSITIVES:
        if (known.check == finding.check and known.operation in ("*", finding.operation)
                and known.code in (None, code)
                and (known.text is None or known.text in (finding.answer or ""))
                and (known.when is None or known.when(finding))):
            return known.why
    return None


def examples_budget() -> int:
    return int(os.environ.get(EXAMPLES_ENV) or DEFAULT_EXAMPLES)


def timeout_s() -> int:
    """A hang guard for the whole test, growing with the budget (a 50-example run on
    PostgreSQL takes about half an hour)."""
    return 900 + 120 * examples_budget()


def seed() -> int:
    return int(os.environ.get(SEED_ENV) or DEFAULT_SEED)


# -- the world the runs see ---------------------------------------------------------------------

@dataclass
class Role:
    name: str
    token: str | None                 # None: anonymous
    logout_token: str | None = None   # a second token of the same person, for /auth/logout


@dataclass
class World:
    city: City
    roles: list[Role]
    notes: dict[str, Any] = field(default_factory=dict)


async def build_world(client: TestClient[Any, Any]) -> World:
    """The City, this year's rotations, one of each resource (so id 1 and friends exist), and a
    token for each role. The roles come in the order they are fuzzed: the committee last,
    because its run changes duty units, closes campaigns and imports rows."""
    city = await City.build()
    staff = await staff_login(client)
    year, quarter = clock.quarter_of(clock.now())
    for y in (year, year + 1):
        r = await client.post(f"{API}/rotations/generate", json={"year": y}, headers=bearer(staff))
        assert r.status == 200, await r.text()

    zone = city.zones[0]
    rotation = await Rotation.get(zone_id=zone.id, year=year, quarter=quarter)
    units = city.units[zone.id]
    duty_unit = next(u for u in units if u.id == rotation.unit_id)  # type: ignore[attr-defined]
    other_unit = next(u for u in units if u.id != duty_unit.id)

    def openid(member: Any) -> str:
        return str(member.openid)

    async def member_tokens(m: Any) -> tuple[str, str]:
        return await wechat_login(client, openid(m)), await wechat_login(client, openid(m))

    duty = await member_tokens(city.admins[duty_unit.id])
    admin = await member_tokens(city.admins[other_unit.id])
    member = await member_tokens(city.members[other_unit.id][0])
    staff_logout = await staff_login(client)

    notes = await _seed(client, city, staff=staff, duty=duty[0], member=member[0])
    notes.update(zone_id=zone.id, duty_unit_id=duty_unit.id, admin_unit_id=other_unit.id,
                 rotation_id=rotation.id)
    roles = [Role("anonymous", None), Role("member", *member), Role("unit_admin", *admin),
             Role("duty_admin", *duty), Role("committee", staff, staff_logout)]
    return World(city=city, roles=roles, notes=notes)


def selected(roles: list[Role]) -> list[Role]:
    """The roles ZONEHUB_FUZZ_ROLES names (all when unset), in their order."""
    wanted = [n.strip() for n in os.environ.get(ROLES_ENV, "").split(",") if n.strip()]
    unknown = set(wanted) - {r.name for r in roles}
    assert not unknown, f"{ROLES_ENV}: unknown roles {sorted(unknown)}"
    return [r for r in roles if r.name in wanted] if wanted else roles


async def _post(client: TestClient[Any, Any], path: str, token: str, body: dict[str, Any],
                *, key: bool = False) -> dict[str, Any]:
    headers = bearer(token)
    if key:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    r = await client.post(API + path, json=body, headers=headers)
    assert r.status in (200, 201, 202), f"seeding POST {path}: {r.status} {await r.text()}"
    return dict(await r.json())


async def _seed(client: TestClient[Any, Any], city: City, *, staff: str, duty: str,
                member: str) -> dict[str, Any]:
    """One of each kind of resource, so that small ids (the coverage phase tries 1) exist."""
    now = clock.now()
    today = now.astimezone(clock.SHANGHAI).date().isoformat()
    zone = city.zones[0]
    unit = city.units[zone.id][0]
    start = now + timedelta(days=2)
    activity = await _post(client, "/activities", duty, {
        "zone_id": zone.id, "kind": "party_lesson", "title": "学习", "place": "会议室",
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()})
    await _post(client, f"/activities/{activity['id']}/signup", member, {})
    campaign = await _post(client, "/campaigns", staff, {
        "title": "特殊党费", "kind": "special_dues", "target_fen": 1_000_000,
        "ends_at": (now + timedelta(days=3)).isoformat()})
    await _post(client, f"/campaigns/{campaign['id']}/contributions", member,
                {"amount_fen": 100}, key=True)
    await _post(client, f"/campaigns/{campaign['id']}/offline-contributions", staff, {
        "unit_id": unit.id, "amount_fen": 500, "channel": "cash", "receipt_no": "R-1",
        "received_on": today}, key=True)
    notice = await _post(client, "/notices", staff, {
        "title": "通知", "body": "内容", "audience": {"all": True}})
    item = await _post(client, "/supervision-items", staff, {
        "title": "督办", "due_at": (now + timedelta(days=7)).isoformat(), "unit_ids": [unit.id]})
    entry = await _post(client, f"/zones/{zone.id}/fund-entries", staff, {
        "direction": "income", "category": "other_income", "amount_fen": 10_000,
        "description": "社会捐赠", "occurred_on": today}, key=True)
    return {"activity_id": activity["id"], "campaign_id": campaign["id"], "notice_id": notice["id"],
            "item_id": item["id"], "entry_id": entry.get("id")}


# -- running schemathesis -----------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    role: str
    operation: str      # "POST /api/v1/..."
    check: str          # the schemathesis check's name
    title: str          # the failure's title (what kind of failure)
    status: int | None  # the answer's status, None for a network error
    method: str
    path: str
    body: str | None    # the request body as sent (text, cut), None when there was none
    message: str
    answer: str | None  # the response body (cut)
    curl: str

    @property
    def reason(self) -> str:
        """What the server said, as `code` and the types of its field errors (when JSON)."""
        try:
            answer = json.loads(self.answer or "")
        except ValueError:
            return ""
        if not isinstance(answer, dict):
            return ""
        types = sorted({str(e.get("type")) for e in answer.get("errors") or []
                        if isinstance(e, dict) and e.get("type")})
        return str(answer.get("code", "")) + (f" ({', '.join(types)})" if types else "")

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.role, self.operation, self.check, self.status, self.title, self.reason)


def _config(base_url: str, role: Role, *, examples: int, run_seed: int,
            operations: list[dict[str, Any]], stateful: bool = True) -> schemathesis.Config:
    data: dict[str, Any] = {
        "base-url": base_url,
        "seed": run_seed,
        "cache": {"enabled": False},                          # no files under the work tree
        "suppress-health-check": ["all"],                     # small budgets trip them for nothing
        "continue-on-failure": True,                          # every failing check, not the first
        "request-timeout": 30,
        "generation": {"mode": "all", "max-examples": examples, "database": "none"},
        "checks": {"enabled": True},                          # = `--checks all`
        "phases": {"stateful": {"enabled": stateful, "max-steps": max(2, examples)}},
        "operations": operations,
    }
    if role.token is not None:
        data["auth"] = {"openapi": {"bearer": {"bearer": role.token}}}
    return schemathesis.Config.from_dict(data)


def _text(raw: bytes | None, limit: int = 4000) -> str | None:
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = "base64:" + base64.b64encode(raw[:limit]).decode()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _findings(role: str, event: events.ScenarioFinished) -> Iterable[Finding]:
    recorder = event.recorder
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            failing_id = failure.case_id or case_id
            interaction = recorder.interactions.get(failing_id)
            case = recorder.cases[failing_id].value if failing_id in recorder.cases else None
            request = interaction.request if interaction else None
            response = interaction.response if interaction else None
            method = request.method if request else (case.method if case else "?")
            path = request.uri if request else (case.formatted_path if case else "?")
            yield Finding(
                role=role, operation=failure.operation or recorder.label, check=check.name,
                title=failure.title, status=response.status_code if response else None,
                method=method, path=_path_of(path), body=_text(request.body) if request else None,
                message=failure.message.strip(), answer=_text(response.content) if response else None,
                curl=check.failure_info.code_sample)


def _path_of(uri: str) -> str:
    """http://127.0.0.1:1234/api/v1/x?y=1 -> /api/v1/x?y=1"""
    rest = uri.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


@dataclass
class RoleRun:
    """What one role's runs found, the errors they met, and how many requests each phase sent
    (so a phase that silently did nothing, e.g. stateful without links, shows)."""

    role: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)  # phase -> requests sent

    def merge(self, other: RoleRun) -> None:
        self.findings = dedupe([*self.findings, *other.findings])
        self.errors += other.errors
        for phase, n in other.requests.items():
            self.requests[phase] = self.requests.get(phase, 0) + n


def run_schemathesis(spec: dict[str, Any], base_url: str, role: Role, *, examples: int,
                     run_seed: int, operations: list[dict[str, Any]],
                     stateful: bool = True) -> RoleRun:
    """One synchronous schemathesis run (call it in a thread while the app serves on the loop):
    its failures, and the errors it met (a scenario that could not run is reported, not lost)."""
    config = _config(base_url, role, examples=examples, run_seed=run_seed, operations=operations,
                     stateful=stateful)
    schema = schemathesis.openapi.from_dict(spec, config=config)
    run = RoleRun(role.name)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            run.findings.extend(_findings(role.name, event))
            phase = event.phase.value
            run.requests[phase] = run.requests.get(phase, 0) + len(event.recorder.interactions)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{role.name}: {event.label}: {event.info.title}: {event.value!r}"[:2000])
        elif isinstance(event, events.FatalError):
            raise event.exception
    run.findings = dedupe(run.findings)
    return run


def fuzz_role(spec: dict[str, Any], base_url: str, role: Role, *, examples: int | None = None,
              run_seed: int | None = None) -> RoleRun:
    """Every operation as this role; /auth/logout on its own with the role's throwaway token."""
    examples = examples if examples is not None else examples_budget()
    run_seed = run_seed if run_seed is not None else seed()
    main = [{"include-path": path, "enabled": False} for path in EXCLUDED]
    run = run_schemathesis(spec, base_url, role, examples=examples, run_seed=run_seed,
                           operations=main)
    throwaway = Role(role.name, role.logout_token)
    only_logout = [{"exclude-path": LOGOUT, "enabled": False}]
    run.merge(run_schemathesis(spec, base_url, throwaway, examples=examples, run_seed=run_seed,
                               operations=only_logout,
                               stateful=False))  # one operation: no links to follow
    return run


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per (role, operation, check, status, title, the server's reason), the
    shortest request kept."""
    best: dict[tuple[Any, ...], Finding] = {}
    for f in findings:
        size = len(f.body or "") + len(f.path)
        kept = best.get(f.key)
        if kept is None or size < len(kept.body or "") + len(kept.path):
            best[f.key] = f
    return sorted(best.values(), key=lambda f: (f.check, f.operation, f.role, f.status or 0))


# -- the report ---------------------------------------------------------------------------------

def summary(findings: list[Finding], errors: list[str] | None = None, *, verbose: bool = False,
            known: list[Finding] | None = None) -> str:
    """Counts by check, then per role and operation: the check, the status, a reproduction;
    then the known false positives that were not counted, and the run's errors."""
    counts: dict[tuple[str, int | None], int] = {}
    for f in findings:
        counts[(f.check, f.status)] = counts.get((f.check, f.status), 0) + 1
    lines = [f"{len(findings)} distinct failures (role, operation, check, status, reason); by check: "
             + ", ".join(f"{check} {status} x{n}" for (check, status), n in sorted(
                 counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)))]
    by_role: dict[str, list[Finding]] = {}
    for f in findings:
        by_role.setdefault(f.role, []).append(f)
    for role, items in by_role.items():
        lines.append(f"\n== {role} ({len(items)})")
        for f in sorted(items, key=lambda f: (f.operation, f.check, f.status or 0)):
            said = f" [{f.reason}]" if f.reason else ""
            lines.append(f"  {f.operation}  [{f.check}] -> {f.status}{said}: {f.title}")
            body = f.body if verbose or f.body is None or len(f.body) <= 200 else f.body[:200] + "..."
            lines.append(f"      {f.method} {f.path}" + (f"  body: {_printable(body)}" if body else ""))
            if verbose:
                lines.append("      " + f.message.replace("\n", "\n      "))
                if f.answer:
                    lines.append(f"      answer: {f.answer}")
    if known:
        lines.append(f"\nnot counted, {len(known)} known false positives (KNOWN_FALSE_POSITIVES):")
        lines.extend(f"  {f.role}: {f.operation} [{f.check}] -> {f.status}: {known_reason(f)}"
                     for f in known)
    if errors:
        lines.append(f"\n{len(errors)} errors while running:")
        lines.extend("  " + e.replace("\n", "\n  ") for e in errors)
    return "\n".join(lines)


def _printable(text: str) -> str:
    """Control characters as escapes, so a reproduction can be read and copied."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode()
                   for c in text)


def as_json(findings: list[Finding]) -> str:
    return json.dumps([{**f.__dict__, "known_false_positive": known_reason(f)} for f in findings],
                      ensure_ascii=False, indent=1)
