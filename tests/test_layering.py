"""Layering rules, checked on the source of every module of src/iiot with `ast`:

1. No SQL outside repositories: no SQL builders imported from SQLAlchemy, no statement run
   directly on a session or connection, except in repositories, the schema (`models/`,
   `migrations/`), the database layer (`db/`) and the few listed infrastructure modules.
2. Tenant contexts come from the resolvers: `TenantContext(` only where a verified credential
   is turned into a context; `system_context(` and `db.system(` only in the listed modules.
3. Nothing registers itself at import: no call statement at module level, no module-level
   decorator other than route/command/dataclass declarations, no module-level use of the
   scheduler, the event bus or the usage collector. Modules are wired by `iiot.app.MODULES`.
4. A domain's repository is imported by that domain only; others use its services or look-ups.
   An account's password and last sign-in are written by the users package only.
5. Packages import each other one way: the package import graph has no cycle.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
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


ALL_MODULES = sorted(SRC.rglob("*.py"))


@functools.cache
def _parse(source: str) -> ast.Module:
    """A source's syntax tree, parsed once per session: every guard below walks the same
    modules, and the checkers only read the trees."""
    return ast.parse(source)


@functools.cache
def _nodes(tree: ast.AST) -> tuple[ast.AST, ...]:
    """Every node of a tree, listed once: the guards walk each module several times."""
    return tuple(ast.walk(tree))


def _rel(path: Path) -> str:
    return str(path.relative_to(SRC))


# Modules that may hold SQL besides repositories, and why.
SQL_ALLOWED = {
    "jobs/scheduler.py": "advisory lock that makes a job run in one process",
    "stream/hub.py": "NOTIFY connection publishing live telemetry",
}


def _may_hold_sql(path: Path) -> bool:
    rel = _rel(path)
    return (
        path.stem == "repository"
        or path.stem.endswith("_repository")
        or rel.startswith(("db/", "models/", "migrations/"))
        or rel in SQL_ALLOWED
    )


UPPER_LAYER = [p for p in ALL_MODULES if not _may_hold_sql(p)]


def _holder_name(node: ast.expr) -> str:
    """`session` for `session.execute`, `self.session` for `self.session.execute`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def violations(source: str) -> list[str]:
    tree = _parse(source)
    found: list[str] = []
    sqlalchemy_aliases: set[str] = set()
    for node in _nodes(tree):
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
    for node in _nodes(tree):
        if not isinstance(node, ast.Attribute):
            continue
        holder = _holder_name(node.value)
        if holder in sqlalchemy_aliases and node.attr in SQL_BUILDERS:
            found.append(f"line {node.lineno}: uses {holder}.{node.attr}")
        if node.attr in RUNNERS and ("session" in holder.lower() or "conn" in holder.lower()):
            found.append(f"line {node.lineno}: runs SQL with {holder}.{node.attr}")
    return found


def test_no_sql_outside_repositories() -> None:
    """Every module of the upper layer, each named with its findings (one test for all of
    them: a test per module cost more in test overhead than the check itself)."""
    found = {_rel(p): v for p in UPPER_LAYER if (v := violations(p.read_text()))}
    assert found == {}, f"modules that build or run SQL; move it to a repository: {found}"


def test_the_walk_sees_the_upper_layer() -> None:
    names = {str(p.relative_to(SRC)) for p in UPPER_LAYER}
    assert {"auth/api.py", "auth/service.py", "platform/api.py", "rules/engine.py"} <= names
    assert "devices/repository.py" not in names
    assert set(SQL_ALLOWED) <= {_rel(p) for p in ALL_MODULES}, "stale SQL_ALLOWED entry"


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


# --- 2. where tenant contexts and system sessions come from ----------------------------------

