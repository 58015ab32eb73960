"""`/api/v1/kpis`: the closed loop's KPIs per grid, department or type, for reviewers, dispatchers and admins."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError

from service.auth import Principal
from service.deps import RoleGate, ServicesDep, SessionDep
from service.kpi_schemas import KpiGroupBy, KpiReport
from service.kpis import KpiFilter, kpi_report
from service.routes import API_PREFIX
from service.schemas import CaseType, Code, Name, Problem, Role, Time

router = APIRouter(prefix=f"{API_PREFIX}/kpis", tags=["kpis"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 403, 422, 500)}

#: Who reads the KPIs: the people who run the loop, not the agents and departments working in it.
KPI_READERS: Final = frozenset({Role.REVIEWER, Role.DISPATCHER, Role.ADMIN})
KpiReaderDep = Annotated[Principal, Depends(RoleGate(KPI_READERS))]


@router.get("", responses=_ERRORS)
def get_kpis(
    reader: KpiReaderDep,
    services: ServicesDep,
    session: SessionDep,
    since: Annotated[Time | None, Query(description="Period start: detected at or after (ISO 8601 with zone).")] = None,
    until: Annotated[Time | None, Query(description="Period end: detected before (ISO 8601 with zone).")] = None,
    group_by: Annotated[KpiGroupBy, Query(description="One group per grid, department or type; none: totals.")] = (
        KpiGroupBy.NONE
    ),
    case_type: Annotated[CaseType | None, Query(alias="type", description="Only cases of this type.")] = None,
    grid_id: Annotated[Code | None, Query(description="Only cases in this grid.")] = None,
    department_id: Annotated[Code | None, Query(description="Only cases dispatched to this department.")] = None,
    camera_id: Annotated[Name | None, Query(description="Only cases of this camera.")] = None,
    repeat_n: Annotated[
        int, Query(ge=2, le=10_000, description="Confirmed cases of one camera zone and type that make a hot spot.")
    ] = 3,
    repeat_days: Annotated[
        int, Query(ge=1, le=366, description="The hot-spot window: days before `until` (or now, without one).")
    ] = 30,
) -> KpiReport:
    """Cases found, confirmed rate, filed, closed, median discovery→closure time, on-time rate, overdue cases and
    repeat hot spots of the cases detected in a period, per grid, department or type."""
    if since is not None and until is not None and until <= since:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "until"), "msg": f"must be after since ({since.isoformat()})"}]
        )
    wanted = KpiFilter(
        since=since,
        until=until,
        case_type=case_type,
        grid_id=grid_id,
        department_id=department_id,
        camera_id=camera_id,
    )
    with session.begin():
        return kpi_report(
            session=session,
            wanted=wanted,
            group_by=group_by,
            repeat_n=repeat_n,
            repeat_days=repeat_days,
            now=services.clock(),
        )
