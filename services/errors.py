"""The error catalogue: one class per condition, each with a stable machine `code`, an HTTP
status and a zh-CN message for people. Clients and tests rely on the code; the wording may
change. The OpenAPI document lists each route's codes from the classes it declares."""

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


# -- by status: the generic conditions, and the bases of the specific ones ----------------------

class BadRequest(ServiceError):
    code, http_status, default_message = "bad_request", 400, "请求无法处理"


class NotAuthenticated(ServiceError):
    code, http_status, default_message = "not_authenticated", 401, "请先登录"


class Forbidden(ServiceError):
    code, http_status, default_message = "forbidden", 403, "没有权限执行此操作"


class NotFound(ServiceError):
    code, http_status, default_message = "not_found", 404, "找不到该资源"


class Conflict(ServiceError):
    code, http_status, default_message = "conflict", 409, "数据冲突，请刷新后重试"


class InvalidInput(ServiceError):
    """A business-level validation failure that points at fields, shaped like a 422."""

    code, http_status, default_message = "invalid_request", 422, "请求内容不合法"


class RateLimited(ServiceError):
    code, http_status, default_message = "rate_limited", 429, "操作过于频繁，请稍后再试"


class UpstreamError(ServiceError):
    code, http_status, default_message = "wechat_unavailable", 502, "微信服务暂不可用，请稍后再试"


class Unavailable(ServiceError):
    code, http_status, default_message = "service_unavailable", 503, "服务暂不可用，请稍后再试"


class Busy(Conflict):
    """Lost a race for a row lock (or the database write lock); nothing changed, retry at once."""

    code, default_message = "busy", "操作繁忙，请重试"


class IllegalTransition(Conflict):
    code, default_message = "illegal_transition", "当前状态下不能执行此操作"