# `TenantContext(...)`: only where a verified credential becomes a context.
CONTEXT_BUILDERS = {
    "callers/resolver.py": "users and API keys",
    "devices/access.py": "device tokens",
    "tenancy/context.py": "system_context itself",
}
# `system_context(...)`: platform work on a named tenant (jobs, workers, platform admin).
SYSTEM_CONTEXT_ALLOWED = {
    "telemetry/retention.py": "retention job",
    "users/service.py": "invitation acceptance (the invitee is no member yet)",
    "users/api.py": "invitation acceptance by token (no member yet)",
    "users/admin.py": "bootstrap of the first admin",
    "notifications/webhooks.py": "webhook delivery worker",
    "rules/engine.py": "rule evaluation worker",
    "rules/cache.py": "rule cache loader",
    "rules/offline.py": "offline-rule job",
    "devices/presence.py": "presence flush job",
    "escalation/job.py": "escalation job",
    "connectivity/hub.py": "live device sessions: re-checking credentials and tenants on notice",
    "connectivity/rpc_service.py": "RPC expiry job",
    "metering/meter.py": "usage meter flush (per-process counts of many tenants)",
    "telemetry/removed.py": "removed-series deletion job",
}
# `<...>.db.system()` / `db.system()`: platform tables (tenants, users, tokens, tiers).
DB_SYSTEM_ALLOWED = {
    "auth/api.py": "login and refresh (no tenant yet)",
    "platform/api.py": "platform routes",
    "bootstrap.py": "first start",
    "tenants/api.py": "tenant management",
    "tenants/service.py": "tenant management",
    "users/api.py": "accounts",
    "users/admin.py": "bootstrap of the first admin",
    "mail/outbox.py": "mail outbox worker",
    "notifications/webhooks.py": "webhook delivery worker",
    "rules/offline.py": "offline-rule job (tenants to visit)",
    "telemetry/retention.py": "retention job (tenants to visit)",
    "telemetry/partitions.py": "partition maintenance",
    "escalation/job.py": "escalation job (tenants to visit)",
    "connectivity/hub.py": "device identities and tenant status, before any tenant is known",
    "connectivity/rpc_service.py": "RPC expiry job (tenants to visit)",
    "quotas/rates.py": "a tenant's effective limits, read before its context exists",
    "auth/service.py": "password-reset token purge job (platform table)",
    "rules/engine.py": "durable rule batches: tenants with queued batches after a crash",
    "telemetry/removed.py": "removed-series deletion job (tenants to visit)",
}


def _calls(tree: ast.AST, name: str) -> list[int]:
    """Lines calling `name(...)` or `<anything>.name(...)`."""
    return [
        node.lineno
        for node in _nodes(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def _db_system_calls(tree: ast.AST) -> list[int]:
    """Lines calling `db.system()` / `rt.db.system()` / `self.db.system()`."""
    return [
        node.lineno
        for node in _nodes(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "system"
        and _holder_name(node.func.value) == "db"
    ]


def context_violations(rel: str, source: str) -> list[str]:
    tree = _parse(source)
    found: list[str] = []
    if rel not in CONTEXT_BUILDERS:
        found += [f"line {n}: builds a TenantContext" for n in _calls(tree, "TenantContext")]
    if rel not in SYSTEM_CONTEXT_ALLOWED:
        found += [f"line {n}: calls system_context" for n in _calls(tree, "system_context")]
    if rel not in DB_SYSTEM_ALLOWED:
        found += [f"line {n}: opens db.system()" for n in _db_system_calls(tree)]
    return found


def test_contexts_and_system_sessions_only_where_allowed() -> None:
    found = {_rel(p): v for p in ALL_MODULES if (v := context_violations(_rel(p), p.read_text()))}
    assert found == {}, (
        f"{found}. Tenant data is reached through a context made by a resolver "
        "(iiot.callers.resolver, devices/access.py); platform work that needs system_context "
        "or db.system() is listed, with its reason, in tests/test_layering.py"
    )


def test_allow_lists_name_real_uses() -> None:
    """An allow-list entry whose module no longer does the thing is removed, not kept."""
    sources = {_rel(p): _parse(p.read_text()) for p in ALL_MODULES}
    stale = [rel for rel in SYSTEM_CONTEXT_ALLOWED if not _calls(sources[rel], "system_context")]
    stale += [rel for rel in DB_SYSTEM_ALLOWED if not _db_system_calls(sources[rel])]
    stale += [rel for rel in CONTEXT_BUILDERS if not _calls(sources[rel], "TenantContext")]
    assert stale == []


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("alerts/api.py", "ctx = TenantContext(tenant_id=t, principal=p, role=None)\n", 1),
        ("alerts/api.py", "from x import system_context\nctx = system_context(t)\n", 1),
        ("alerts/api.py", "async def f(rt):\n    async with rt.db.system() as s: ...\n", 1),
        ("alerts/api.py", "async def f(self):\n    async with self.db.system() as s: ...\n", 1),
        ("alerts/api.py", "async def f(rt, ctx):\n    async with rt.db.tenant(ctx) as s: ...\n", 0),
        ("alerts/api.py", "isinstance(ctx, TenantContext)\n", 0),
        ("callers/resolver.py", "ctx = TenantContext(tenant_id=t, principal=p, role=None)\n", 0),
    ],
)
def test_context_checker_flags(rel: str, source: str, expected: int) -> None:
    assert len(context_violations(rel, source)) == expected


# --- 3. no registration at import -------------------------------------------------------------

# Module-level decorators that declare (routes, commands, data classes), not register.
DECLARING_DECORATORS = (
    "router.",
    "runtime_checkable",
    "dataclass",
    "app.command",
    "db_app.command",
    "cache",
    "lru_cache",
)
# Module-level call statements that are not registrations.
MODULE_CALLS_ALLOWED = {
    ("cli.py", "app.add_typer"),
    ("mail/outbox.py", "dev_log.setLevel"),
}
# Modules whose use at import time would register something.
REGISTRIES = ("iiot.jobs", "iiot.events", "iiot.quotas.usage", "iiot.modules")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - ast.unparse handles every expression
        return ""


ROUTE_VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}


