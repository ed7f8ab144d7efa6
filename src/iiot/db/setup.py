"""Creating the database and the application role, as the owner (a superuser or CREATEROLE role).

The application role owns no table and has no BYPASSRLS; it receives only DML grants (in the
migrations). Migrations run as the owner.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def plain_url(sqlalchemy_url: str) -> str:
    """A libpq URL from a SQLAlchemy one (drops the `+driver` part)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", sqlalchemy_url)


def sqlalchemy_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", url)


def ensure_database(admin_url: str, database: str) -> None:
    if not _IDENT.match(database):
        raise ValueError(f"invalid database name {database!r}")
    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))


def ensure_app_role(owner_url: str, role: str, password: str | None = None) -> None:
    """Create (or reset) the login role the application connects as: no ownership, no bypass."""
    if not _IDENT.match(role):
        raise ValueError(f"invalid role name {role!r}")
    with psycopg.connect(plain_url(owner_url), autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        verb = "alter" if exists else "create"
        stmt = sql.SQL(
            verb + " role {} login nosuperuser nocreatedb nocreaterole nobypassrls"
        ).format(sql.Identifier(role))
        if password is not None:
            stmt = stmt + sql.SQL(" password {}").format(sql.Literal(password))
        conn.execute(stmt)


def drop_database(admin_url: str, database: str) -> None:
    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )


def drop_role(admin_url: str, role: str) -> None:
    with psycopg.connect(plain_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
