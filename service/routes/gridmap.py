"""The grid map and deadlines: admins manage departments, grids, grid zones, grid duties and deadline policies;
reviewers and dispatchers read them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from service import grids
from service.deps import AdminDep, GridMapReaderDep, SessionDep
from service.gridmap_schemas import (
    DeadlinePolicyIn,
    DeadlinePolicyOut,
    DepartmentIn,
    DepartmentOut,
    GridDutyIn,
    GridDutyOut,
    GridIn,
    GridOut,
    GridZoneIn,
    GridZoneOut,
    RenameIn,
)
from service.models import DeadlinePolicy, Department, Grid, GridDuty, GridZone
from service.routes import API_PREFIX
from service.schemas import CaseType, Code, Name, Problem

router = APIRouter(prefix=API_PREFIX, tags=["grid map"])

_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 403, 404, 409, 422, 500)}

DepartmentId = Annotated[Code, Path(description="The department's id.")]
GridId = Annotated[Code, Path(description="The grid's id.")]
T = TypeVar("T")


@contextmanager
def _answers() -> Iterator[None]:
    """The grid map's refusals as HTTP answers: 422 naming the field, 409, 404."""
    try:
        yield
    except grids.GridMapError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", exc.field), "msg": str(exc)}]) from None
    except grids.GridMapConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except grids.GridMapNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


def _call(write: Callable[[], T]) -> T:
    with _answers():
        return write()


def _department(d: Department) -> DepartmentOut:
    return DepartmentOut(id=d.id, name=d.name)


def _grid(g: Grid) -> GridOut:
    return GridOut(id=g.id, name=g.name)


def _zone(z: GridZone) -> GridZoneOut:
    return GridZoneOut(camera_id=z.camera_id, zone_id=z.zone_id, grid_id=z.grid_id)


def _duty(d: GridDuty) -> GridDutyOut:
    return GridDutyOut(grid_id=d.grid_id, type=d.type, department_id=d.department_id)


def _policy(p: DeadlinePolicy) -> DeadlinePolicyOut:
    return DeadlinePolicyOut(type=p.type, priority=p.priority, hours=p.hours)


@router.get("/departments", responses=_ERRORS)
def list_departments(reader: GridMapReaderDep, session: SessionDep) -> list[DepartmentOut]:
    """Every department, by id."""
    return [_department(d) for d in grids.list_departments(session=session)]


@router.post("/departments", status_code=201, responses=_ERRORS)
def create_department(admin: AdminDep, session: SessionDep, body: DepartmentIn) -> DepartmentOut:
    """A new department; 409 when the id is taken."""
    return _department(_call(lambda: grids.create_department(session=session, department_id=body.id, name=body.name)))


@router.put("/departments/{department_id}", responses=_ERRORS)
def rename_department(
    admin: AdminDep, session: SessionDep, department_id: DepartmentId, body: RenameIn
) -> DepartmentOut:
    """Rename a department."""
    return _department(
        _call(lambda: grids.rename_department(session=session, department_id=department_id, name=body.name))
    )


@router.delete("/departments/{department_id}", status_code=204, response_class=Response, responses=_ERRORS)
def delete_department(admin: AdminDep, session: SessionDep, department_id: DepartmentId) -> None:
    """Delete a department; 409 while a case, an API key or a grid duty names it."""
    _call(lambda: grids.delete_department(session=session, department_id=department_id))


@router.get("/grids", responses=_ERRORS)
def list_grids(reader: GridMapReaderDep, session: SessionDep) -> list[GridOut]:
    """Every grid, by id."""
    return [_grid(g) for g in grids.list_grids(session=session)]


@router.post("/grids", status_code=201, responses=_ERRORS)
def create_grid(admin: AdminDep, session: SessionDep, body: GridIn) -> GridOut:
    """A new grid; 409 when the id is taken."""
    return _grid(_call(lambda: grids.create_grid(session=session, grid_id=body.id, name=body.name)))


