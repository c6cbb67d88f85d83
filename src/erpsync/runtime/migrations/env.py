"""Alembic environment for the state store. Run through :func:`erpsync.runtime.store.migrate`, which passes an
open connection (in a transaction holding the migration lock) in ``config.attributes["connection"]``."""

from alembic import context

from erpsync.runtime.store import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
