"""Alembic revisions of the case service schema, oldest first."""
