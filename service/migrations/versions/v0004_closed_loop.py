"""The closed loop (docs/closed-loop.md): departments, grids and their zones and duties, deadline policies (seeded
with the defaults), the transition audit (with the Idempotency-Key of an action), the case event log, the
loop's columns on cases, evidence of no sighting (a department's photo), and the department of a department key.

Cases already stored keep their status and get priority `normal` and no grid: the grid map does not exist yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

#: Hours to handle a `normal` case after dispatch; `urgent` gets half.
DEFAULT_HOURS = {"illegal_parking": 2.0, "street_vending": 4.0, "piled_litter": 24.0, "unpermitted_ad": 72.0}

_LOOP_TIMES = (
    "filed_at",
    "dispatched_at",
    "deadline_at",
    "handled_at",
    "verified_at",
    "closed_at",
)


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the loop's tables, seed the deadline policies, and add the loop's columns."""
    for table in ("departments", "grids"):
        op.create_table(
            table,
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("name", sa.String(128), nullable=False),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        )
    op.create_table(
        "grid_zones",
        sa.Column("camera_id", sa.String(128), nullable=False),
        sa.Column("zone_id", sa.String(128), nullable=False),
        sa.Column("grid_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("camera_id", "zone_id", name="pk_grid_zones"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name="fk_grid_zones_grid_id_grids", ondelete="CASCADE"),
    )
    op.create_index("ix_grid_zones_grid_id", "grid_zones", ["grid_id"])
    op.create_table(
        "grid_duties",
        sa.Column("grid_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("department_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("grid_id", "type", name="pk_grid_duties"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"], name="fk_grid_duties_grid_id_grids", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name="fk_grid_duties_department_id_departments", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_grid_duties_department_id", "grid_duties", ["department_id"])
    policies = op.create_table(
        "deadline_policies",
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("priority", sa.String(32), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("type", "priority", name="pk_deadline_policies"),
    )
    op.bulk_insert(
        policies,
        [
            {"type": kind, "priority": priority, "hours": hours * share}
            for kind, hours in DEFAULT_HOURS.items()
            for priority, share in (("normal", 1.0), ("urgent", 0.5))
        ],
    )
    op.create_table(
        "case_transitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=False),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_key_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("department_id", sa.String(64), nullable=True),
        _when("at"),
        sa.Column("key_scope", sa.String(32), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_case_transitions"),
        sa.UniqueConstraint("key_scope", "idempotency_key", name="uq_case_transitions_key_scope"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_transitions_case_id_cases", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["actor_key_id"], ["api_keys.id"], name="fk_case_transitions_actor_key_id_api_keys", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_case_transitions_case_id", "case_transitions", ["case_id"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_events_case_id_cases", ondelete="CASCADE"),
        sa.UniqueConstraint("event_id", name="uq_case_events_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("priority", sa.String(32), nullable=False, server_default="normal"))
        batch.add_column(sa.Column("grid_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("department_id", sa.String(64), nullable=True))
        for name in _LOOP_TIMES:
            batch.add_column(_when(name, nullable=True))
        batch.add_column(sa.Column("handling_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("verification_proposal", sa.String(32), nullable=True))
        batch.add_column(_when("verification_proposed_at", nullable=True))
        batch.create_foreign_key("fk_cases_grid_id_grids", "grids", ["grid_id"], ["id"], ondelete="SET NULL")
        batch.create_foreign_key("fk_cases_department_id_departments", "departments", ["department_id"], ["id"])
        batch.create_index("ix_cases_grid_id", ["grid_id"])
        batch.create_index("ix_cases_department_id", ["department_id"])
    # The default was only for the rows already there; the service always names the priority.
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("priority", server_default=None)
    # A department's photo of its handling is evidence of no sighting.
    with op.batch_alter_table("evidence") as batch:
        batch.alter_column("sighting_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("department_id", sa.String(64), nullable=True))
        batch.create_foreign_key("fk_api_keys_department_id_departments", "departments", ["department_id"], ["id"])


def downgrade() -> None:
    """Drop the loop again; fails while a case is past `confirmed` (the old schema has no status for it)."""
    bind = op.get_bind()
    past = bind.execute(
        sa.text("SELECT count(*) FROM cases WHERE status NOT IN ('draft', 'confirmed', 'rejected')")
    ).scalar_one()
    if past:
        raise RuntimeError(f"{past} case(s) are filed or later: the schema before 0004 cannot hold them")
    op.execute("DELETE FROM evidence WHERE sighting_id IS NULL")
    with op.batch_alter_table("evidence") as batch:
        batch.alter_column("sighting_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("fk_api_keys_department_id_departments", type_="foreignkey")
        batch.drop_column("department_id")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_department_id")
        batch.drop_index("ix_cases_grid_id")
        batch.drop_constraint("fk_cases_department_id_departments", type_="foreignkey")
        batch.drop_constraint("fk_cases_grid_id_grids", type_="foreignkey")
        for name in ("priority", "grid_id", "department_id", *_LOOP_TIMES, "handling_note"):
            batch.drop_column(name)
        batch.drop_column("verification_proposal")
        batch.drop_column("verification_proposed_at")
    for table in ("case_events", "case_transitions", "deadline_policies", "grid_duties", "grid_zones"):
        op.drop_table(table)
    op.drop_table("grids")
    op.drop_table("departments")
