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
    """A business-level validation failure that points at fields, shaped like every 422: with
    `errors` (given, or one entry at the class's `loc`)."""

    code, http_status, default_message = "invalid_request", 422, "请求内容不合法"
    loc: tuple[str, ...] = ("body",)

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out.setdefault("errors", [{"loc": list(self.loc), "msg": self.message, "type": self.code}])
        return out


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

def define(name: str, base: type[ServiceError], code: str, message: str,
           **attrs: object) -> type[ServiceError]:
    """One condition of the catalogue: a subclass of `base` (which sets the HTTP status)."""
    return type(name, (base,), {"code": code, "default_message": message, "__module__": __name__,
                                **attrs})


# -- the request itself -------------------------------------------------------------------------

MultipartInvalid = define("MultipartInvalid", BadRequest, "multipart_invalid", "上传内容格式错误")


class PayloadTooLarge(ServiceError):
    code, http_status, default_message = "payload_too_large", 413, "上传内容过大"


# -- who is calling -----------------------------------------------------------------------------

TokenInvalid = define("TokenInvalid", NotAuthenticated, "token_invalid", "登录凭证无效或已过期，请重新登录")
LoginFailed = define("LoginFailed", NotAuthenticated, "login_failed", "用户名或密码错误")
NotBound = define("NotBound", Forbidden, "not_bound", "该微信尚未绑定党员身份，请先绑定")
AccountDisabled = define("AccountDisabled", Forbidden, "account_disabled", "账号已停用")
BindTicketInvalid = define("BindTicketInvalid", BadRequest, "bind_ticket_invalid", "绑定凭证无效或已过期，请重新登录")

# Invite code, name or phone do not match the roster: one answer for all three, so a
# guesser never learns which part was right.
BindMismatch = define("BindMismatch", BadRequest, "bind_mismatch", "邀请码、姓名或手机号与单位名册不一致，请核对或联系单位管理员")
AlreadyBound = define("AlreadyBound", Conflict, "already_bound", "该党员已绑定其他微信")
OpenidInUse = define("OpenidInUse", Conflict, "openid_in_use", "该微信已绑定其他党员")
WeChatCodeInvalid = define("WeChatCodeInvalid", BadRequest, "wechat_code_invalid", "微信登录凭证无效或已使用，请重新登录")
StaffNotFound = define("StaffNotFound", NotFound, "staff_not_found", "找不到该工作人员账号")
CannotChangeSelf = define("CannotChangeSelf", Conflict, "cannot_change_self", "不能停用自己或更改自己的角色和单位")


# -- scope --------------------------------------------------------------------------------------

NotOnDuty = define("NotOnDuty", Forbidden, "not_on_duty", "本单位当前不是该网络区的轮值单位")

# The zone has no rotation now: nobody holds duty powers until the committee makes one.
NoRotation = define("NoRotation", Forbidden, "no_rotation", "该网络区当前没有轮值安排，请联系机关工委生成轮值表")
AudienceOutOfScope = define("AudienceOutOfScope", Forbidden, "audience_out_of_scope", "只能向本人负责的范围发送")


# -- organisation and rotations -----------------------------------------------------------------

ZoneNotFound = define("ZoneNotFound", NotFound, "zone_not_found", "找不到指定的网络区")
UnitNotFound = define("UnitNotFound", NotFound, "unit_not_found", "找不到指定的单位")
ZoneNameTaken = define("ZoneNameTaken", Conflict, "zone_name_taken", "已有同名的网络区")
UnitNameTaken = define("UnitNameTaken", Conflict, "unit_name_taken", "已有同名的单位")
InviteCodeTaken = define("InviteCodeTaken", Conflict, "invite_code_taken", "该邀请码已被其他单位使用")
PhoneTaken = define("PhoneTaken", Conflict, "phone_taken", "本单位已有使用该手机号的党员")
UsernameTaken = define("UsernameTaken", Conflict, "username_taken", "该用户名已被使用")
CurrentPasswordWrong = define("CurrentPasswordWrong", Forbidden, "current_password_wrong",
                              "当前密码不正确，未更改")
UnitNotInZone = define("UnitNotInZone", BadRequest, "unit_not_in_zone", "该单位不属于这个网络区")
ImportInvalid = define("ImportInvalid", InvalidInput, "import_invalid", "导入文件有错误，未导入任何数据")
NoCurrentRotation = define("NoCurrentRotation", Conflict, "no_current_rotation", "该网络区当前没有轮值安排")
AlreadyOnDuty = define("AlreadyOnDuty", Conflict, "already_on_duty", "该单位已经是当前轮值单位")
YearOutOfRange = define("YearOutOfRange", BadRequest, "year_out_of_range", "年份超出允许范围")
PlanNotFound = define("PlanNotFound", NotFound, "rotation_plan_not_found", "该年度的轮值表尚未生成")


# -- running the zones: plans, meetings, handovers ----------------------------------------------