def _declares(deco: ast.expr) -> bool:
    """`@<router>.get(...)` and the like declare a route on a router object."""
    func = deco.func if isinstance(deco, ast.Call) else deco
    if isinstance(func, ast.Attribute) and func.attr in ROUTE_VERBS:
        return True
    return _dotted(deco).startswith(DECLARING_DECORATORS)


def registration_violations(rel: str, source: str) -> list[str]:
    tree = _parse(source)
    registry_names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(REGISTRIES):
            registry_names |= {
                a.asname or a.name
                for a in node.names
                if not a.name[:1].isupper()  # classes (Module, Job, Hook...) describe
            }
        elif isinstance(node, ast.Import):
            registry_names |= {
                a.asname or a.name for a in node.names if a.name.startswith(REGISTRIES)
            }
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            called = _dotted(node.value)
            if (rel, called) not in MODULE_CALLS_ALLOWED:
                found.append(f"line {node.lineno}: calls {called}() at import")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for deco in node.decorator_list:
                if not _declares(deco):
                    found.append(f"line {node.lineno}: decorator @{_dotted(deco)} at import")
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Call) and _dotted(sub).split(".")[0] in registry_names:
                    found.append(f"line {node.lineno}: calls {_dotted(sub)}() at import")
    return found


def test_nothing_registers_at_import() -> None:
    # Migration revisions are run by Alembic, never imported by the application.
    found = {
        _rel(p): v
        for p in ALL_MODULES
        if not _rel(p).startswith("migrations/")
        and (v := registration_violations(_rel(p), p.read_text()))
    }
    assert found == {}, (
        f"modules that do work at import: {found}. Describe jobs, hooks, listeners and "
        "usage providers in the domain's module.py and list the module in iiot.app.MODULES"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from iiot.jobs import scheduler\nscheduler.register('x', 60, f)\n", 1),
        ("from iiot import events\nevents.subscribe(f)\n", 1),
        ("from iiot.events import subscribe\nTOKEN = subscribe(f)\n", 1),
        ("@on_telemetry\nasync def f(rt, e): ...\n", 1),
        ("@router.get('/x')\nasync def f(): ...\n", 0),
        ("@schedules.delete('/x')\nasync def f(): ...\n", 0),
        ("from iiot.modules import Job, Module\nMODULE = Module('x', jobs=(Job('j', 1, f),))\n", 0),
        ("log = logging.getLogger(__name__)\n", 0),
    ],
)
def test_registration_checker_flags(source: str, expected: int) -> None:
    assert len(registration_violations("x.py", source)) == expected


# --- 4. domains read each other through services, not repositories -----------------------------

