"""Alembic environment for the catalog: runs on the connection the Catalog hands over."""

from alembic import context

from indexing.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="kup_schema_version",
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
