"""Accounts (platform table) and a user's memberships across tenants.

A user's memberships are read through `iiot_user_memberships()`, a SECURITY DEFINER function:
the application role cannot read another tenant's membership rows directly.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, ScalarSelect, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.identity.memberships import MembershipView
from iiot.models.base import utcnow
from iiot.models.invitations import Invitation
from iiot.models.users import Membership, User
from iiot.tenancy.roles import Role

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

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        stmt = select(User).where(User.id == user_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_or_create_invited(self, email: str) -> User:
        """The account for `email`, created in state `invited` (no password) when none exists.

        Concurrent invitations of the same new address (from any tenant) create one account.
        """
        await self.session.execute(
            insert(User)
            .values(id=uuid.uuid4(), email=email.strip(), status="invited", password_hash=None)
            .on_conflict_do_nothing(index_elements=[func.lower(User.email)])
        )
        user = await self.get_by_email(email)
        assert user is not None
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

    async def any_system_admin(self) -> bool:
        stmt = select(User.id).where(User.is_system_admin.is_(True)).limit(1)
        return (await self.session.scalar(stmt)) is not None


class MembershipRepository(TenantRepository[Membership]):
    """Memberships of the context's tenant."""

    model = Membership

    async def get(self, user_id: uuid.UUID) -> Membership | None:
        stmt = self.scoped().where(Membership.user_id == user_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_for_update(self, user_id: uuid.UUID) -> Membership | None:
        stmt = self.scoped().where(Membership.user_id == user_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def count(self, *statuses: str) -> int:
        stmt = (
            select(func.count())
            .select_from(Membership)
            .where(Membership.tenant_id == self.ctx.tenant_id, Membership.status.in_(statuses))
        )
        return int(await self.session.scalar(stmt) or 0)

    @staticmethod
    def count_figure(tenant_id: ColumnElement[uuid.UUID], status: str) -> ScalarSelect[int]:
        """The tenant's memberships in `status` as a scalar subquery (for the usage
        statement)."""
        return (
            select(func.count())
            .select_from(Membership)
            .where(Membership.tenant_id == tenant_id, Membership.status == status)
            .scalar_subquery()
        )

    async def count_active_admins(self) -> int:
        stmt = (
            select(func.count())
            .select_from(Membership)
            .where(
                Membership.tenant_id == self.ctx.tenant_id,
                Membership.role == "admin",
                Membership.status == "active",
            )
        )
        return int(await self.session.scalar(stmt) or 0)

    async def list_with_users(
        self, *, limit: int, offset: int
    ) -> tuple[list[tuple[Membership, User]], int]:
        """Members with their accounts (users is a platform table, joined by id)."""
        base = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.tenant_id == self.ctx.tenant_id)
        )
        total = await self.count("active", "invited")
        rows = await self.session.execute(
            base.order_by(Membership.created_at, Membership.user_id).limit(limit).offset(offset)
        )
        return [(m, u) for m, u in rows], total

    async def delete(self, membership: Membership) -> None:
        await self.session.delete(membership)
        await self.session.flush()


class InvitationRepository(TenantRepository[Invitation]):
    """Invitations of the context's tenant."""

    model = Invitation

    async def get_for_update(self, invitation_id: uuid.UUID) -> Invitation | None:
        stmt = self.scoped().where(Invitation.id == invitation_id).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def open_for_user(self, user_id: uuid.UUID) -> Invitation | None:
        """The newest invitation of `user_id` neither accepted nor revoked (expired included)."""
        stmt = (
            self.scoped()
            .where(
                Invitation.user_id == user_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.created_at.desc(), Invitation.id)
            .limit(1)
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def open_by_id(self, invitation_id: uuid.UUID) -> Invitation | None:
        """A pending (neither accepted nor revoked) invitation by its id."""
        stmt = self.scoped().where(
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def open_ids(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The newest pending invitation id of each of `user_ids` that has one."""
        if not user_ids:
            return {}
        stmt = (
            select(Invitation.user_id, Invitation.id)
            .where(
                Invitation.tenant_id == self.ctx.tenant_id,
                Invitation.user_id.in_(user_ids),
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.created_at)
        )
        return {row.user_id: row.id for row in await self.session.execute(stmt)}

    async def revoke_open(self, user_id: uuid.UUID) -> int:
        stmt = (
            update(Invitation)
            .where(
                Invitation.tenant_id == self.ctx.tenant_id,
                Invitation.user_id == user_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow(), updated_at=utcnow())
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def flush(self) -> None:
        await self.session.flush()


_INVITATION_BY_TOKEN = text("select tenant_id, invitation_id from iiot_invitation_by_token(:d)")


class InvitationLookup(SystemRepository):
    """Finds which tenant an invitation token belongs to, before any tenant is known.

    Goes through `iiot_invitation_by_token()`, a SECURITY DEFINER function that answers only
    the tenant and invitation ids for one token digest."""

    async def by_token_digest(self, token_digest: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
        row = (await self.session.execute(_INVITATION_BY_TOKEN, {"d": token_digest})).first()
        return (row[0], row[1]) if row is not None else None