# Cross-domain repository imports that exist today, each a known debt to remove (narrow lookup
# interfaces for the resolver; identity primitives apart from the login feature). A new one
# fails; a removed one must leave this list.
CROSS_REPOSITORY_ALLOWED = {
    ("telemetry/ingest.py", "iiot.quotas.repository"),
}


def cross_repository_imports(rel: str, source: str) -> set[tuple[str, str]]:
    """Imports of another domain's repository module (the `db` base classes excepted)."""
    domain = rel.split("/")[0] if "/" in rel else None
    found: set[tuple[str, str]] = set()
    for node in _nodes(_parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("iiot."):
            parts = (node.module or "").split(".")
            if (
                len(parts) >= 3
                and parts[1] not in (domain, "db")
                and (parts[2] == "repository" or parts[2].endswith("_repository"))
            ):
                found.add((rel, node.module or ""))
    return found


def test_no_new_cross_domain_repository_reads() -> None:
    found: set[tuple[str, str]] = set()
    for path in ALL_MODULES:
        found |= cross_repository_imports(_rel(path), path.read_text())
    assert found - CROSS_REPOSITORY_ALLOWED == set(), (
        "read another domain's data through its service, not its repository"
    )
    assert CROSS_REPOSITORY_ALLOWED - found == set(), "stale entry: remove it from the list"


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("devices/service.py", "from iiot.telemetry.repository import X\n", 1),
        ("devices/service.py", "from iiot.telemetry.query_repository import X\n", 1),
        ("devices/service.py", "from iiot.devices.repository import X\n", 0),
        ("devices/repository.py", "from iiot.db.repository import TenantRepository\n", 0),
        ("devices/service.py", "from iiot.telemetry.query_service import latest\n", 0),
    ],
)
def test_cross_repository_checker_flags(rel: str, source: str, expected: int) -> None:
    assert len(cross_repository_imports(rel, source)) == expected


def test_the_tenant_setting_is_applied_in_one_place() -> None:
    """Only `iiot.db.session.set_tenant_sql` writes `app.tenant_id` (migrations read it)."""
    writers = [
        _rel(p)
        for p in ALL_MODULES
        if "set_config(" in p.read_text() and not _rel(p).startswith("migrations/")
    ]
    assert writers == ["db/session.py"]


# Columns of an account (the `users` table) that only the users package writes; login and the
# password change and reset of `auth` go through `iiot.users.accounts`.
ACCOUNT_COLUMNS = {"password_hash", "last_login_at"}


def account_writes(rel: str, source: str) -> list[str]:
    """Assignments to an account column outside the users package."""
    if rel.startswith(("users/", "models/", "migrations/")):
        return []
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [
                t for target in node.targets for t in ast.walk(target) if isinstance(t, ast.expr)
            ]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        found += [
            f"line {node.lineno}: sets .{t.attr}"
            for t in targets
            if isinstance(t, ast.Attribute) and t.attr in ACCOUNT_COLUMNS
        ]
    return found


def test_accounts_are_written_by_the_users_package() -> None:
    found = {_rel(p): account_writes(_rel(p), p.read_text()) for p in ALL_MODULES}
    assert {rel: lines for rel, lines in found.items() if lines} == {}, (
        "change an account through iiot.users.accounts"
    )


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("auth/service.py", "user.password_hash = h\n", 1),
        ("auth/service.py", "user.last_login_at, x = now, 1\n", 1),
        ("auth/service.py", "row.used_at = now\n", 0),
        ("users/accounts.py", "user.password_hash = h\n", 0),
    ],
)
def test_account_write_checker_flags(rel: str, source: str, expected: int) -> None:
    assert len(account_writes(rel, source)) == expected


# --- 5. packages depend on each other one way ---------------------------------------------------

# Imports that close a cycle between packages of src/iiot, each a known debt with its reason
# (none today). Without them the package graph has no cycle: a new import that closes one
# fails, and an entry that no longer closes one (its import is gone, or the cycle is) must
# leave the list.
PACKAGE_BACK_EDGES: dict[tuple[str, str], str] = {}

PACKAGES = frozenset(p.parent.name for p in SRC.glob("*/__init__.py"))


