"""Database rows rendered as the wire schema."""

from __future__ import annotations

from datetime import datetime

from service.models import ApiKey, Case
from service.routes import API_PREFIX
from service.schemas import (
    CaseOut,
    CasePosted,
    CaseStatus,
    EvidenceOut,
    EvidenceRole,
    KeyOut,
    PostResult,
    ReviewOut,
    TransitionOut,
)


def evidence_url(case_id: int, index: int) -> str:
    """The API path of a case's evidence image."""
    return f"{API_PREFIX}/cases/{case_id}/evidence/{index}"


def is_overdue(case: Case, now: datetime) -> bool:
    """Dispatched, not yet handled, and past its deadline at `now`."""
    return case.status is CaseStatus.DISPATCHED and case.deadline_at is not None and now > case.deadline_at


def case_out(case: Case, *, now: datetime) -> CaseOut:
    """A case as the API returns it; `now` (the app's clock) decides whether it is overdue."""
    return CaseOut(
        id=case.id,
        status=case.status,
        camera_id=case.camera_id,
        zone_id=case.zone_id,
        type=case.type,
        first_seen_at=case.first_seen_at,
        detected_at=case.detected_at,
        last_seen_at=case.last_seen_at,
        bbox=case.bbox,
        confidence=case.confidence,
        labels=list(case.labels),
        model_version=case.model_version,
        evidence_count=len(case.evidence),
        sightings=case.sightings,
        created_at=case.created_at,
        reviewed_at=case.reviewed_at,
        evidence=[
            EvidenceOut(
                index=i,
                content_type=e.content_type,
                size=e.size,
                sha256=e.sha256,
                url=evidence_url(case.id, i),
                role=EvidenceRole.of_filename(e.role),
            )
            for i, e in enumerate(case.evidence)
        ],
        reviews=[
            ReviewOut(decision=r.decision, reason=r.reason, reviewer=r.reviewer, decided_at=r.decided_at)
            for r in case.reviews
        ],
        priority=case.priority,
        grid_id=case.grid_id,
        department_id=case.department_id,
        filed_at=case.filed_at,
        dispatched_at=case.dispatched_at,
        deadline_at=case.deadline_at,
        handled_at=case.handled_at,
        handling_note=case.handling_note,
        verified_at=case.verified_at,
        closed_at=case.closed_at,
        verification_proposal=case.verification_proposal,
        verification_proposed_at=case.verification_proposed_at,
        overdue=is_overdue(case, now),
        transitions=[
            TransitionOut(
                action=t.action,
                from_status=t.from_status,
                to_status=t.to_status,
                actor=t.actor,
                note=t.note,
                department_id=t.department_id,
                at=t.at,
            )
            for t in case.transitions
        ],
    )


def case_posted(case: Case, result: PostResult) -> CasePosted:
    """What an agent's post answers: the case's id, what the post did, and its sighting count."""
    return CasePosted(id=case.id, outcome=result, sightings=case.sightings)


def key_out(key: ApiKey) -> KeyOut:
    """An API key as listed (without its secret)."""
    return KeyOut(
        id=key.id,
        name=key.name,
        role=key.role,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        department_id=key.department_id,
    )