@router.put("/grids/{grid_id}", responses=_ERRORS)
def rename_grid(admin: AdminDep, session: SessionDep, grid_id: GridId, body: RenameIn) -> GridOut:
    """Rename a grid."""
    return _grid(_call(lambda: grids.rename_grid(session=session, grid_id=grid_id, name=body.name)))


@router.delete("/grids/{grid_id}", status_code=204, response_class=Response, responses=_ERRORS)
def delete_grid(admin: AdminDep, session: SessionDep, grid_id: GridId) -> None:
    """Delete a grid with its zones and duties; 409 while cases belong to it."""
    _call(lambda: grids.delete_grid(session=session, grid_id=grid_id))


@router.get("/grid-zones", responses=_ERRORS)
def list_grid_zones(
    reader: GridMapReaderDep,
    session: SessionDep,
    grid_id: Annotated[Code | None, Query(description="Only this grid's zones.")] = None,
) -> list[GridZoneOut]:
    """The camera zones of every grid (or of one), by camera and zone."""
    return [_zone(z) for z in grids.list_grid_zones(session=session, grid_id=grid_id)]


@router.post("/grid-zones", status_code=201, responses=_ERRORS)
def add_grid_zone(admin: AdminDep, session: SessionDep, body: GridZoneIn) -> GridZoneOut:
    """Put a camera zone in a grid: 422 for an unknown grid, 409 when the zone is in a grid already. Cases made
    there afterwards take the grid."""
    return _zone(
        _call(
            lambda: grids.add_grid_zone(
                session=session, camera_id=body.camera_id, zone_id=body.zone_id, grid_id=body.grid_id
            )
        )
    )


@router.delete("/grid-zones", status_code=204, response_class=Response, responses=_ERRORS)
def delete_grid_zone(
    admin: AdminDep, session: SessionDep, camera_id: Annotated[Name, Query()], zone_id: Annotated[Name, Query()]
) -> None:
    """Take a camera zone out of its grid (by query parameters: camera and zone ids may hold a slash)."""
    _call(lambda: grids.delete_grid_zone(session=session, camera_id=camera_id, zone_id=zone_id))


@router.get("/grid-duties", responses=_ERRORS)
def list_grid_duties(reader: GridMapReaderDep, session: SessionDep) -> list[GridDutyOut]:
    """Which department handles which type of case in which grid."""
    return [_duty(d) for d in grids.list_grid_duties(session=session)]


@router.put("/grid-duties", responses=_ERRORS)
def set_grid_duty(admin: AdminDep, session: SessionDep, body: GridDutyIn) -> GridDutyOut:
    """Make a department responsible for a type of case in a grid (replacing whoever was); 422 for an unknown
    grid or department. Filed cases of that grid and type are dispatched to it from then on."""
    return _duty(
        _call(
            lambda: grids.set_grid_duty(
                session=session, grid_id=body.grid_id, case_type=body.type, department_id=body.department_id
            )
        )
    )


@router.delete("/grid-duties", status_code=204, response_class=Response, responses=_ERRORS)
def delete_grid_duty(
    admin: AdminDep,
    session: SessionDep,
    grid_id: Annotated[Code, Query()],
    case_type: Annotated[CaseType, Query(alias="type")],
) -> None:
    """Drop a grid duty: filed cases of that grid and type then wait for a dispatcher."""
    _call(lambda: grids.delete_grid_duty(session=session, grid_id=grid_id, case_type=case_type))


@router.get("/deadline-policies", responses=_ERRORS)
def list_deadline_policies(reader: GridMapReaderDep, session: SessionDep) -> list[DeadlinePolicyOut]:
    """Hours from dispatch to deadline, per case type and priority."""
    return [_policy(p) for p in grids.list_deadline_policies(session=session)]


@router.put("/deadline-policies", responses=_ERRORS)
def set_deadline_policy(admin: AdminDep, session: SessionDep, body: DeadlinePolicyIn) -> DeadlinePolicyOut:
    """Set the hours of one type and priority; cases already dispatched keep their deadline."""
    return _policy(
        grids.set_deadline_policy(session=session, case_type=body.type, priority=body.priority, hours=body.hours)
    )
