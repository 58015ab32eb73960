"""Reads and writes of the grid map and its deadlines: departments, grids, grid zones, grid duties, policies."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import begin_write
from service.models import ApiKey, Case, DeadlinePolicy, Department, Grid, GridDuty, GridZone
from service.schemas import CaseType, Priority

#: Every write of the grid map serialises on this lock: the map is small and changes rarely.
_LOCK = "grid-map"


class GridMapError(ValueError):
    """A write that names a grid or department that does not exist (422); `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class GridMapConflictError(Exception):
    """A write that clashes with what is stored (409): an id taken, a zone in another grid, a department in use."""


class GridMapNotFoundError(LookupError):
    """The row to change or delete does not exist (404)."""


def create_department(*, session: Session, department_id: str, name: str) -> Department:
    """A new department; GridMapError when the id is taken."""
    begin_write(session, lock_key=_LOCK)
    if session.get(Department, department_id) is not None:
        session.rollback()
        raise GridMapConflictError(f"department {department_id!r} exists already")
    department = Department(id=department_id, name=name)
    session.add(department)
    session.commit()
    return department


def create_grid(*, session: Session, grid_id: str, name: str) -> Grid:
    """A new grid; GridMapError when the id is taken."""
    begin_write(session, lock_key=_LOCK)
    if session.get(Grid, grid_id) is not None:
        session.rollback()
        raise GridMapConflictError(f"grid {grid_id!r} exists already")
    grid = Grid(id=grid_id, name=name)
    session.add(grid)
    session.commit()
    return grid


def add_grid_zone(*, session: Session, camera_id: str, zone_id: str, grid_id: str) -> GridZone:
    """Put a camera zone in a grid; GridMapError for an unknown grid or a zone already in one.

    Cases made afterwards in the zone take the grid; cases already made keep theirs.
    """
    begin_write(session, lock_key=_LOCK)
    try:
        if session.get(Grid, grid_id) is None:
            raise GridMapError("grid_id", f"no grid {grid_id!r}")
        held = session.get(GridZone, (camera_id, zone_id))
        if held is not None:
            raise GridMapConflictError(
                f"zone {zone_id!r} of camera {camera_id!r} is in grid {held.grid_id!r} already: "
                "a zone belongs to one grid; delete it there first"
            )
    except (GridMapError, GridMapConflictError):
        session.rollback()
        raise
    zone = GridZone(camera_id=camera_id, zone_id=zone_id, grid_id=grid_id)
    session.add(zone)
    session.commit()
    return zone


def set_grid_duty(*, session: Session, grid_id: str, case_type: CaseType, department_id: str) -> GridDuty:
    """Make a department responsible for one type of case in a grid (replacing whoever was)."""
    begin_write(session, lock_key=_LOCK)
    try:
        if session.get(Grid, grid_id) is None:
            raise GridMapError("grid_id", f"no grid {grid_id!r}")
        if session.get(Department, department_id) is None:
            raise GridMapError("department_id", f"no department {department_id!r}")
    except GridMapError:
        session.rollback()
        raise
    duty = session.get(GridDuty, (grid_id, case_type)) or GridDuty(grid_id=grid_id, type=case_type)
    duty.department_id = department_id
    session.add(duty)
    session.commit()
    return duty


def set_deadline_policy(*, session: Session, case_type: CaseType, priority: Priority, hours: float) -> DeadlinePolicy:
    """Set the hours from dispatch to deadline of one type and priority; cases already dispatched keep theirs."""
    begin_write(session, lock_key=_LOCK)
    policy = session.get(DeadlinePolicy, (case_type, priority)) or DeadlinePolicy(type=case_type, priority=priority)
    policy.hours = hours
    session.add(policy)
    session.commit()
    return policy


def list_deadline_policies(*, session: Session) -> list[DeadlinePolicy]:
    """Every deadline policy, by type and priority."""
    return list(session.scalars(select(DeadlinePolicy).order_by(DeadlinePolicy.type, DeadlinePolicy.priority)))


def list_departments(*, session: Session) -> list[Department]:
    """Every department, by id."""
    return list(session.scalars(select(Department).order_by(Department.id)))


def rename_department(*, session: Session, department_id: str, name: str) -> Department:
    """Give a department another name; GridMapNotFoundError when there is none with this id."""
    begin_write(session, lock_key=_LOCK)
    department = session.get(Department, department_id)
    if department is None:
        session.rollback()
        raise GridMapNotFoundError(f"no department {department_id!r}")
    department.name = name
    session.commit()
    return department


def delete_department(*, session: Session, department_id: str) -> None:
    """Delete a department no case, key or grid duty names (GridMapConflictError otherwise)."""
    begin_write(session, lock_key=_LOCK)
    try:
        department = session.get(Department, department_id)
        if department is None:
            raise GridMapNotFoundError(f"no department {department_id!r}")
        users = [
            f"{n} {what}"
            for what, n in (
                ("case(s)", session.scalar(select(func.count()).where(Case.department_id == department_id))),
                ("API key(s)", session.scalar(select(func.count()).where(ApiKey.department_id == department_id))),
                ("grid duty(ies)", session.scalar(select(func.count()).where(GridDuty.department_id == department_id))),
            )
            if n
        ]
        if users:
            raise GridMapConflictError(f"department {department_id!r} is named by {', '.join(users)}")
    except (GridMapNotFoundError, GridMapConflictError):
        session.rollback()
        raise
    session.delete(department)
    session.commit()


def list_grids(*, session: Session) -> list[Grid]:
    """Every grid, by id."""
    return list(session.scalars(select(Grid).order_by(Grid.id)))


def rename_grid(*, session: Session, grid_id: str, name: str) -> Grid:
    """Give a grid another name; GridMapNotFoundError when there is none with this id."""
    begin_write(session, lock_key=_LOCK)
    grid = session.get(Grid, grid_id)
    if grid is None:
        session.rollback()
        raise GridMapNotFoundError(f"no grid {grid_id!r}")
    grid.name = name
    session.commit()
    return grid


def delete_grid(*, session: Session, grid_id: str) -> None:
    """Delete a grid with its zones and duties; GridMapConflictError while cases belong to it (their KPIs would
    lose their grid)."""
    begin_write(session, lock_key=_LOCK)
    try:
        grid = session.get(Grid, grid_id)
        if grid is None:
            raise GridMapNotFoundError(f"no grid {grid_id!r}")
        cases = session.scalar(select(func.count()).where(Case.grid_id == grid_id))
        if cases:
            raise GridMapConflictError(f"grid {grid_id!r} has {cases} case(s)")
    except (GridMapNotFoundError, GridMapConflictError):
        session.rollback()
        raise
    session.delete(grid)
    session.commit()


def list_grid_zones(*, session: Session, grid_id: str | None = None) -> list[GridZone]:
    """The camera zones of one grid, or of every grid; by camera and zone."""
    query = select(GridZone)
    if grid_id is not None:
        query = query.where(GridZone.grid_id == grid_id)
    return list(session.scalars(query.order_by(GridZone.camera_id, GridZone.zone_id)))


def delete_grid_zone(*, session: Session, camera_id: str, zone_id: str) -> None:
    """Take a camera zone out of its grid; cases made there keep their grid."""
    begin_write(session, lock_key=_LOCK)
    zone = session.get(GridZone, (camera_id, zone_id))
    if zone is None:
        session.rollback()
        raise GridMapNotFoundError(f"zone {zone_id!r} of camera {camera_id!r} is in no grid")
    session.delete(zone)
    session.commit()


def list_grid_duties(*, session: Session) -> list[GridDuty]:
    """Every grid duty, by grid and type."""
    return list(session.scalars(select(GridDuty).order_by(GridDuty.grid_id, GridDuty.type)))


def delete_grid_duty(*, session: Session, grid_id: str, case_type: CaseType) -> None:
    """Drop a grid duty: filed cases of that grid and type then wait for a dispatcher."""
    begin_write(session, lock_key=_LOCK)
    duty = session.get(GridDuty, (grid_id, case_type))
    if duty is None:
        session.rollback()
        raise GridMapNotFoundError(f"grid {grid_id!r} has no duty for {case_type.value}")
    session.delete(duty)
    session.commit()
