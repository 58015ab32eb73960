"""The wire schema of the grid map (departments, grids, their zones and duties) and the deadline policies."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from service.schemas import CaseType, Code, Name, Priority


class RenameIn(BaseModel):
    """The body of a PUT that renames a department or grid."""

    model_config = ConfigDict(extra="forbid")

    name: Name


class DepartmentIn(BaseModel):
    """A department (处置单位) that handles dispatched cases."""

    model_config = ConfigDict(extra="forbid")

    id: Code
    name: Name


class DepartmentOut(DepartmentIn):
    """A department as stored."""


class GridIn(BaseModel):
    """A grid (网格): the unit of ground a set of camera zones covers."""

    model_config = ConfigDict(extra="forbid")

    id: Code
    name: Name


class GridOut(GridIn):
    """A grid as stored."""


class GridZoneIn(BaseModel):
    """A camera zone's grid; a zone belongs to at most one grid."""

    model_config = ConfigDict(extra="forbid")

    camera_id: Name
    zone_id: Name
    grid_id: Code


class GridZoneOut(GridZoneIn):
    """A grid zone as stored."""


class GridDutyIn(BaseModel):
    """Which department handles the cases of one type in one grid: what dispatches a filed case on its own."""

    model_config = ConfigDict(extra="forbid")

    grid_id: Code
    type: CaseType
    department_id: Code


class GridDutyOut(GridDutyIn):
    """A grid duty as stored."""


#: The longest deadline a policy may set: one year.
MAX_DEADLINE_HOURS = 24 * 366


class DeadlinePolicyIn(BaseModel):
    """How long a department has to handle a case of `type` and `priority` after it is dispatched."""

    model_config = ConfigDict(extra="forbid")

    type: CaseType
    priority: Priority
    hours: float = Field(gt=0, le=MAX_DEADLINE_HOURS, description="Hours from dispatch to the deadline.")


class DeadlinePolicyOut(DeadlinePolicyIn):
    """A deadline policy as stored."""
