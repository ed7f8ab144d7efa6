"""Alembic environment: runs as the owner role; grants DML to the application role."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from iiot.db.migrate import APP_ROLE_GRANTS, MIGRATION_LOCK
from iiot.db.setup import plain_url
from iiot.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    owner_url = config.attributes["owner_url"]
    app_role = config.attributes["app_role"]
    url = plain_url(owner_url).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Serialise concurrent start-ups of several processes on the same database.
        connection.execute(text("select pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
                _grant_to_app_role(connection, app_role)
        finally:
            connection.execute(text("select pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
    engine.dispose()


def _grant_to_app_role(connection, app_role: str) -> None:  # type: ignore[no-untyped-def]
    role = connection.dialect.identifier_preparer.quote(app_role)
    for grant in APP_ROLE_GRANTS:
        connection.execute(text(grant.format(role=role)))


run_migrations_online()
