"""The closed loop's KPIs (docs/closed-loop.md) per grid, department or type: counted in SQL, medians in Python."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.kpi_schemas import HotSpot, KpiGroup, KpiGroupBy, KpiReport
from service.models import Case, Department, Grid
from service.schemas import CaseStatus, CaseType

S = CaseStatus

#: Statuses of a case a reviewer confirmed: confirmed itself and every later step of the loop.
CONFIRMED: Final = (S.CONFIRMED, S.FILED, S.DISPATCHED, S.HANDLED, S.VERIFIED, S.CLOSED)


@dataclass(frozen=True, slots=True)
class KpiFilter:
    """Which cases the KPIs count: detected in [since, until), and of the given type, grid, department, camera."""

    since: datetime | None = None
    until: datetime | None = None
    case_type: CaseType | None = None
    grid_id: str | None = None
    department_id: str | None = None
    camera_id: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses of every filter but the period."""
        wanted: list[ColumnElement[bool]] = []
        if self.case_type is not None:
            wanted.append(Case.type == self.case_type)
        if self.grid_id is not None:
            wanted.append(Case.grid_id == self.grid_id)
        if self.department_id is not None:
            wanted.append(Case.department_id == self.department_id)
        if self.camera_id is not None:
            wanted.append(Case.camera_id == self.camera_id)
        return wanted

    def period(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses of the period, on detection time."""
        within: list[ColumnElement[bool]] = []
        if self.since is not None:
            within.append(Case.detected_at >= self.since)
        if self.until is not None:
            within.append(Case.detected_at < self.until)
        return within


_COLUMN: Final[dict[KpiGroupBy, InstrumentedAttribute[Any] | None]] = {
    KpiGroupBy.GRID: Case.grid_id,
    KpiGroupBy.DEPARTMENT: Case.department_id,
    KpiGroupBy.TYPE: Case.type,
    KpiGroupBy.NONE: None,
}


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _key(value: object) -> str | None:
    return None if value is None else str(value.value if isinstance(value, CaseType) else value)


def kpi_report(
    *,
    session: Session,
    wanted: KpiFilter,
    group_by: KpiGroupBy,
    repeat_n: int,
    repeat_days: int,
    now: datetime,
) -> KpiReport:
    """The KPIs of the cases `wanted` selects, one group per value of `group_by`.

    Every count is of the cases detected in the period; `overdue` compares deadlines with `now`. Hot spots are
    counted over the `repeat_days` days before the period's end (`until`, or `now` without one), of confirmed
    cases only: a rejected detection is no violation, and an undecided one may not be.
    """
    column = _COLUMN[group_by]
    keyed = [] if column is None else [column]
    where = [*wanted.clauses(), *wanted.period()]
    counts: dict[str | None, tuple[int, ...]] = {}
    rows = session.execute(
        select(
            *keyed,
            func.count(),
            _count_if(Case.status != S.DRAFT),
            _count_if(Case.status.in_(CONFIRMED)),
            _count_if(Case.filed_at.is_not(None)),
            _count_if(Case.status == S.CLOSED),
            _count_if(Case.handled_at.is_not(None)),
            _count_if(Case.handled_at <= Case.deadline_at),
            _count_if(and_(Case.status == S.DISPATCHED, Case.deadline_at < now)),
        )
        .where(*where)
        .group_by(*keyed)
    )
    for row in rows:
        values = tuple(int(v) for v in row[len(keyed) :])
        counts[_key(row[0]) if keyed else None] = values

    # Durations in Python: SQLite and PostgreSQL share no median, nor a way to subtract two timestamps.
    durations: dict[str | None, list[float]] = defaultdict(list)
    closed = select(*keyed, Case.first_seen_at, Case.closed_at).where(*where, Case.status == S.CLOSED)
    for row in session.execute(closed):
        first_seen, closed_at = row[-2], row[-1]
        durations[_key(row[0]) if keyed else None].append((closed_at - first_seen).total_seconds())

    end = wanted.until or now
    spots: dict[str | None, list[HotSpot]] = defaultdict(list)
    hot = (
        select(*keyed, Case.camera_id, Case.zone_id, Case.type, func.count(), func.max(Case.detected_at))
        .where(
            *wanted.clauses(),
            Case.status.in_(CONFIRMED),
            Case.detected_at >= end - timedelta(days=repeat_days),
            Case.detected_at < end,
        )
        .group_by(*keyed, Case.camera_id, Case.zone_id, Case.type)
        .having(func.count() >= repeat_n)
        .order_by(func.count().desc(), Case.camera_id, Case.zone_id, Case.type)
    )
    for row in session.execute(hot):
        camera_id, zone_id, case_type, n, last = row[len(keyed) :]
        spot = HotSpot(camera_id=camera_id, zone_id=zone_id, type=case_type, cases=n, last_detected_at=last)
        spots[_key(row[0]) if keyed else None].append(spot)

    names = _names(session, group_by, wanted)
    seen = set(counts) | set(spots)
    keys = list(names) + sorted((k for k in seen if k not in names), key=lambda k: (k is None, k or ""))
    return KpiReport(
        since=wanted.since,
        until=wanted.until,
        group_by=group_by,
        now=now,
        repeat_n=repeat_n,
        repeat_days=repeat_days,
        groups=[_group(k, names.get(k), counts.get(k), durations.get(k, []), spots.get(k, [])) for k in keys],
    )


def _names(session: Session, group_by: KpiGroupBy, wanted: KpiFilter) -> dict[str | None, str | None]:
    """Every group the grouping defines, in order, with its name: listed also when it has no case."""
    if group_by is KpiGroupBy.NONE:
        return {None: None}
    if group_by is KpiGroupBy.TYPE:
        return {t.value: None for t in CaseType if wanted.case_type in (None, t)}
    table = Grid if group_by is KpiGroupBy.GRID else Department
    only = wanted.grid_id if group_by is KpiGroupBy.GRID else wanted.department_id
    query = select(table.id, table.name).order_by(table.id)
    if only is not None:
        query = query.where(table.id == only)
    return {key: name for key, name in session.execute(query)}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _group(
    key: str | None,
    name: str | None,
    counts: tuple[int, ...] | None,
    durations: list[float],
    spots: list[HotSpot],
) -> KpiGroup:
    found, reviewed, confirmed, filed, closed, handled, on_time, overdue = counts or (0,) * 8
    return KpiGroup(
        key=key,
        name=name,
        found=found,
        reviewed=reviewed,
        confirmed=confirmed,
        confirmed_rate=_rate(confirmed, reviewed),
        filed=filed,
        closed=closed,
        median_closure_s=statistics.median(durations) if durations else None,
        handled=handled,
        handled_on_time=on_time,
        on_time_rate=_rate(on_time, handled),
        overdue=overdue,
        hot_spots=spots,
    )
