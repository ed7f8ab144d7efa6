"""Helpers the revisions use to put a tenant-owned table under row-level security."""

from __future__ import annotations

from alembic import op

TENANT_PREDICATE = "tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid"


def enable_tenant_rls(table: str) -> None:
    """ENABLE + FORCE row-level security with the one tenant policy (USING and WITH CHECK)."""
    op.execute(f"alter table {table} enable row level security")
    op.execute(f"alter table {table} force row level security")
    op.execute(
        f"create policy tenant_isolation on {table} "
        f"using ({TENANT_PREDICATE}) with check ({TENANT_PREDICATE})"
    )


def disable_tenant_rls(table: str) -> None:
    op.execute(f"drop policy if exists tenant_isolation on {table}")
    op.execute(f"alter table {table} no force row level security")
    op.execute(f"alter table {table} disable row level security")
