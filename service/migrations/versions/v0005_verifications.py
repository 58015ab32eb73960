"""The camera verifies (docs/closed-loop.md): a table of the camera's looks at handled cases, and evidence that no
sighting brought (the camera's `after` image)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Let evidence stand without a sighting, and add `verifications`."""
    with op.batch_alter_table("evidence") as batch:
        batch.alter_column("sighting_id", existing_type=sa.Integer(), nullable=True)
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
    """Drop them again, with the evidence no sighting brought (the old schema cannot hold it)."""
    op.drop_table("verifications")
    op.execute("DELETE FROM evidence WHERE sighting_id IS NULL")
    with op.batch_alter_table("evidence") as batch:
        batch.alter_column("sighting_id", existing_type=sa.Integer(), nullable=False)
