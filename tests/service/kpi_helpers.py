"""A day of the closed loop with times chosen by hand, for the KPI tests of the API and the console.

Seven cases detected on 2025-05-01 (T0 is 10:00 UTC) and one two days before; at NOW = T0 + 6 h. Times are
hours after T0; "closure" is closed_at - first_seen_at.

- A: cam-1/zone-a (grid G1), parking, detected 0, first seen -10 min. Filed at 1 (dispatched to east by the
  grid map, deadline 3), handled 2 (on time), closed 3. Closure 3 h 10 min = 11400 s.
- B: cam-1/zone-a (G1), parking, detected 1, first seen 0:50. Filed 1:10 (deadline 3:10), handled 4 (late),
  closed 5. Closure 4 h 10 min = 15000 s.
- C: cam-1/zone-a (G1), parking, detected 2. Filed 2 (deadline 4), never handled: overdue at NOW.
- D: cam-1/zone-a (G1), parking, detected 3. Rejected.
- E: cam-2/zone-b (G2), vending, detected 0:30. Filed 1 (G2 names no department), dispatched to west by hand
  (deadline 5), handled 3, verification failed 4 (new deadline 8): handled no more, not overdue at NOW.
- F: cam-2/zone-b (G2), vending, detected 4. Still a draft.
- G: cam-3/zone-c (no grid), litter, detected 5, first seen 4. Dispatched to west 5, handled 5:30, closed 6.
  Closure 2 h = 7200 s.
- H: cam-1/zone-a (G1), parking, detected two days before T0, confirmed: outside the period, in the hot-spot
  window.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Final

from case_helpers import T0, case_body
from sqlalchemy.orm import Session, sessionmaker

from service import crud, grids, loop
from service.auth import Principal
from service.schemas import CaseIn, CaseType, Decision, LoopAction, Role

A_ = LoopAction
H: Final = 3600.0
NOW: Final = T0 + timedelta(hours=6)
EAST, WEST = "sanitation-east", "sanitation-west"
G1, G2 = "GZ-TH-001", "GZ-TH-002"
DISPATCHER: Final = Principal(key_id=None, name="dispatcher-1", role=Role.DISPATCHER)
REVIEWER: Final = Principal(key_id=None, name="reviewer-1", role=Role.REVIEWER)
DEPARTMENT: Final = {d: Principal(key_id=None, name=d, role=Role.DEPARTMENT, department_id=d) for d in (EAST, WEST)}


def make_grid_map(sessions: sessionmaker[Session]) -> None:
    """Departments east and west; grid G1 holds cam-1/zone-a and sends its parking cases to east, G2 holds
    cam-2/zone-b and sends nothing anywhere by itself."""
    with sessions() as s:
        grids.create_department(session=s, department_id=EAST, name="Sanitation East")
        grids.create_department(session=s, department_id=WEST, name="Sanitation West")
        grids.create_grid(session=s, grid_id=G1, name="Tianhe 001")
        grids.create_grid(session=s, grid_id=G2, name="Tianhe 002")
        grids.add_grid_zone(session=s, camera_id="cam-1", zone_id="zone-a", grid_id=G1)
        grids.add_grid_zone(session=s, camera_id="cam-2", zone_id="zone-b", grid_id=G2)
        grids.set_grid_duty(session=s, grid_id=G1, case_type=CaseType.ILLEGAL_PARKING, department_id=EAST)


class Day:
    """Cases made and moved through the loop at chosen times, by the service's own functions."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def case(self, camera: str, zone: str, case_type: CaseType, detected_h: float, first_seen_h: float) -> int:
        """A new draft case detected `detected_h` hours after T0 and first seen `first_seen_h` hours after it."""
        detected = T0 + timedelta(hours=detected_h)
        body = case_body(
            camera_id=camera,
            zone_id=zone,
            type=case_type.value,
            detected_at=detected.isoformat(),
            first_seen_at=(T0 + timedelta(hours=first_seen_h)).isoformat(),
        )
        with self.sessions() as s:
            outcome = crud.post_case(
                session=s,
                case=CaseIn.model_validate_json(json.dumps(body)),
                scope="test",
                idempotency_key=str(uuid.uuid4()),
                evidence=[],
                posted_by="agent",
                merge_iou=1.0,  # never merged: each is a case of its own
                merge_window_s=0,
                keep_sightings=3,
                now=detected,
            )
        return outcome.case.id

    def review(self, case_id: int, decision: Decision, at_h: float) -> None:
        with self.sessions() as s:
            reason = "a shadow" if decision is Decision.REJECT else None
            crud.review_case(
                session=s, case_id=case_id, decision=decision, reason=reason, reviewer=REVIEWER, now=self.at(at_h)
            )

    def act(
        self,
        case_id: int,
        action: LoopAction,
        who: Principal,
        at_h: float,
        *,
        note: str | None = None,
        department_id: str | None = None,
    ) -> None:
        with self.sessions() as s:
            loop.act(
                session=s,
                case_id=case_id,
                action=action,
                actor=who,
                now=self.at(at_h),
                note=note,
                department_id=department_id,
            )

    @staticmethod
    def at(hours: float) -> datetime:
        return T0 + timedelta(hours=hours)


