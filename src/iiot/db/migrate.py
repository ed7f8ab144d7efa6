"""Migrating the database to the code's head revision (`iiot db upgrade`, and at start-up).

Nearly every start finds the database at the head already. That is found out with one query
on Alembic's version table, and then only the application role's grants are renewed, as a
migration would: Alembic and the migration scripts (most of a second of CPU to load) are loaded
only when there is something to migrate, or when the database is at a revision this code does
not know (Alembic then refuses it, as before).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from iiot.db.setup import plain_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# The newest migration's revision: moves with every new script in migrations/versions
# (tests/db/test_migrate.py checks it against the scripts).
HEAD_REVISION = "0016"

# Serialises the migrations (and grants) of processes starting at the same time.
MIGRATION_LOCK = 727274

# What the application role may do, renewed after every migration (`{role}`: its identifier).
APP_ROLE_GRANTS = (
    "grant usage on schema public to {role}",
    "grant select, insert, update, delete on all tables in schema public to {role}",
    "grant usage, select on all sequences in schema public to {role}",
    "grant execute on all functions in schema public to {role}",
)


def upgrade(owner_url: str, app_role: str, revision: str = "head") -> None:
    """Migrate to `revision` as the owner and grant the application role its rights."""
    if revision == "head" and _grant_if_at_head(owner_url, app_role):
        return
    from alembic import command

    command.upgrade(alembic_config(owner_url, app_role), revision)


def alembic_config(owner_url: str, app_role: str) -> Config:
    """Alembic's configuration for the scripts in migrations/ (`env.py` reads the URL and the
    role from its attributes)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["owner_url"] = owner_url
    cfg.attributes["app_role"] = app_role
    return cfg


def _grant_if_at_head(owner_url: str, app_role: str) -> bool:
    """Whether the database is at `HEAD_REVISION`; if so, the grants are renewed (under the
    migration lock, which also waits out a migration another process is running)."""
    with psycopg.connect(plain_url(owner_url)) as conn:
        conn.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        if current_revision(conn) != HEAD_REVISION:
            return False
        for grant in APP_ROLE_GRANTS:
            conn.execute(sql.SQL(grant).format(role=sql.Identifier(app_role)))
    return True


def current_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The revision the database is at; None before the first migration."""
    found = conn.execute("select to_regclass('alembic_version') is not null").fetchone()
    if not (found and found[0]):
        return None
    row = conn.execute("select version_num from alembic_version").fetchone()
    return None if row is None else str(row[0])
