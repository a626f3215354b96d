"""Check-in: members scan the rotating venue code (HMAC, 30 s steps) on site, or the organiser
scans members' personal passes (Ed25519, verifiable offline). A member counts once per activity
(unique row); a retried offline upload counts once (unique client nonce)."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from models.activities import (
    Activity,
    ActivityStatus,
    Checkin,
    CheckinMethod,
    ScanNonce,
    Signup,
    SignupStatus,
)
from models.org import Member
from services import clock, passes
from services.activities import check_can_see, get_organised
from services.auth import Principal
from services.db import fetch_rows
from services.errors import (
    ActivityCancelled,
    ActivityNotFound,
    CheckinClosed,
    CheckinCodeExpired,
    CheckinCodeForged,
    CheckinCodeInvalid,
    CheckinNotOpen,
    LocationRequired,
    MemberNotFound,
    NotSignedUp,
    PassExpired,
    PassForged,
    PassInvalid,
    ScanReplayed,
    ServiceError,
    TooFar,
    Waitlisted,
)

PASS_TTL_S = 7 * 24 * 3600
#: The refusals of a venue code or a personal pass, by the code `services.passes` says.
CODE_ERRORS: dict[str, type[ServiceError]] = {e.code: e for e in (
    CheckinCodeInvalid, CheckinCodeForged, CheckinCodeExpired, PassInvalid, PassForged, PassExpired)}


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine), metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _check_window(activity: Activity, at: datetime) -> None:
    if activity.status is ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    if at < activity.checkin_opens_at:
        raise CheckinNotOpen(opens_at=activity.checkin_opens_at)
    if at >= activity.checkin_closes_at:
        raise CheckinClosed(closed_at=activity.checkin_closes_at)


@dataclass(frozen=True, slots=True)
class Code:
    token: str
    expires_at: datetime
    svg: str


async def venue_code(principal: Principal, activity_id: int) -> Code:
    """The code to show on site (the organiser's screen, a projector); it rotates every 30 s."""
    activity = await get_organised(principal, activity_id)
    now = clock.now()
    step = passes.step_of(now.timestamp())
    token = passes.venue_token(activity_id=activity.id, secret=activity.checkin_secret, step=step)
    return Code(token, datetime.fromtimestamp((step + 1) * passes.STEP_S, tz=UTC), passes.qr_svg(token))


@dataclass(frozen=True, slots=True)
class Recorded:
    activity_id: int
    member_id: int
    checked_in_at: datetime
    walk_in: bool
    first_time: bool


def _recorded(row: Checkin, first_time: bool) -> Recorded:
    return Recorded(row.activity_id, row.member_id, row.checked_in_at, row.walk_in, first_time)


# PostgreSQL: a check-in in one statement — the member's sign-up read, the row inserted unless
# one stands (unique activity + member), the activity's counter moved only by a row written.
_CHECKIN_PG = """
WITH s AS (
    SELECT status AS s_status FROM signup WHERE activity_id = $1 AND member_id = $2
), ins AS (
    INSERT INTO checkin (activity_id, member_id, unit_id, method, walk_in, checked_in_at,
                         scanned_by_id, nonce, lat, lng)
    SELECT $1, $2, $3::int, $4, NOT EXISTS (SELECT 1 FROM s WHERE s_status = 'confirmed'),
           $5::timestamptz, $6::int, $7::varchar, $8::float8, $9::float8
    WHERE $10::bool OR EXISTS (SELECT 1 FROM s WHERE s_status = 'confirmed')
    ON CONFLICT (activity_id, member_id) DO NOTHING
    RETURNING checked_in_at AS c_at, walk_in AS c_walk_in
), upd AS (
    UPDATE activity SET checked_in = checked_in + 1 FROM ins WHERE activity.id = $1
)
SELECT c_at, c_walk_in, (SELECT s_status FROM s) AS s_status FROM (SELECT 1) AS one
LEFT JOIN ins ON TRUE
"""


async def _record_one_statement(activity: Activity, *, member_id: int, unit_id: int | None,
                                method: CheckinMethod, at: datetime, scanned_by: int | None,
                                nonce: str | None, lat: float | None, lng: float | None) -> Recorded:
    [(c_at, c_walk_in, s_status)] = await fetch_rows(
        _CHECKIN_PG, activity.id, member_id, unit_id, method.value, at, scanned_by, nonce, lat, lng,
        activity.walk_ins)
    if c_at is not None:
        return Recorded(activity.id, member_id, c_at, c_walk_in, True)
    existing = await Checkin.get_or_none(activity_id=activity.id, member_id=member_id)
    if existing is not None:
        return _recorded(existing, False)
    raise Waitlisted() if s_status == SignupStatus.WAITLISTED.value else NotSignedUp()


async def _record(activity: Activity, *, member_id: int, unit_id: int | None, method: CheckinMethod,
                  at: datetime, scanned_by: int | None = None, nonce: str | None = None,
                  lat: float | None = None, lng: float | None = None) -> Recorded:
    """Count a member once: a confirmed sign-up, or a walk-in where the activity allows them."""
    if connections.get("default").capabilities.dialect == "postgres":
        return await _record_one_statement(activity, member_id=member_id, unit_id=unit_id,
                                           method=method, at=at, scanned_by=scanned_by,
                                           nonce=nonce, lat=lat, lng=lng)
    existing = await Checkin.get_or_none(activity_id=activity.id, member_id=member_id)
    if existing is not None:
        return _recorded(existing, False)
    status = await Signup.filter(activity_id=activity.id, member_id=member_id).values_list(
        "status", flat=True)
    confirmed = SignupStatus.CONFIRMED in status
    if not confirmed and not activity.walk_ins:
        raise Waitlisted() if SignupStatus.WAITLISTED in status else NotSignedUp()
    try:
        async with in_transaction():
            row = await Checkin.create(activity_id=activity.id, member_id=member_id, unit_id=unit_id,
                                       method=method, walk_in=not confirmed, checked_in_at=at,
                                       scanned_by_id=scanned_by, nonce=nonce, lat=lat, lng=lng)
            await Activity.filter(id=activity.id).update(checked_in=F("checked_in") + 1)
        return _recorded(row, True)
    except IntegrityError:  # the same member at once: the other request's row stands
        return _recorded(await Checkin.get(activity_id=activity.id, member_id=member_id), False)


@dataclass(frozen=True, slots=True)
class _Venue:
    """What a venue-code check-in reads of its activity, in one hand-written query."""

    id: int
    zone_id: int | None
    audience: dict[str, Any]
    status: ActivityStatus
    checkin_opens_at: datetime
    checkin_closes_at: datetime
    checkin_secret: str
    radius_m: int | None
    lat: float | None
    lng: float | None
    walk_ins: bool


_VENUE_SQL = ("SELECT id, zone_id, audience, status, checkin_opens_at, checkin_closes_at, "
              "checkin_secret, radius_m, lat, lng, walk_ins FROM activity WHERE id = $1")


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite: text


async def _venue(activity_id: int) -> _Venue:
    rows = await fetch_rows(_VENUE_SQL, activity_id)
    if not rows:
        raise ActivityNotFound(activity_id=activity_id)
    (row_id, zone_id, audience, status, opens, closes, secret, radius_m, lat, lng,
     walk_ins) = rows[0]
    return _Venue(row_id, zone_id,
                  orjson.loads(audience) if isinstance(audience, str | bytes) else audience or {},
                  ActivityStatus(status), _moment(opens), _moment(closes), secret, radius_m, lat,
                  lng, bool(walk_ins))


async def checkin_with_code(principal: Principal, *, activity_id: int, token: str,
                            lat: float | None, lng: float | None) -> Recorded:
    """A member checks in with the venue code; an activity they may not see is not found.
    Repeating it is not an error and counts once (first_time false)."""
    activity: Any = await _venue(activity_id)
    await check_can_see(principal, activity)
    now = clock.now()
    _check_window(activity, now)
    try:
        passes.check_venue_token(token, activity_id=activity.id, secret=activity.checkin_secret,
                                 now_ts=now.timestamp())
    except passes.CodeError as exc:
        raise CODE_ERRORS[exc.code]() from None
    if activity.radius_m is not None and activity.lat is not None and activity.lng is not None:
        if lat is None or lng is None:
            raise LocationRequired()
        far = distance_m(lat, lng, activity.lat, activity.lng)
        if far > activity.radius_m:
            raise TooFar(distance_m=round(far), radius_m=activity.radius_m)
    return await _record(activity, member_id=principal.member_id, unit_id=principal.unit_id,
                         method=CheckinMethod.VENUE_CODE, at=now, lat=lat, lng=lng)


@dataclass(frozen=True, slots=True)
class Pass:
    token: str
    expires_at: datetime
    svg: str
    public_key: str


def issue_pass(principal: Principal, signer: passes.PassSigner) -> Pass:
    """The caller's personal pass, valid a week, for the organiser to scan (also offline)."""
    exp = int(time.time()) + PASS_TTL_S
    token = signer.issue(member_id=principal.member_id, unit_id=principal.unit_id, exp=exp)
    return Pass(token, datetime.fromtimestamp(exp, UTC), passes.qr_svg(token), signer.public_key_b64)


async def scan_passes(principal: Principal, *, activity_id: int, signer: passes.PassSigner,
                      scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The organiser's scans of personal passes (live or uploaded after an offline session).
    Each scan stands alone; a nonce seen before answers its first outcome again."""
    activity = await get_organised(principal, activity_id)
    now = clock.now()
    return [await _one_scan(activity, principal, signer, scan, now) for scan in scans]


async def _one_scan(activity: Activity, principal: Principal, signer: passes.PassSigner,
                    scan: dict[str, Any], now: datetime) -> dict[str, Any]:
    nonce, at = scan["nonce"], min(scan.get("scanned_at") or now, now)
    try:
        member_pass = signer.verify(scan["pass_token"], now_ts=at.timestamp())
    except passes.CodeError as exc:
        return {"nonce": nonce, "status": "error", "code": exc.code}
    seen = await ScanNonce.get_or_none(activity_id=activity.id, nonce=nonce)
    if seen is not None:
        if seen.member_id != member_pass.member_id:
            return {"nonce": nonce, "status": "error", "code": ScanReplayed.code}
        return {"nonce": nonce, "status": "duplicate", "member_id": seen.member_id,
                "first_outcome": seen.outcome}
    try:
        _check_window(activity, at)
        unit = await Member.filter(id=member_pass.member_id, is_active=True).values_list("unit_id", flat=True)
        if not unit:
            raise MemberNotFound()
        result = await _record(activity, member_id=member_pass.member_id, unit_id=unit[0],
                               method=CheckinMethod.PASS_SCAN, at=at,
                               scanned_by=principal.member_id, nonce=nonce)
        outcome = "checked_in" if result.first_time else "already_checked_in"
    except ServiceError as exc:
        outcome = exc.code
    # The same upload retried concurrently: the first one's record stands.
    with contextlib.suppress(IntegrityError):
        await ScanNonce.create(activity_id=activity.id, nonce=nonce, outcome=outcome,
                               member_id=member_pass.member_id)
    if outcome in ("checked_in", "already_checked_in"):
        return {"nonce": nonce, "status": outcome, "member_id": member_pass.member_id}
    return {"nonce": nonce, "status": "error", "code": outcome, "member_id": member_pass.member_id}
