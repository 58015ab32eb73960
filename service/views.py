"""Database rows rendered as the wire schema."""

from __future__ import annotations

from service.models import ApiKey, Case
from service.routes import API_PREFIX
from service.schemas import CaseOut, CasePosted, EvidenceOut, EvidenceRole, KeyOut, PostResult, ReviewOut


def evidence_url(case_id: int, index: int) -> str:
    """The API path of a case's evidence image."""
    return f"{API_PREFIX}/cases/{case_id}/evidence/{index}"


def case_out(case: Case) -> CaseOut:
    """A case as the API returns it."""
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
    )


def case_posted(case: Case, result: PostResult) -> CasePosted:
    """What an agent's post answers: the case's id, what the post did, and its sighting count."""
    return CasePosted(id=case.id, outcome=result, sightings=case.sightings)


def key_out(key: ApiKey) -> KeyOut:
    """An API key as listed (without its secret)."""
    return KeyOut(id=key.id, name=key.name, role=key.role, created_at=key.created_at, revoked_at=key.revoked_at)
