"""The KPI page: the closed loop's KPIs per grid, department or type as a table and server-drawn SVG bar charts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from service.console.charts import BarChart, bar_chart, percent
from service.console.i18n import translator
from service.console.web import PREFIX, PageUserDep, language, parse_time, render, seconds_text
from service.deps import ServicesDep, SessionDep
from service.kpi_schemas import KpiGroup, KpiGroupBy, KpiReport
from service.kpis import KpiFilter, kpi_report
from service.schemas import CaseType

router = APIRouter(prefix=PREFIX, include_in_schema=False)

#: The hot-spot defaults of the API (`GET /api/v1/kpis`), and the bounds it allows.
REPEAT_N: Final = (3, 2, 10_000)
REPEAT_DAYS: Final = (30, 1, 366)


@dataclass(frozen=True, slots=True)
class KpiQuery:
    """The page's form as sent, and what it asks for."""

    raw: dict[str, str]
    wanted: KpiFilter
    group_by: KpiGroupBy
    repeat_n: int
    repeat_days: int

    @property
    def query(self) -> str:
        """The form as a query string, for links that keep it."""
        return urlencode(self.raw)


def _bounded(params: Mapping[str, str], name: str, bounds: tuple[int, int, int]) -> int:
    default, low, high = bounds
    value = params.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise HTTPException(422, f"{name}: a whole number from {low} to {high} ({value!r})")
    return int(value)


def parse_kpi_query(params: Mapping[str, str]) -> KpiQuery:
    """The page's parameters (unknown ones ignored); 422 naming the parameter for one that is wrong."""
    keys = ("since", "until", "group_by", "type", "repeat_n", "repeat_days")
    raw = {k: params[k].strip() for k in keys if params.get(k, "").strip()}
    grouping = raw.get("group_by", KpiGroupBy.GRID.value)
    if grouping not in {g.value for g in KpiGroupBy}:
        raise HTTPException(422, f"group_by: one of grid, department, type, none ({grouping!r})")
    kind = raw.get("type")
    if kind is not None and kind not in {t.value for t in CaseType}:
        raise HTTPException(422, f"type: not a case type ({kind!r})")
    since, until = parse_time("since", raw.get("since", "")), parse_time("until", raw.get("until", ""))
    if since is not None and until is not None and until <= since:
        raise HTTPException(422, "until: must be after since")
    return KpiQuery(
        raw=raw,
        wanted=KpiFilter(since=since, until=until, case_type=None if kind is None else CaseType(kind)),
        group_by=KpiGroupBy(grouping),
        repeat_n=_bounded(raw, "repeat_n", REPEAT_N),
        repeat_days=_bounded(raw, "repeat_days", REPEAT_DAYS),
    )


def group_label(group: KpiGroup, group_by: KpiGroupBy, words: Mapping[str, str]) -> str:
    """How a group is named on the page: a grid's or department's name and id, a type in words."""
    if group_by is KpiGroupBy.TYPE and group.key is not None:
        return words[group.key]
    if group.key is None:
        return {KpiGroupBy.GRID: words["no_grid"], KpiGroupBy.DEPARTMENT: words["no_department"]}.get(
            group_by, words["all_cases"]
        )
    return f"{group.name} ({group.key})" if group.name else group.key


def _charts(report: KpiReport, labels: list[str]) -> tuple[BarChart, BarChart]:
    groups = report.groups
    counts = bar_chart(
        labels,
        {
            "found": [g.found for g in groups],
            "confirmed": [g.confirmed for g in groups],
            "closed": [g.closed for g in groups],
        },
    )
    rates = bar_chart(
        labels,
        {"confirmed_rate": [g.confirmed_rate for g in groups], "on_time_rate": [g.on_time_rate for g in groups]},
        scale_max=1.0,
        text=percent,
    )
    return counts, rates


@router.get("/kpis")
def kpi_page(request: Request, services: ServicesDep, session: SessionDep, user: PageUserDep) -> Response:
    """KPIs of the cases detected in a period, per grid, department or type, with the totals and hot spots."""
    asked = parse_kpi_query(request.query_params)
    now = services.clock()
    with session.begin():
        report = kpi_report(
            session=session,
            wanted=asked.wanted,
            group_by=asked.group_by,
            repeat_n=asked.repeat_n,
            repeat_days=asked.repeat_days,
            now=now,
        )
        (totals,) = kpi_report(
            session=session,
            wanted=asked.wanted,
            group_by=KpiGroupBy.NONE,
            repeat_n=asked.repeat_n,
            repeat_days=asked.repeat_days,
            now=now,
        ).groups
    words = translator(language(request))
    labels = [group_label(g, asked.group_by, words) for g in report.groups]
    counts, rates = _charts(report, labels)
    context = {
        "asked": asked,
        "report": report,
        "totals": totals,
        "rows": list(zip(labels, report.groups, strict=True)),
        "spots": [(label, s) for label, g in zip(labels, report.groups, strict=True) for s in g.hot_spots],
        "counts_chart": counts,
        "rates_chart": rates,
        "groupings": [g for g in KpiGroupBy if g is not KpiGroupBy.NONE],
        "types": list(CaseType),
        "percent": percent,
        "seconds_text": seconds_text,
    }
    return render(request, services, "kpis.html", context, user=user)
