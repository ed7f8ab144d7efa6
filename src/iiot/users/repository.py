"""Accounts (platform table) and a user's memberships across tenants.

A user's memberships are read through `iiot_user_memberships()`, a SECURITY DEFINER function:
the application role cannot read another tenant's membership rows directly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.models.users import Membership, User
from iiot.tenancy.roles import Role


@dataclass(frozen=True)
class MembershipView:
    tenant_id: uuid.UUID
    tenant_name: str
    tenant_slug: str
    tenant_status: str
    role: Role
    status: str  # active | invited


_MEMBERSHIPS = text(
    """
    select m.tenant_id, t.name, t.slug, t.status as tenant_status, m.role, m.status
    from iiot_user_memberships(:user_id) m
    join tenants t on t.id = m.tenant_id
    where t.deleted_at is null
    order by t.created_at, t.id
    """
)


class UserRepository(SystemRepository):
    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        stmt = select(User).where(func.lower(User.email) == email.strip().lower())
        return (await self.session.scalars(stmt)).one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def memberships(self, user_id: uuid.UUID) -> list[MembershipView]:
        rows = await self.session.execute(_MEMBERSHIPS, {"user_id": user_id})
        return [
            MembershipView(
                tenant_id=r[0],
                tenant_name=r[1],
                tenant_slug=r[2],
                tenant_status=r[3],
                role=Role(r[4]),
                status=r[5],
            )
            for r in rows
        ]

    async def membership(self, user_id: uuid.UUID, tenant_id: uuid.UUID) -> MembershipView | None:
        for m in await self.memberships(user_id):
            if m.tenant_id == tenant_id:
                return m
        return None

    async def any_system_admin(self) -> bool:
        stmt = select(User.id).where(User.is_system_admin.is_(True)).limit(1)
        return (await self.session.scalar(stmt)) is not None


class MembershipRepository(TenantRepository[Membership]):
    """Memberships of the context's tenant."""

    model = Membership

    async def get(self, user_id: uuid.UUID) -> Membership | None:
        stmt = self.scoped().where(Membership.user_id == user_id)
        return (await self.session.scalars(stmt)).one_or_none()
