"""Alembic environment: migrations run on a connection handed in by topup.adapters.db.engine.migrate."""

from alembic import context

from topup.adapters.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `topup migrate` (topup.adapters.db.engine.migrate)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