RotationNotFound = define("RotationNotFound", NotFound, "rotation_not_found", "找不到该轮值安排")
RotationOver = define("RotationOver", Conflict, "rotation_over", "该轮值季度已结束")
PlanNotStarted = define("PlanNotStarted", Conflict, "plan_not_started", "轮值单位尚未编写工作计划")
MeetingNotFound = define("MeetingNotFound", NotFound, "meeting_not_found", "找不到该例会")
MeetingExists = define("MeetingExists", Conflict, "meeting_exists", "该季度的例会已经安排")
NotAtMeeting = define("NotAtMeeting", Forbidden, "not_at_meeting", "只有参会的当前轮值单位可以提交汇报")
HandoverNotOpen = define("HandoverNotOpen", Conflict, "handover_not_open", "尚未到交接时间")
NotHandoverParty = define("NotHandoverParty", Forbidden, "not_handover_party", "只有交接双方单位的书记或管理员可以办理交接")
HandoverConfirmed = define("HandoverConfirmed", Conflict, "handover_confirmed", "该方已确认交接，内容不能再修改")

ActivityNotFound = define("ActivityNotFound", NotFound, "activity_not_found", "找不到该活动")
ActivityCancelled = define("ActivityCancelled", Conflict, "activity_cancelled", "该活动已取消")
OutsideRotation = define("OutsideRotation", Forbidden, "outside_rotation", "活动时间不在本单位的轮值季度内")
NotYourQuarter = define("NotYourQuarter", Forbidden, "not_your_quarter", "只能管理本单位轮值季度内的活动和台账")
CapacityBelowConfirmed = define("CapacityBelowConfirmed", Conflict, "capacity_below_confirmed", "名额不能少于已确认的人数")
SignupNotOpen = define("SignupNotOpen", Conflict, "signup_not_open", "报名尚未开始")
SignupClosed = define("SignupClosed", Conflict, "signup_closed", "报名已截止")
ActivityFull = define("ActivityFull", Conflict, "activity_full", "名额已满")
NotSignedUp = define("NotSignedUp", NotFound, "not_signed_up", "没有报名该活动")
AlreadyCheckedIn = define("AlreadyCheckedIn", Conflict, "already_checked_in", "已签到，不能取消报名")
Waitlisted = define("Waitlisted", Conflict, "waitlisted", "您在候补名单中，尚未获得名额，暂不能签到")
CheckinNotOpen = define("CheckinNotOpen", Conflict, "checkin_not_open", "签到尚未开始")
CheckinClosed = define("CheckinClosed", Conflict, "checkin_closed", "签到已结束")
CheckinCodeInvalid = define("CheckinCodeInvalid", Conflict, "checkin_code_invalid", "签到码无效")
CheckinCodeForged = define("CheckinCodeForged", Conflict, "checkin_code_forged", "签到码无法验证")
CheckinCodeExpired = define("CheckinCodeExpired", Conflict, "checkin_code_expired", "签到码已过期，请重新扫码")
LocationRequired = define("LocationRequired", Conflict, "location_required", "请允许获取位置后再签到")
TooFar = define("TooFar", Conflict, "too_far", "您不在活动地点附近")
PassInvalid = define("PassInvalid", Conflict, "pass_invalid", "个人签到码无效")
PassForged = define("PassForged", Conflict, "pass_forged", "个人签到码无法验证")
PassExpired = define("PassExpired", Conflict, "pass_expired", "个人签到码已过期")
ScanReplayed = define("ScanReplayed", Conflict, "scan_replayed", "该扫码记录已用于其他党员")
MemberNotFound = define("MemberNotFound", NotFound, "member_not_found", "找不到该党员")
NotAContest = define("NotAContest", Conflict, "not_a_contest", "该活动不是比赛")
RoundClosed = define("RoundClosed", Conflict, "round_closed", "该轮比赛已结束评定")
AlreadyEntered = define("AlreadyEntered", Conflict, "already_entered", "已经报送过作品")
PreliminariesOpen = define("PreliminariesOpen", Conflict, "preliminaries_open", "还有网络区的初赛未结束")


# -- notices and attachments --------------------------------------------------------------------

NoticeNotFound = define("NoticeNotFound", NotFound, "notice_not_found", "找不到该通知")
AckNotRequired = define("AckNotRequired", Conflict, "ack_not_required", "该通知不需要确认")
AttachmentRejected = define("AttachmentRejected", InvalidInput, "attachment_rejected", "附件类型或大小不符合要求",
                            loc=("body", "file"))
AttachmentNotFound = define("AttachmentNotFound", NotFound, "attachment_not_found", "找不到该附件")
AttachmentNotCitable = define("AttachmentNotCitable", Forbidden, "attachment_not_citable", "只能引用本人或本单位上传的附件")


# -- supervision --------------------------------------------------------------------------------

