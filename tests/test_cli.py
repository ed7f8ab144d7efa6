"""The `iiot` command line and start-up: version, configuration refusal, `db upgrade` and
`create-admin` on an external database set up with the README's SQL, the development JWT
secret, and the first-start bootstrap admin."""

from __future__ import annotations

import io
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from rich.console import Console
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from iiot import __version__
from iiot.bootstrap import ensure_bootstrap_admin
from iiot.cli import app as cli
from iiot.config import Settings
from iiot.db.migrate import HEAD_REVISION
from iiot.db.setup import plain_url
from iiot.runtime import Runtime
from tests.fixtures.database import TestDatabase

IIOT = Path(sys.executable).parent / "iiot"


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
    env["IIOT_DATA_DIR"] = str(tmp_path / "data")
    env.update(values)
    return env


def test_version() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == __version__


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "create-admin", "version"):
        assert command in result.output


def test_production_refuses_a_short_jwt_secret(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        IIOT_ENV="production",
        IIOT_JWT_SECRET="too-short",
        IIOT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
    )
    done = subprocess.run(  # noqa: S603 - our own entry point
        [str(IIOT), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "IIOT_JWT_SECRET" in done.stderr
    assert "Traceback" not in done.stderr


def test_production_refuses_a_missing_jwt_secret() -> None:
    with pytest.raises(ValueError, match="IIOT_JWT_SECRET"):
        Settings(env="production", database_url="postgresql://x@y/z", _env_file=None)  # type: ignore[call-arg]


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path, _env_file=None).resolved_jwt_secret()  # type: ignore[call-arg]
    second = Settings(data_dir=tmp_path, _env_file=None).resolved_jwt_secret()  # type: ignore[call-arg]
    assert first == second
    assert len(first) >= 43  # at least 256 random bits
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


@dataclass(frozen=True)
class External:
    owner_url: str
    app_url: str
    app_role: str
    database: str


@pytest.fixture
def external(db_urls: TestDatabase) -> Iterator[External]:
    """A database and two roles created with the README's SQL, on the test server."""
    suffix = secrets.token_hex(4)
    owner, app_role, database = f"iiot_owner_{suffix}", f"iiot_app_{suffix}", f"iiot_ext_{suffix}"
    owner_pw, app_pw = secrets.token_hex(16), secrets.token_hex(16)
    server = plain_url(db_urls.admin_url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login bypassrls password {}").format(
                sql.Identifier(owner), sql.Literal(owner_pw)
            )
        )
        conn.execute(
            sql.SQL(
                "create role {} login nosuperuser nocreatedb nocreaterole nobypassrls password {}"
            ).format(sql.Identifier(app_role), sql.Literal(app_pw))
        )
        conn.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(database), sql.Identifier(owner)
            )
        )
    base = make_url(db_urls.admin_url).set(database=database)
    yield External(
        owner_url=base.set(username=owner, password=owner_pw).render_as_string(False),
        app_url=base.set(username=app_role, password=app_pw).render_as_string(False),
        app_role=app_role,
        database=database,
    )
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database))
        )
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(app_role)))
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(owner)))


def _run(args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own entry point
        [str(IIOT), *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_db_upgrade_and_create_admin_on_an_external_database(
    external: External, tmp_path: Path
) -> None:
    env = _env(
        tmp_path, IIOT_DATABASE_OWNER_URL=external.owner_url, IIOT_DATABASE_URL=external.app_url
    )
    assert "latest revision" in _run(["db", "upgrade"], env, tmp_path)
    assert "latest revision" in _run(["db", "upgrade"], env, tmp_path)  # idempotent
    _run(
        ["create-admin", "--email", "ops@example.com", "--password-stdin"],
        env,
        tmp_path,
        stdin="a-long-enough-password\n",
    )
    with psycopg.connect(plain_url(external.owner_url)) as conn:
        assert conn.execute("select version_num from alembic_version").fetchone() == (
            HEAD_REVISION,
        )
        admin = conn.execute(
            "select u.is_system_admin, m.role, t.slug, t.tier from users u "
            "join memberships m on m.user_id = u.id join tenants t on t.id = m.tenant_id "
            "where u.email = 'ops@example.com'"
        ).fetchall()
        assert admin == [(True, "admin", "operations", "enterprise")]
        owned = conn.execute(
            "select count(*) from pg_class where relowner = to_regrole(%s)", (external.app_role,)
        ).fetchone()
        assert owned == (0,)
    with psycopg.connect(plain_url(external.app_url)) as conn:
        assert conn.execute("select count(*) from users").fetchone() == (1,)
        assert conn.execute("select count(*) from memberships").fetchone() == (0,)  # RLS


def test_db_upgrade_without_an_owner_url_says_so(tmp_path: Path) -> None:
    env = _env(tmp_path, IIOT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    done = subprocess.run(  # noqa: S603 - our own entry point
        [str(IIOT), "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "IIOT_DATABASE_OWNER_URL" in done.stderr


def test_one_shot_commands_load_neither_the_web_stack_nor_alembic() -> None:
    """What `db upgrade` and `create-admin` import (each process pays for every library it
    loads): no web framework, no HTTP client, no Alembic while the database is at the head."""
    script = (
        "import sys\n"
        "import iiot.cli, iiot.bootstrap\n"
        "upgrade = set(sys.modules)\n"
        "import iiot.runtime, iiot.users.admin\n"
        "roots = lambda names: sorted({n.split('.')[0] for n in names})\n"
        "print(' '.join(roots(upgrade)))\n"
        "print(' '.join(roots(sys.modules)))\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    upgrade, create_admin = (set(line.split()) for line in done.stdout.splitlines())
    assert "psycopg" in upgrade
    assert "sqlalchemy" in create_admin
    for unwanted in ("fastapi", "starlette", "httpx", "alembic", "uvicorn"):
        assert unwanted not in create_admin, unwanted
    assert "sqlalchemy" not in upgrade


def test_create_admin_refuses_a_weak_password(tmp_path: Path) -> None:
    env = _env(tmp_path, IIOT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    done = subprocess.run(  # noqa: S603 - our own entry point
        [str(IIOT), "create-admin", "--email", "a@example.com", "--password-stdin"],
        env=env,
        cwd=tmp_path,
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "at least" in done.stderr


async def test_first_start_creates_an_admin_and_prints_it_once(runtime: Runtime, anon) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    await ensure_bootstrap_admin(runtime, Console(file=out, width=200))
    printed = out.getvalue()
    email = re.search(r"e-mail:\s+(\S+)", printed)
    password = re.search(r"password:\s+(\S+)", printed)
    assert email is not None
    assert password is not None
    r = await anon.post(
        "/api/v1/auth/login", json={"email": email.group(1), "password": password.group(1)}
    )
    assert r.status_code == 200, r.text
    user = r.json()["user"]
    assert user["is_system_admin"] is True
    assert user["tenant"]["slug"] == runtime.settings.bootstrap_tenant_slug
    again = io.StringIO()
    await ensure_bootstrap_admin(runtime, Console(file=again, width=200))
    assert again.getvalue() == ""
