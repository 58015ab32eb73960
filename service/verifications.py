"""The camera verifies (docs/closed-loop.md): the handled cases an agent should look at again, and the proposal its
look makes, recorded with the `after` image and an event in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.crud import CaseNotFoundError, NewEvidence
from service.db import begin_write
from service.events import append_event
from service.models import Case, Evidence, Verification
from service.schemas import CaseStatus, EventKind, EvidenceRole, VerificationOutcome, VerificationTask

#: The `action` of the event a proposal appends (it moves no status: a reviewer's verify_pass or verify_fail does).
PROPOSE = "propose"


class NotAwaitingVerificationError(Exception):
    """The case is not handled, or the camera has proposed already: a verification is not taken now (409)."""

    def __init__(self, case: Case) -> None:
        if case.status is not CaseStatus.HANDLED:
            why = f"case {case.id} is {case.status.value}: a verification is taken only while a case is handled"
        else:
            why = f"case {case.id} has the camera's proposal already ({case.verification_proposal})"
        super().__init__(why)


class VerificationKeyConflictError(Exception):
    """An Idempotency-Key already names another verification: a replay must repeat the same post."""

    def __init__(self, key: str, first: Verification) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was first used for the {first.outcome.value} verification of case "
            f"{first.case_id}: a retry must send the same case and outcome"
        )


@dataclass(frozen=True, slots=True)
class ProposalOutcome:
    """The case after a verification post, and whether the post only replayed an earlier one."""

    case: Case
    replayed: bool


def pending_verifications(*, session: Session, camera_ids: Sequence[str]) -> list[VerificationTask]:
    """The handled cases of these cameras that await the camera's look (no proposal yet), oldest handling first."""
    rows = session.scalars(
        select(Case)
        .where(
            Case.camera_id.in_(camera_ids),
            Case.status == CaseStatus.HANDLED,
            Case.verification_proposal.is_(None),
        )
        .order_by(Case.handled_at, Case.id)
    )
    return [
        VerificationTask(
            case_id=case.id,
            camera_id=case.camera_id,
            zone_id=case.zone_id,
            type=case.type,
            bbox=case.bbox,
            handled_at=case.handled_at,
            deadline_at=case.deadline_at,
        )
        for case in rows
        if case.handled_at is not None  # the `handle` action that made the case handled set it
    ]


def propose(
    *,
    session: Session,
    case_id: int,
    outcome: VerificationOutcome,
    observed_at: datetime,
    after: NewEvidence,
    scope: str,
    idempotency_key: str,
    posted_by: str,
    now: datetime,
) -> ProposalOutcome:
    """Record what the camera saw at a handled case: the proposal on the case, the `after` image as its evidence,
    the verification row and a `case.verification_proposed` event, all in one transaction.

    The proposal is a conditional UPDATE under the case's write lock, as `loop.act` takes it: a reviewer deciding
    the case at the same moment either comes first (the post gets 409) or sees the proposal.

    Raises:
        CaseNotFoundError: no such case.
        NotAwaitingVerificationError: the case is not handled, or has a proposal already.
        VerificationKeyConflictError: the key was first used for another case or outcome.
    """
    try:
        begin_write(session, lock_key=f"case\0{case_id}")
        earlier = _replay(session, scope, idempotency_key, case_id, outcome)
        if earlier is not None:
            session.commit()
            return earlier
        case = session.get(Case, case_id, populate_existing=True)
        if case is None:
            raise CaseNotFoundError(case_id)
        changed = (
            session.connection()
            .execute(
                update(Case)
                .where(Case.id == case_id, Case.status == CaseStatus.HANDLED, Case.verification_proposal.is_(None))
                .values(verification_proposal=outcome.proposal, verification_proposed_at=now)
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
        if changed == 0:
            raise NotAwaitingVerificationError(case)
        session.refresh(case)
        image = Evidence(
            sighting_id=None,
            sha256=after.sha256,
            content_type=after.content_type,
            size=after.size,
            created_at=now,
            role=EvidenceRole.AFTER.value,
        )
        case.evidence.append(image)
        session.flush()
        session.add(
            Verification(
                case_id=case_id,
                outcome=outcome,
                observed_at=observed_at,
                evidence_id=image.id,
                key_scope=scope,
                idempotency_key=idempotency_key,
                posted_by=posted_by,
                created_at=now,
            )
        )
        append_event(
            session,
            case=case,
            kind=EventKind.VERIFICATION_PROPOSED,
            action=PROPOSE,
            from_status=CaseStatus.HANDLED,
            actor=posted_by,
            note=f"the camera saw the object {outcome.value}: proposes {outcome.proposal.value}",
            now=now,
        )
        session.commit()
    except IntegrityError:
        # The same key raced in for another case, under that case's lock; the first post stands.
        session.rollback()
        with session.begin():
            earlier = _replay(session, scope, idempotency_key, case_id, outcome)
        if earlier is None:
            raise
        return earlier
    except Exception:
        session.rollback()
        raise
    return ProposalOutcome(session.get_one(Case, case_id, populate_existing=True), replayed=False)


def _replay(
    session: Session, scope: str, key: str, case_id: int, outcome: VerificationOutcome
) -> ProposalOutcome | None:
    first = session.scalar(
        select(Verification).where(Verification.key_scope == scope, Verification.idempotency_key == key)
    )
    if first is None:
        return None
    if first.case_id != case_id or first.outcome is not outcome:
        raise VerificationKeyConflictError(key, first)
    return ProposalOutcome(session.get_one(Case, case_id), replayed=True)