ItemNotFound = define("ItemNotFound", NotFound, "supervision_item_not_found", "找不到该督办事项")
NotAssigned = define("NotAssigned", NotFound, "not_assigned", "该单位不在此督办事项的承办单位中")
NoUnits = define("NoUnits", InvalidInput, "no_units", "所选网络区中没有单位", loc=("body", "zone_ids"))
UrgeTooSoon = define("UrgeTooSoon", RateLimited, "urge_too_soon", "12 小时内已催办过该单位，请稍后再试")


# -- funds and the zone ledgers -----------------------------------------------------------------

CampaignNotFound = define("CampaignNotFound", NotFound, "campaign_not_found", "找不到该募集活动")
CampaignNotOpen = define("CampaignNotOpen", Conflict, "campaign_not_open", "该募集活动未开放缴纳")
CampaignBooked = define("CampaignBooked", Conflict, "campaign_booked", "该募集款已记入网络区经费台账，不能再变动")
ContributionNotFound = define("ContributionNotFound", NotFound, "contribution_not_found", "找不到该笔缴纳记录")
AmountOutOfRange = define("AmountOutOfRange", InvalidInput, "amount_out_of_range", "金额超出本次募集允许的范围",
                          loc=("body", "amount_fen"))
NoUnit = define("NoUnit", Forbidden, "no_unit", "只有所属单位的党员可以缴纳")
WeChatNotLinked = define("WeChatNotLinked", Forbidden, "wechat_not_linked", "请先用微信登录并绑定后再支付")
ReceiptNoTaken = define("ReceiptNoTaken", Conflict, "receipt_no_taken", "该收据号已登记过另一笔款项")
NotReversible = define("NotReversible", Conflict, "not_reversible", "只有线下登记的款项可以冲销，且冲销记录不能再冲销")
NotRefundable = define("NotRefundable", Conflict, "not_refundable", "只有已支付的微信缴纳可以退款")
RefundExceedsPaid = define("RefundExceedsPaid", Conflict, "refund_exceeds_paid", "退款金额超过可退金额")
PayNotConfigured = define("PayNotConfigured", Unavailable, "pay_not_configured", "微信支付尚未配置，暂不能在线缴纳")
PayUnavailable = define("PayUnavailable", UpstreamError, "wechat_pay_unavailable", "微信支付暂不可用，请稍后再试")

# WeChat Pay answered 4xx: a business refusal, with its code in `pay_code`.
PayRefused = define("PayRefused", Conflict, "wechat_pay_refused", "微信支付拒绝了该请求")
class NotificationRejected(NotAuthenticated):
    """Not verified (timestamp, signature or decryption): nothing in it was believed. WeChat Pay
    reads `{"code": "FAIL"}` and delivers it again later."""

    code, default_message = "FAIL", "签名验证失败"


EntryNotFound = define("EntryNotFound", NotFound, "fund_entry_not_found", "找不到该经费记录")
NotZoneMember = define("NotZoneMember", Forbidden, "not_zone_member", "只能查看本网络区的经费台账")
InsufficientBalance = define("InsufficientBalance", Conflict, "insufficient_balance", "经费余额不足，不能入账")
NotASubsidy = define("NotASubsidy", Conflict, "not_a_subsidy", "只有工委补助需要审批")
AlreadyDecided = define("AlreadyDecided", Conflict, "already_decided", "该补助申请已审批过")
SelfApproval = define("SelfApproval", Forbidden, "self_approval", "不能审批本人提出的补助申请")
NotBooked = define("NotBooked", Conflict, "not_booked", "只有已入账的记录可以冲销")
ReversalNotReversible = define("ReversalNotReversible", Conflict, "reversal_not_reversible", "冲销记录本身不能再冲销")

#: Why a unit admin may not manage a zone's activity or ledger line: not on duty now, no rotation
#: at all, or on duty but it belongs to another quarter.
DUTY_REFUSALS = (NotOnDuty, NoRotation, NotYourQuarter)


# -- activity records and good practice ---------------------------------------------------------

RecordWindowClosed = define("RecordWindowClosed", Conflict, "record_window_closed",
                            "不在可记录的时间内：活动开始后由组织单位记录，交接期结束后不能再记录")
NotAnImage = define("NotAnImage", InvalidInput, "not_an_image", "照片须为 JPEG 或 PNG 图片")
PracticeNotFound = define("PracticeNotFound", NotFound, "practice_not_found", "找不到该经验交流")
PracticeFeatured = define("PracticeFeatured", Conflict, "practice_already_featured", "该经验交流已推介")

# -- the web console ---------------------------------------------------------------------------

ConsoleTicketInvalid = define("ConsoleTicketInvalid", Conflict, "console_ticket_invalid",
                              "登录二维码已失效，请在控制台刷新后重新扫码", http_status=410)
ConsoleNotAllowed = define("ConsoleNotAllowed", Forbidden, "console_not_allowed",
                           "只有单位管理员和工委工作人员可以登录控制台")
ConsoleCsrf = define("ConsoleCsrf", Forbidden, "console_csrf", "页面已过期，请刷新后重试")
