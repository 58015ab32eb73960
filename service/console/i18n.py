"""The console's words in English and Chinese, chosen by a cookie the language switch sets or Accept-Language."""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "zh")
LANG_COOKIE: Final = "sw_lang"

#: Reject reasons in key order (1-5): the code posted by the form and stored (in English) in the audit trail.
REJECT_REASONS: Final = ("not_a_violation", "wrong_object", "duplicate", "permitted", "other")

_EN: Final[dict[str, str]] = {
    "title": "Review console",
    "street_vending": "Street vending",
    "piled_litter": "Piled litter",
    "illegal_parking": "Illegal parking",
    "unpermitted_ad": "Unpermitted ad",
    "draft": "Draft",
    "confirmed": "Confirmed",
    "rejected": "Rejected",
    "confirm": "Confirm",
    "reject": "Reject",
    "reopen": "Reopen",
    "reopen_case": "Reopen the case (admin)",
    "not_a_violation": "Not a violation",
    "wrong_object": "Wrong object",
    "duplicate": "Duplicate",
    "permitted": "Permitted",
    "other": "Other",
    "other_text": "What is it? (required for Other)",
    "sign_in": "Sign in",
    "sign_out": "Sign out",
    "api_key": "Your API key (reviewer or admin)",
    "queue": "Queue",
    "all_types": "All types",
    "camera": "Camera",
    "zone": "Zone",
    "type": "Type",
    "since": "Detected from",
    "until": "Detected before",
    "newest_first": "Newest first",
    "filter": "Filter",
    "clear_filters": "Clear",
    "detected": "Detected",
    "duration": "Lasted",
    "confidence": "Confidence",
    "labels": "Labels",
    "model": "Model",
    "sightings": "Sightings",
    "case": "Case",
    "scene": "Scene",
    "crop": "Crop",
    "first-seen": "First sighting",
    "before": "Before (scene)",
    "after": "After (camera check)",
    "verification_proposal": "Camera check",
    "proposal_passed": "gone: proposes check passed",
    "proposal_failed": "still there: proposes check failed",
    "evidence": "Evidence",
    "no_evidence": "No evidence images.",
    "audit": "Audit trail",
    "no_reviews": "No decisions yet.",
    "reviewer": "Reviewer",
    "decision": "Decision",
    "reason": "Reason",
    "when": "When",
    "empty_queue": "No draft cases. New ones appear here by themselves.",
    "shortcuts": "Keys: c confirm · r reject, then 1-5 reason · j/k next/previous · u undo",
    "undo_hint": "Your last decision: {decision} case {case_id}. Press u to undo.",
    "undo": "Undo",
    "next": "Next (j)",
    "previous": "Previous (k)",
    "not_draft": "This case is {status}: only a draft can be decided.",
    "reason_needed": "Choose a reason to reject (and describe it for Other).",
    "reopen_reason": "Why reopen it? (required)",
    "not_decided": "Only a confirmed or rejected case can be reopened.",
    "first_seen_at": "First seen",
    "last_seen_at": "Last seen",
    "bad_key": "Unknown or revoked key.",
    "agent_key": "An agent key cannot sign in to the review console: use a reviewer or admin key.",
    "expired_form": "The form expired; please try again.",
}

_ZH: Final[dict[str, str]] = {
    "title": "审核台",
    "street_vending": "占道经营",
    "piled_litter": "暴露垃圾",
    "illegal_parking": "违章停车",
    "unpermitted_ad": "违规广告",
    "draft": "待审核",
    "confirmed": "已确认",
    "rejected": "已驳回",
    "confirm": "确认",
    "reject": "驳回",
    "reopen": "重新打开",
    "reopen_case": "重新打开案件（管理员）",
    "not_a_violation": "不构成违规",
    "wrong_object": "识别对象错误",
    "duplicate": "重复案件",
    "permitted": "已获许可",
    "other": "其他",
    "other_text": "请说明（选其他时必填）",
    "sign_in": "登录",
    "sign_out": "退出",
    "api_key": "API 密钥（审核员或管理员）",
    "queue": "待审队列",
    "all_types": "全部类型",
    "camera": "摄像头",
    "zone": "区域",
    "type": "类型",
    "since": "检测时间起",
    "until": "检测时间止",
    "newest_first": "最新在前",
    "filter": "筛选",
    "clear_filters": "清除",
    "detected": "检测时间",
    "duration": "持续",
    "confidence": "置信度",
    "labels": "标签",
    "model": "模型",
    "sightings": "发现次数",
    "case": "案件",
    "scene": "全景",
    "crop": "特写",
    "first-seen": "首次发现",
    "before": "处置前（全景）",
    "after": "处置后（摄像头核查）",
    "verification_proposal": "摄像头核查",
    "proposal_passed": "已消失：建议核查通过",
    "proposal_failed": "仍存在：建议核查不通过",
    "evidence": "证据",
    "no_evidence": "没有证据图片。",
    "audit": "审核记录",
    "no_reviews": "尚无审核。",
    "reviewer": "审核员",
    "decision": "操作",
    "reason": "原因",
    "when": "时间",
    "empty_queue": "没有待审案件。新案件会自动出现。",
    "shortcuts": "快捷键：c 确认 · r 驳回，再按 1-5 选原因 · j/k 下一个/上一个 · u 撤销",
    "undo_hint": "上一次操作：{decision} 案件 {case_id}。按 u 撤销。",
    "undo": "撤销",
    "next": "下一个 (j)",
    "previous": "上一个 (k)",
    "not_draft": "此案件{status}，只有待审核案件可以处理。",
    "reason_needed": "请选择驳回原因（选其他时请说明）。",
    "reopen_reason": "重新打开的原因（必填）",
    "not_decided": "只有已确认或已驳回的案件可以重新打开。",
    "first_seen_at": "首次发现",
    "last_seen_at": "最后发现",
    "bad_key": "密钥无效或已吊销。",
    "agent_key": "采集端（agent）密钥不能登录审核台，请使用审核员或管理员密钥。",
    "expired_form": "表单已过期，请重试。",
}

MESSAGES: Final[dict[str, dict[str, str]]] = {"en": _EN, "zh": _ZH}


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    """The switch's choice if there is one, else the first of the browser's languages the console speaks."""
    if cookie in LANGUAGES:
        return cookie
    weighted = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, i, tag.strip().lower().split("-")[0]))
    return next((lang for _q, _i, lang in sorted(weighted) if lang in LANGUAGES), "en")


def translator(lang: str) -> dict[str, str]:
    """The words of `lang`."""
    return MESSAGES[lang]
