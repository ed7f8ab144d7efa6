"""Every command-line failure is one clear line and a non-zero exit (issue 13, #9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iiot.models.base import utcnow
from tests.fixtures.database import TestDatabase
from tests.fixtures.factories import Factory

IIOT = Path(sys.executable).parent / "iiot"


def _run(args: list[str], tmp_path: Path, **env_values: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
    env.update(IIOT_DATA_DIR=str(tmp_path / "data"), COLUMNS="400", **env_values)
    return subprocess.run(  # noqa: S603 - our own entry point
        [str(IIOT), *args],
        env=env,
        cwd=tmp_path,
        input="a-long-enough-password\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


async def test_create_admin_with_the_slug_of_a_deleted_tenant(
    factory: Factory, db_urls: TestDatabase, tmp_path: Path
) -> None:
    tenant = await factory.tenant(slug="gone-operations")
    async with factory.rt.db.system() as session:
        row = await session.merge(tenant)
        row.deleted_at = utcnow()
    done = _run(
        ["create-admin", "--email", "ops@example.com", "--password-stdin"],
        tmp_path,
        IIOT_DATABASE_URL=db_urls.app_url,
        IIOT_BOOTSTRAP_TENANT_SLUG="gone-operations",
    )
    line = _one_clear_line(done)
    assert "deleted tenant" in line
    assert "restore" in line


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    done = _run(
        ["create-admin", "--email", "ops@example.com", "--password-stdin"],
        tmp_path,
        IIOT_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
    )
    line = _one_clear_line(done)
    assert line.startswith("iiot: ")
