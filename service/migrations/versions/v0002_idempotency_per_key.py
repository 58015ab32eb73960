"""Idempotency-Keys unique per API key: another agent's key neither finds nor blocks an agent's post.

Sightings posted before keep the scope "" (their poster is not recorded by key): any agent's retry of such a
key still finds its case, as before, so an upgrade in the middle of a retry neither duplicates nor loses a post.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add `sightings.key_scope` and make (key_scope, idempotency_key) the unique pair."""
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("key_scope", sa.String(32), nullable=False, server_default=""))
        batch.drop_constraint("uq_sightings_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_sightings_key_scope", ["key_scope", "idempotency_key"])
    # The default was only for the rows already there; the service always names the scope.
    with op.batch_alter_table("sightings") as batch:
        batch.alter_column("key_scope", server_default=None)


def downgrade() -> None:
    """Keys global again; fails if two agents have used the same key since the upgrade."""
    with op.batch_alter_table("sightings") as batch:
        batch.drop_constraint("uq_sightings_key_scope", type_="unique")
        batch.create_unique_constraint("uq_sightings_idempotency_key", ["idempotency_key"])
        batch.drop_column("key_scope")
