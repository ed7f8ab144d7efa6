"""Migrations at start-up: a database at the head is recognised without Alembic, and only the
application role's grants are renewed; the code's head revision is that of the scripts."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy.engine import make_url

from iiot.db import migrate, setup
from iiot.db.setup import plain_url
from tests.fixtures.database import TestDatabase


def test_head_revision_is_the_newest_script() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert heads == [migrate.HEAD_REVISION], (
        f"the scripts' head is {heads}: set HEAD_REVISION in iiot/db/migrate.py to it"
    )


@pytest.fixture
def new_role(db_urls: TestDatabase) -> Iterator[str]:
    """A login role with no rights on the (migrated) test database yet."""
    role = f"iiot_grantee_{secrets.token_hex(4)}"
    with psycopg.connect(plain_url(db_urls.admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(plain_url(db_urls.admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def _rights(admin_url: str, role: str) -> tuple[bool, bool, bool]:
    with psycopg.connect(plain_url(admin_url)) as conn:
        row = conn.execute(
            "select has_table_privilege(%(r)s, 'devices', 'select, insert, update, delete'), "
            "has_schema_privilege(%(r)s, 'public', 'usage'), "
            "bool_and(has_function_privilege(%(r)s, p.oid, 'execute')) "
            "from pg_proc p where p.pronamespace = 'public'::regnamespace",
            {"r": role},
        ).fetchone()
    assert row is not None
    return row


def test_at_the_head_only_the_grants_are_renewed_and_alembic_stays_unloaded(
    db_urls: TestDatabase, new_role: str
) -> None:
    assert _rights(db_urls.admin_url, new_role)[0] is False
    script = (
        "import sys\n"
        "from iiot.db import migrate\n"
        "migrate.upgrade(sys.argv[1], sys.argv[2])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'iiot'))\n"
        "print(' '.join(loaded))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script, db_urls.admin_url, new_role],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = done.stdout.split()
    assert "iiot.db.migrate" in loaded
    assert [m for m in loaded if m.startswith("alembic")] == []
    assert "iiot.models" not in loaded
    assert _rights(db_urls.admin_url, new_role) == (True, True, True)


def test_the_revision_is_read_from_the_version_table(db_urls: TestDatabase) -> None:
    """A migrated database is at the head; a new one has no version table (Alembic then
    creates it: the fast path must not fail on it)."""
    with psycopg.connect(plain_url(db_urls.admin_url)) as conn:
        assert migrate.current_revision(conn) == migrate.HEAD_REVISION
    server = make_url(db_urls.admin_url).set(database="postgres").render_as_string(False)
    name = f"iiot_empty_{secrets.token_hex(4)}"
    setup.ensure_database(server, name)
    try:
        empty = make_url(server).set(database=name).render_as_string(False)
        with psycopg.connect(plain_url(empty)) as conn:
            assert migrate.current_revision(conn) is None
    finally:
        setup.drop_database(server, name)
