"""Repository base classes. All SQL lives in repositories.

A `TenantRepository` is built from a `TenantSession` (opened by `rt.db.tenant(ctx)`) and the
same `TenantContext`; every statement it makes is filtered by `ctx.tenant_id` and every row it
inserts is stamped with it. Row-level security in PostgreSQL enforces the same rule again
underneath. A system session, or a context of another tenant than the session's, is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from iiot.db.session import TenantSession
from iiot.models.base import Base
from iiot.tenancy.context import TenantContext

M = TypeVar("M", bound=Base)


class TenantRepository(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: TenantSession, ctx: TenantContext) -> None:
        if not isinstance(session, TenantSession):
            raise TypeError(
                f"{type(self).__name__} needs a tenant session (rt.db.tenant(ctx)), "
                f"not {type(session).__name__}"
            )
        if session.ctx.tenant_id != ctx.tenant_id:
            raise ValueError(f"{type(self).__name__}: the context is not the session's tenant")
        self.session = session
        self.ctx = ctx

    def scoped(self) -> Select[M]:
        return select(self.model).where(self.model.tenant_id == self.ctx.tenant_id)

    async def add(self, obj: M) -> M:
        obj.tenant_id = self.ctx.tenant_id  # type: ignore[attr-defined]
        self.session.add(obj)
        await self.session.flush()
        return obj


class SystemRepository:
    """Repositories of platform tables (tenants, tiers, users)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