class IdempotencyKeyRequired(BadRequest):
    code, default_message = "idempotency_key_required", "缺少 Idempotency-Key 请求头，无法保证不重复提交"


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key with a different request: refused, nothing is done."""

    code, default_message = "idempotency_key_reused", "该 Idempotency-Key 已用于另一笔不同的请求，请换一个新的"


class NotInAudience(Forbidden):
    code, default_message = "not_in_audience", "不在本次活动或募集的范围内"


class AlreadyReversed(Conflict):
    code, default_message = "already_reversed", "该记录已被冲销"


# -- the request itself -------------------------------------------------------------------------

class MultipartInvalid(BadRequest):
    code, default_message = "multipart_invalid", "上传内容格式错误"


class PayloadTooLarge(ServiceError):
    code, http_status, default_message = "payload_too_large", 413, "上传内容过大"


# -- who is calling -----------------------------------------------------------------------------

class TokenInvalid(NotAuthenticated):
    code, default_message = "token_invalid", "登录凭证无效或已过期，请重新登录"


class LoginFailed(NotAuthenticated):
    code, default_message = "login_failed", "用户名或密码错误"


class NotBound(Forbidden):
    code, default_message = "not_bound", "该微信尚未绑定党员身份，请先绑定"


class AccountDisabled(Forbidden):
    code, default_message = "account_disabled", "账号已停用"


class BindTicketInvalid(BadRequest):
    code, default_message = "bind_ticket_invalid", "绑定凭证无效或已过期，请重新登录"


class BindMismatch(BadRequest):
    """Invite code, name or phone do not match the roster: one answer for all three, so a
    guesser never learns which part was right."""

    code, default_message = "bind_mismatch", "邀请码、姓名或手机号与单位名册不一致，请核对或联系单位管理员"


class AlreadyBound(Conflict):
    code, default_message = "already_bound", "该党员已绑定其他微信"


class OpenidInUse(Conflict):
    code, default_message = "openid_in_use", "该微信已绑定其他党员"


class WeChatCodeInvalid(BadRequest):
    code, default_message = "wechat_code_invalid", "微信登录凭证无效或已使用，请重新登录"


class StaffNotFound(NotFound):
    code, default_message = "staff_not_found", "找不到该工作人员账号"


# -- scope --------------------------------------------------------------------------------------

class NotOnDuty(Forbidden):
    code, default_message = "not_on_duty", "本单位当前不是该网络区的轮值单位"


class NoRotation(Forbidden):
    """The zone has no rotation now: nobody holds duty powers until the committee makes one."""

    code, default_message = "no_rotation", "该网络区当前没有轮值安排，请联系机关工委生成轮值表"


class AudienceOutOfScope(Forbidden):
    code, default_message = "audience_out_of_scope", "只能向本人负责的范围发送"


# -- organisation and rotations -----------------------------------------------------------------

class ZoneNotFound(NotFound):
    code, default_message = "zone_not_found", "找不到指定的网络区"


class UnitNotFound(NotFound):
    code, default_message = "unit_not_found", "找不到指定的单位"


class ZoneNameTaken(Conflict):
    code, default_message = "zone_name_taken", "已有同名的网络区"


class UnitNameTaken(Conflict):
    code, default_message = "unit_name_taken", "已有同名的单位"


class InviteCodeTaken(Conflict):
    code, default_message = "invite_code_taken", "该邀请码已被其他单位使用"


class PhoneTaken(Conflict):
    code, default_message = "phone_taken", "本单位已有使用该手机号的党员"


class UsernameTaken(Conflict):
    code, default_message = "username_taken", "该用户名已被使用"


class UnitNotInZone(BadRequest):
    code, default_message = "unit_not_in_zone", "该单位不属于这个网络区"


class ImportInvalid(InvalidInput):
    code, default_message = "import_invalid", "导入文件有错误，未导入任何数据"


class NoCurrentRotation(Conflict):
    code, default_message = "no_current_rotation", "该网络区当前没有轮值安排"


class AlreadyOnDuty(Conflict):
    code, default_message = "already_on_duty", "该单位已经是当前轮值单位"


class YearOutOfRange(BadRequest):
    code, default_message = "year_out_of_range", "年份超出允许范围"


class PlanNotFound(NotFound):
    code, default_message = "rotation_plan_not_found", "该年度的轮值表尚未生成"


# -- activities, sign-up, check-in, contests ----------------------------------------------------

class ActivityNotFound(NotFound):
    code, default_message = "activity_not_found", "找不到该活动"


class ActivityCancelled(Conflict):
    code, default_message = "activity_cancelled", "该活动已取消"


class OutsideRotation(Forbidden):
    code, default_message = "outside_rotation", "活动时间不在本单位的轮值季度内"


class CapacityBelowConfirmed(Conflict):
    code, default_message = "capacity_below_confirmed", "名额不能少于已确认的人数"


class SignupNotOpen(Conflict):
    code, default_message = "signup_not_open", "报名尚未开始"


class SignupClosed(Conflict):
    code, default_message = "signup_closed", "报名已截止"


class ActivityFull(Conflict):
    code, default_message = "activity_full", "名额已满"


class NotSignedUp(NotFound):
    code, default_message = "not_signed_up", "没有报名该活动"


class AlreadyCheckedIn(Conflict):
    code, default_message = "already_checked_in", "已签到，不能取消报名"


class Waitlisted(Conflict):
    code, default_message = "waitlisted", "您在候补名单中，尚未获得名额，暂不能签到"


class CheckinNotOpen(Conflict):
    code, default_message = "checkin_not_open", "签到尚未开始"


class CheckinClosed(Conflict):
    code, default_message = "checkin_closed", "签到已结束"


class CheckinCodeInvalid(Conflict):
    code, default_message = "checkin_code_invalid", "签到码无效"


class CheckinCodeForged(Conflict):
    code, default_message = "checkin_code_forged", "签到码无法验证"


class CheckinCodeExpired(Conflict):
    code, default_message = "checkin_code_expired", "签到码已过期，请重新扫码"


class LocationRequired(Conflict):
    code, default_message = "location_required", "请允许获取位置后再签到"


class TooFar(Conflict):
    code, default_message = "too_far", "您不在活动地点附近"


class PassInvalid(Conflict):
    code, default_message = "pass_invalid", "个人签到码无效"


class PassForged(Conflict):
    code, default_message = "pass_forged", "个人签到码无法验证"


class PassExpired(Conflict):
    code, default_message = "pass_expired", "个人签到码已过期"


class ScanReplayed(Conflict):
    code, default_message = "scan_replayed", "该扫码记录已用于其他党员"


class MemberNotFound(NotFound):
    code, default_message = "member_not_found", "找不到该党员"


class NotAContest(Conflict):
    code, default_message = "not_a_contest", "该活动不是比赛"


class RoundClosed(Conflict):
    code, default_message = "round_closed", "该轮比赛已结束评定"


class AlreadyEntered(Conflict):
    code, default_message = "already_entered", "已经报送过作品"


class PreliminariesOpen(Conflict):
    code, default_message = "preliminaries_open", "还有网络区的初赛未结束"


# -- notices and attachments --------------------------------------------------------------------

class NoticeNotFound(NotFound):
    code, default_message = "notice_not_found", "找不到该通知"


class AckNotRequired(Conflict):
    code, default_message = "ack_not_required", "该通知不需要确认"


class AttachmentRejected(InvalidInput):
    code, default_message = "attachment_rejected", "附件类型或大小不符合要求"


class AttachmentNotFound(NotFound):
    code, default_message = "attachment_not_found", "找不到该附件"


class AttachmentNotCitable(Forbidden):
    code, default_message = "attachment_not_citable", "只能引用本人或本单位上传的附件"


# -- supervision --------------------------------------------------------------------------------

class ItemNotFound(NotFound):
    code, default_message = "supervision_item_not_found", "找不到该督办事项"


class NotAssigned(NotFound):
    code, default_message = "not_assigned", "该单位不在此督办事项的承办单位中"


class NoUnits(InvalidInput):
    code, default_message = "no_units", "所选网络区中没有单位"


class UrgeTooSoon(RateLimited):
    code, default_message = "urge_too_soon", "12 小时内已催办过该单位，请稍后再试"


# -- funds and the zone ledgers -----------------------------------------------------------------

class CampaignNotFound(NotFound):
    code, default_message = "campaign_not_found", "找不到该募集活动"


class CampaignNotOpen(Conflict):
    code, default_message = "campaign_not_open", "该募集活动未开放缴纳"


class CampaignBooked(Conflict):
    code, default_message = "campaign_booked", "该募集款已记入网络区经费台账，不能再变动"


class ContributionNotFound(NotFound):
    code, default_message = "contribution_not_found", "找不到该笔缴纳记录"


class AmountOutOfRange(InvalidInput):
    code, default_message = "amount_out_of_range", "金额超出本次募集允许的范围"


class NoUnit(Forbidden):
    code, default_message = "no_unit", "只有所属单位的党员可以缴纳"


class WeChatNotLinked(Forbidden):
    code, default_message = "wechat_not_linked", "请先用微信登录并绑定后再支付"


class ReceiptNoTaken(Conflict):
    code, default_message = "receipt_no_taken", "该收据号已登记过另一笔款项"


class NotReversible(Conflict):
    code, default_message = "not_reversible", "只有线下登记的款项可以冲销，且冲销记录不能再冲销"


class NotRefundable(Conflict):
    code, default_message = "not_refundable", "只有已支付的微信缴纳可以退款"


class RefundExceedsPaid(Conflict):
    code, default_message = "refund_exceeds_paid", "退款金额超过可退金额"


class PayNotConfigured(Unavailable):
    code, default_message = "pay_not_configured", "微信支付尚未配置，暂不能在线缴纳"


class PayUnavailable(UpstreamError):
    code, default_message = "wechat_pay_unavailable", "微信支付暂不可用，请稍后再试"


class PayRefused(Conflict):
    """WeChat Pay answered 4xx: a business refusal, with its code in `pay_code`."""

    code, default_message = "wechat_pay_refused", "微信支付拒绝了该请求"


class NotificationRejected(NotAuthenticated):
    """Not verified (timestamp, signature or decryption): nothing in it was believed. WeChat Pay
    reads `{"code": "FAIL"}` and delivers it again later."""

    code, default_message = "FAIL", "签名验证失败"


class EntryNotFound(NotFound):
    code, default_message = "fund_entry_not_found", "找不到该经费记录"


class NotZoneMember(Forbidden):
    code, default_message = "not_zone_member", "只能查看本网络区的经费台账"


class InsufficientBalance(Conflict):
    code, default_message = "insufficient_balance", "经费余额不足，不能入账"


class NotASubsidy(Conflict):
    code, default_message = "not_a_subsidy", "只有工委补助需要审批"


class AlreadyDecided(Conflict):
    code, default_message = "already_decided", "该补助申请已审批过"


class SelfApproval(Forbidden):
    code, default_message = "self_approval", "不能审批本人提出的补助申请"


class NotBooked(Conflict):
    code, default_message = "not_booked", "只有已入账的记录可以冲销"


class ReversalNotReversible(Conflict):
    code, default_message = "reversal_not_reversible", "冲销记录本身不能再冲销"
