"""Alembic environment: runs on the connection `service.migrations.upgrade` hands over, never from an ini file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.models import Base

connection = context.config.attributes["connection"]
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through service.migrations.upgrade(), which supplies the connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
