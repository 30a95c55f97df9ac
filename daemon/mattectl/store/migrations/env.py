"""Alembic's environment: mattectl hands it the open connection (``config.attributes``), so a
migration runs inside the caller's transaction (and, on PostgreSQL, under its advisory lock)."""

from __future__ import annotations

from alembic import context

from mattectl.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
