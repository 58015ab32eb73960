"""The camera verifies (docs/closed-loop.md): a table of the camera's looks at handled cases; their `after` images are
evidence rows of no sighting, which 0004 allows."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add `verifications`."""
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=False),
        sa.Column("key_scope", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("posted_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_verifications"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_verifications_case_id_cases", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["evidence_id"], ["evidence.id"], name="fk_verifications_evidence_id_evidence", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("key_scope", "idempotency_key", name="uq_verifications_key_scope"),
    )
    op.create_index("ix_verifications_case_id", "verifications", ["case_id"])


def downgrade() -> None:
    """Drop it again (0004's downgrade drops the evidence no sighting brought)."""
    op.drop_table("verifications")