def build_day(sessions: sessionmaker[Session]) -> dict[str, int]:
    """The grid map and the cases of the module docstring, by letter."""
    make_grid_map(sessions)
    day = Day(sessions)
    ids: dict[str, int] = {}
    parking, vending, litter = CaseType.ILLEGAL_PARKING, CaseType.STREET_VENDING, CaseType.PILED_LITTER

    ids["H"] = day.case("cam-1", "zone-a", parking, -48, -48.05)
    day.review(ids["H"], Decision.CONFIRM, -47)

    ids["A"] = day.case("cam-1", "zone-a", parking, 0, -10 / 60)
    day.review(ids["A"], Decision.CONFIRM, 1)
    day.act(ids["A"], A_.FILE, DISPATCHER, 1)  # the grid map dispatches it to east: deadline +3 h
    day.act(ids["A"], A_.HANDLE, DEPARTMENT[EAST], 2, note="towed")
    day.act(ids["A"], A_.VERIFY_PASS, REVIEWER, 2.5)
    day.act(ids["A"], A_.CLOSE, DISPATCHER, 3)

    ids["B"] = day.case("cam-1", "zone-a", parking, 1, 50 / 60)
    day.review(ids["B"], Decision.CONFIRM, 1 + 10 / 60)
    day.act(ids["B"], A_.FILE, DISPATCHER, 1 + 10 / 60)  # deadline +3 h 10 min
    day.act(ids["B"], A_.HANDLE, DEPARTMENT[EAST], 4, note="towed late")
    day.act(ids["B"], A_.VERIFY_PASS, REVIEWER, 4)
    day.act(ids["B"], A_.CLOSE, DISPATCHER, 5)

    ids["C"] = day.case("cam-1", "zone-a", parking, 2, 2 - 3 / 60)
    day.review(ids["C"], Decision.CONFIRM, 2)
    day.act(ids["C"], A_.FILE, DISPATCHER, 2)  # deadline +4 h, passed by NOW

    ids["D"] = day.case("cam-1", "zone-a", parking, 3, 3 - 3 / 60)
    day.review(ids["D"], Decision.REJECT, 3)

    ids["E"] = day.case("cam-2", "zone-b", vending, 0.5, 20 / 60)
    day.review(ids["E"], Decision.CONFIRM, 1)
    day.act(ids["E"], A_.FILE, DISPATCHER, 1)  # G2 names no department: it waits for a dispatcher
    day.act(ids["E"], A_.DISPATCH, DISPATCHER, 1, department_id=WEST)  # deadline +5 h
    day.act(ids["E"], A_.HANDLE, DEPARTMENT[WEST], 3, note="moved on")
    day.act(ids["E"], A_.VERIFY_FAIL, REVIEWER, 4, note="back again")  # deadline +8 h

    ids["F"] = day.case("cam-2", "zone-b", vending, 4, 4 - 3 / 60)

    ids["G"] = day.case("cam-3", "zone-c", litter, 5, 4)
    day.review(ids["G"], Decision.CONFIRM, 5)
    day.act(ids["G"], A_.FILE, DISPATCHER, 5)
    day.act(ids["G"], A_.DISPATCH, DISPATCHER, 5, department_id=WEST)
    day.act(ids["G"], A_.HANDLE, DEPARTMENT[WEST], 5.5, note="cleared")
    day.act(ids["G"], A_.VERIFY_PASS, REVIEWER, 5.75)
    day.act(ids["G"], A_.CLOSE, DISPATCHER, 6)
    return ids
