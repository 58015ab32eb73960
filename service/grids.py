"""Reads and writes of the grid map and its deadlines: departments, grids, grid zones, grid duties, policies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import begin_write
from service.models import DeadlinePolicy, Department, Grid, GridDuty, GridZone
from service.schemas import CaseType, Priority

#: Every write of the grid map serialises on this lock: the map is small and changes rarely.
_LOCK = "grid-map"


class GridMapError(ValueError):
    """A write that would break the grid map (an unknown grid or department, a zone already in a grid); `field`
    names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def create_department(*, session: Session, department_id: str, name: str) -> Department:
    """A new department; GridMapError when the id is taken."""
    begin_write(session, lock_key=_LOCK)
    if session.get(Department, department_id) is not None:
        session.rollback()
        raise GridMapError("id", f"department {department_id!r} exists already")
    department = Department(id=department_id, name=name)
    session.add(department)
    session.commit()
    return department


def create_grid(*, session: Session, grid_id: str, name: str) -> Grid:
    """A new grid; GridMapError when the id is taken."""
    begin_write(session, lock_key=_LOCK)
    if session.get(Grid, grid_id) is not None:
        session.rollback()
        raise GridMapError("id", f"grid {grid_id!r} exists already")
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
            raise GridMapError("zone_id", f"zone {zone_id!r} of camera {camera_id!r} is in grid {held.grid_id!r}")
    except GridMapError:
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


def deadline_policies(*, session: Session) -> list[DeadlinePolicy]:
    """Every deadline policy, by type and priority."""
    return list(session.scalars(select(DeadlinePolicy).order_by(DeadlinePolicy.type, DeadlinePolicy.priority)))