@functools.cache
def imported_packages(rel: str, source: str, packages: frozenset[str]) -> frozenset[str]:
    """The other packages of iiot that module `rel` imports, wherever the import stands (module
    level, in a function, under TYPE_CHECKING): each is a dependency of its package. Cached: the
    stale-entry check asks again for every module once per back edge."""
    own = rel.split("/")[0] if "/" in rel else None
    found: set[str] = set()
    for node in _nodes(_parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "iiot":
                names = [f"iiot.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "iiot" and parts[1] in packages:
                found.add(parts[1])
    return frozenset(found - {own} if own else found)


def package_cycle(
    sources: dict[str, str], back_edges: Iterable[tuple[str, str]] = ()
) -> list[str] | None:
    """A cycle of the package import graph of `sources` (relative path -> source), each step
    named `package -> package (module, ...)`, leaving out the `back_edges` (module, package)."""
    packages = frozenset(rel.split("/")[0] for rel in sources if "/" in rel)
    skipped = set(back_edges)
    through: dict[tuple[str, str], list[str]] = {}
    graph: dict[str, set[str]] = {p: set() for p in packages}
    for rel, source in sources.items():
        if "/" not in rel:
            continue  # top-level modules (app, cli, runtime) are no package
        for target in imported_packages(rel, source, packages):
            if (rel, target) not in skipped:
                graph[rel.split("/")[0]].add(target)
                through.setdefault((rel.split("/")[0], target), []).append(rel)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle: list[str] = exc.args[1]  # [a, ..., a], each depending on the next (reversed)
        steps = list(reversed(cycle))
        return [f"{a} -> {b} ({', '.join(sorted(through[a, b]))})" for a, b in pairwise(steps)]
    return None


def test_packages_import_each_other_one_way() -> None:
    sources = {_rel(p): p.read_text() for p in ALL_MODULES}
    cycle = package_cycle(sources, PACKAGE_BACK_EDGES)
    assert cycle is None, (
        f"import cycle between packages: {cycle}. A package uses another's services or narrow "
        "look-ups one way; shared primitives go below both (e.g. iiot.identity)"
    )
    stale = [
        (rel, package)
        for rel, package in PACKAGE_BACK_EDGES
        if package not in imported_packages(rel, sources[rel], PACKAGES)
        or package_cycle(sources, set(PACKAGE_BACK_EDGES) - {(rel, package)}) is None
    ]
    assert stale == [], f"{stale} no longer close a cycle: remove them from PACKAGE_BACK_EDGES"


@pytest.mark.parametrize(
    ("sources", "back_edges", "cycle"),
    [
        (
            {"a/x.py": "from iiot.b.y import f\n", "b/y.py": "from iiot.a.x import g\n"},
            (),
            ["a -> b (a/x.py)", "b -> a (b/y.py)"],
        ),
        (
            {"a/x.py": "def f():\n    from iiot.b import y\n", "b/y.py": "import iiot.a.x\n"},
            (),
            ["a -> b (a/x.py)", "b -> a (b/y.py)"],
        ),
        (
            {
                "a/x.py": "from iiot import b\n",
                "b/y.py": "from iiot.c.z import h\n",
                "c/z.py": "from iiot.a.x import g\n",
            },
            (),
            ["a -> b (a/x.py)", "b -> c (b/y.py)", "c -> a (c/z.py)"],
        ),
        (
            {"a/x.py": "from iiot.b.y import f\n", "b/y.py": "from iiot.a.x import g\n"},
            [("b/y.py", "a")],
            None,
        ),
        (
            {"a/x.py": "from iiot.b.y import f\nfrom iiot.a.w import v\n", "b/y.py": "x = 1\n"},
            (),
            None,
        ),
        (
            {"a/x.py": "from iiot.runtime import R\n", "runtime.py": "from iiot.a import x\n"},
            (),
            None,
        ),
    ],
)
def test_cycle_checker_flags(
    sources: dict[str, str], back_edges: list[tuple[str, str]], cycle: list[str] | None
) -> None:
    found = package_cycle(sources, back_edges)
    if cycle is None:
        assert found is None
    else:
        assert found is not None
        # the same cycle, whichever package it starts from
        start = found.index(next(s for s in found if s.startswith(cycle[0].split(" ")[0] + " ")))
        assert found[start:] + found[:start] == cycle
