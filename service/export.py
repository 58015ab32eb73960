"""Reviewed cases read back for training: each one's decision, object box and clean scene frame."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from service import crud
from service.admin import open_database
from service.evidence import EvidenceNotFoundError, LocalEvidenceStore
from service.models import Case
from service.schemas import Box, CaseStatus, EvidenceRole
from service.settings import ServiceSettings


@dataclass(frozen=True, slots=True)
class ReviewedCase:
    """A confirmed or rejected case with the frame its box was drawn on, as the camera saw it (JPEG bytes)."""

    case_id: int
    confirmed: bool
    label: str
    box: Box
    reason: str | None
    reviewed_at: datetime
    image: bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    """A reviewed case that cannot become a training image, and why."""

    case_id: int
    why: str


def _clean_scene(case: Case) -> str | None:
    """The digest of the clean scene of the case's first sighting, whose box is the case's box."""
    first = min((e.sighting_id for e in case.evidence if e.sighting_id is not None), default=None)
    return next(
        (e.sha256 for e in case.evidence if e.sighting_id == first and e.role == EvidenceRole.SCENE_CLEAN.value),
        None,
    )


def reviewed_cases(
    settings: ServiceSettings, *, since: datetime, until: datetime | None = None
) -> Iterator[ReviewedCase | Skipped]:
    """The cases decided in [since, until), oldest decision first; a case without a clean scene (posted before
    the pipeline kept one, or by another client) or without a label comes as `Skipped`."""
    store = LocalEvidenceStore(settings.resolved_evidence_dir)
    with open_database(settings) as sessions, sessions() as session:
        for case in crud.reviewed_cases(session=session, since=since, until=until):
            digest = _clean_scene(case)
            if digest is None:
                yield Skipped(case.id, "no clean scene frame")
                continue
            if not case.labels:
                yield Skipped(case.id, "no label")
                continue
            try:
                image = store.get(digest)
            except EvidenceNotFoundError:
                yield Skipped(case.id, f"its clean scene {digest} is missing from the evidence store")
                continue
            assert case.reviewed_at is not None  # reviewed_cases selects decided cases only
            yield ReviewedCase(
                case_id=case.id,
                confirmed=case.status is CaseStatus.CONFIRMED,
                label=case.labels[0],
                box=(case.x1, case.y1, case.x2, case.y2),
                reason=case.reviews[-1].reason if case.reviews else None,
                reviewed_at=case.reviewed_at,
                image=image,
            )
