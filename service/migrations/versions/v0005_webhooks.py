"""Webhooks (docs/closed-loop.md): receivers of the case event log, each with its cursor in the log, its retry
state and the lease that keeps two service processes from sending the same event at once."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the webhooks table."""
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("created_at", nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _when("last_attempt_at"),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("next_attempt_at"),
        sa.Column("lease_token", sa.String(32), nullable=True),
        _when("lease_until"),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )


def downgrade() -> None:
    """Drop the webhooks, their secrets and cursors with them."""
    op.drop_table("webhooks")
