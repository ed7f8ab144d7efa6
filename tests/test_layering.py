"""Layering: routes and services never build SQL; all of it lives in repositories.

Parses every `api.py` / `service.py` (and `*_api.py` / `*_service.py`) module of src/iiot with
`ast` and fails on imports of SQL builders from SQLAlchemy or on statements run directly on a
session or connection.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "iiot"
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "union", "exists", "literal_column"}
SQLALCHEMY_MODULES = (
    "sqlalchemy",
    "sqlalchemy.sql",
    "sqlalchemy.sql.expression",
    "sqlalchemy.future",
)
RUNNERS = {"execute", "scalars", "scalar", "stream", "stream_scalars", "exec_driver_sql"}


def _is_upper_layer(path: Path) -> bool:
    if "migrations" in path.relative_to(SRC).parts:
        return False  # revisions are DDL by nature, whatever their name
    stem = path.stem
    return stem in ("api", "service") or stem.endswith(("_api", "_service"))


UPPER_LAYER = sorted(p for p in SRC.rglob("*.py") if _is_upper_layer(p))


def _holder_name(node: ast.expr) -> str:
    """`session` for `session.execute`, `self.session` for `self.session.execute`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    found: list[str] = []
    sqlalchemy_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in SQLALCHEMY_MODULES:
            found += [
                f"line {node.lineno}: imports {a.name} from {node.module}"
                for a in node.names
                if a.name in SQL_BUILDERS or a.name == "*"
            ]
        elif isinstance(node, ast.Import):
            sqlalchemy_aliases |= {
                a.asname or a.name for a in node.names if a.name in SQLALCHEMY_MODULES
            }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        holder = _holder_name(node.value)
        if holder in sqlalchemy_aliases and node.attr in SQL_BUILDERS:
            found.append(f"line {node.lineno}: uses {holder}.{node.attr}")
        if node.attr in RUNNERS and ("session" in holder.lower() or "conn" in holder.lower()):
            found.append(f"line {node.lineno}: runs SQL with {holder}.{node.attr}")
    return found


@pytest.mark.parametrize("path", UPPER_LAYER, ids=[str(p.relative_to(SRC)) for p in UPPER_LAYER])
def test_no_sql_outside_repositories(path: Path) -> None:
    found = violations(path.read_text())
    assert found == [], (
        f"{path.relative_to(SRC)} builds or runs SQL; move it to a repository: {found}"
    )


def test_the_walk_sees_the_upper_layer() -> None:
    names = {str(p.relative_to(SRC)) for p in UPPER_LAYER}
    assert {"auth/api.py", "auth/service.py", "platform/api.py"} <= names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from sqlalchemy import select\n", 1),
        ("from sqlalchemy import text, func\n", 1),
        ("from sqlalchemy.sql.expression import update\n", 1),
        ("import sqlalchemy as sa\nq = sa.delete(x)\n", 1),
        ("async def f(session):\n    await session.execute(q)\n", 1),
        ("async def f(self):\n    await self.session.scalars(q)\n", 1),
        ("async def f(conn):\n    await conn.exec_driver_sql('x')\n", 1),
        ("from sqlalchemy.ext.asyncio import AsyncSession\n", 0),
        ("async def f(repo):\n    await repo.execute_rule(q)\n", 0),
        ("from sqlalchemy import func\n", 0),
    ],
)
def test_checker_flags_sql(source: str, expected: int) -> None:
    assert len(violations(source)) == expected, violations(source)
