"""Initial schema: API keys, cases, sightings, evidence and review audit records."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _box() -> list[sa.Column[object]]:
    return [sa.Column(name, sa.Float(), nullable=False) for name in ("x1", "y1", "x2", "y2")]


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _when("created_at"),
        _when("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("zone_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        _when("first_seen_at"),
        _when("detected_at"),
        _when("last_seen_at"),
        *_box(),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        _when("created_at"),
        _when("reviewed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
    )
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_index("ix_cases_scope", "cases", ["camera_id", "zone_id", "type", "last_seen_at"])
    op.create_index("ix_cases_detected_at_id", "cases", ["detected_at", "id"])
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        _when("first_seen_at"),
        _when("detected_at"),
        *_box(),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("merged", sa.Boolean(), nullable=False),
        sa.Column("posted_by", sa.String(128), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_sightings"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_sightings_case_id_cases", ondelete="CASCADE"),
        sa.UniqueConstraint("idempotency_key", name="uq_sightings_idempotency_key"),
    )
    op.create_index("ix_sightings_case_id", "sightings", ["case_id"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("sighting_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_evidence"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_evidence_case_id_cases", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["sighting_id"], ["sightings.id"], name="fk_evidence_sighting_id_sightings", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_evidence_case_id", "evidence", ["case_id"])
    op.create_index("ix_evidence_sighting_id", "evidence", ["sighting_id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("reviewer_key_id", sa.Integer(), nullable=True),
        _when("decided_at"),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_reviews_case_id_cases", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["reviewer_key_id"], ["api_keys.id"], name="fk_reviews_reviewer_key_id_api_keys", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_reviews_case_id", "reviews", ["case_id"])


def downgrade() -> None:
    """Drop every table."""
    for table in ("reviews", "evidence", "sightings", "cases", "api_keys"):
        op.drop_table(table)
