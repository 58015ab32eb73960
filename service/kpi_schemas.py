"""The wire schema of `GET /api/v1/kpis`: the closed loop's KPIs per grid, department or type."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import (
    BaseModel,
    Field,
)

from service.schemas import CaseType


class KpiGroupBy(StrEnum):
    """What `GET /api/v1/kpis` reports per: a grid, a department, a case type, or none (the totals)."""

    GRID = "grid"
    DEPARTMENT = "department"
    TYPE = "type"
    NONE = "none"


class HotSpot(BaseModel):
    """A repeat hot spot: one camera zone where cases of one type were confirmed again and again."""

    camera_id: str
    zone_id: str
    type: CaseType
    cases: int = Field(description="Confirmed cases (confirmed or further on in the loop) in the window.")
    last_detected_at: datetime = Field(description="When the latest of them was detected.")


class KpiGroup(BaseModel):
    """The KPIs of one group of cases: those detected in the period (`found` to `overdue`), and the repeat hot
    spots of the window before the period's end. A rate is null when its denominator is zero."""

    key: str | None = Field(
        description="The group's grid id, department id or case type; null for the totals (group_by none), for "
        "the cases in no grid, or for the cases dispatched to no department."
    )
    name: str | None = Field(description="The grid's or department's name; null for the other groupings.")
    found: int = Field(description="Cases detected in the period.")
    reviewed: int = Field(description="Of them, the cases a reviewer decided (every status but draft).")
    confirmed: int = Field(description="Of them, the cases confirmed (confirmed or further on in the loop).")
    confirmed_rate: float | None = Field(
        description="confirmed ÷ reviewed: the detector's precision as reviewers judged it."
    )
    filed: int = Field(description="Cases filed (立案), whatever happened to them since.")
    closed: int = Field(description="Cases closed (结案).")
    median_closure_s: float | None = Field(
        description="Median seconds from discovery (first seen) to closure over the closed cases."
    )
    handled: int = Field(description="Cases handled (处置) and not sent back by a failed verification since.")
    handled_on_time: int = Field(description="Of them, the cases handled at or before their deadline.")
    on_time_rate: float | None = Field(description="handled_on_time ÷ handled.")
    overdue: int = Field(description="Cases dispatched, not handled, whose deadline has passed (service clock).")
    hot_spots: list[HotSpot] = Field(
        description="Camera zones and types with at least `repeat_n` confirmed cases in the window, most first."
    )


class KpiReport(BaseModel):
    """The answer of `GET /api/v1/kpis`."""

    since: datetime | None = Field(description="The period's start (detected_at ≥ since); null: from the first case.")
    until: datetime | None = Field(description="The period's end (detected_at < until); null: up to now.")
    group_by: KpiGroupBy
    now: datetime = Field(description="The service's clock when the report was made: what `overdue` compares to.")
    repeat_n: int = Field(description="Confirmed cases a camera zone and type needs in the window to be a hot spot.")
    repeat_days: int = Field(description="The hot-spot window: the days before `until` (or now, without one).")
    groups: list[KpiGroup] = Field(
        description="One group per grid, department or type (every one defined, also those without cases, then "
        "the cases in none); one group for group_by none."
    )
