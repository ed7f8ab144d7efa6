"""Issuing a token pair: a signed access token and a stored, rotating refresh token.

Login, refresh, tenant switching, password change and invitation acceptance all sign the user
in through `issue_pair`. Never commits: the caller does.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.identity.memberships import MembershipView
from iiot.identity.repository import RefreshTokenRepository
from iiot.identity.schemas import TenantMembershipRef, TenantRef, TokenPair, UserOut
from iiot.identity.tokens import digest, new_secret
from iiot.models.base import utcnow
from iiot.models.users import RefreshToken, User
from iiot.outputs import from_row
from iiot.runtime import Runtime


def build_user_out(
    user: User, memberships: list[MembershipView], tenant_id: uuid.UUID | None
) -> UserOut:
    active = [m for m in memberships if m.status == "active"]
    current = next((m for m in active if m.tenant_id == tenant_id), None)
    return from_row(
        UserOut,
        user,
        role=current.role.value if current else None,
        is_tenant_admin=bool(current and current.role == "admin"),
        tenant=(
            TenantRef(id=current.tenant_id, name=current.tenant_name, slug=current.tenant_slug)
            if current
            else None
        ),
        tenants=[
            TenantMembershipRef(
                id=m.tenant_id,
                name=m.tenant_name,
                slug=m.tenant_slug,
                role=m.role.value,
                status=m.tenant_status,
            )
            for m in active
        ],
    )


async def issue_pair(
    session: AsyncSession,
    rt: Runtime,
    user: User,
    memberships: list[MembershipView],
    tenant_id: uuid.UUID | None,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    refresh = new_secret("rt_")
    await RefreshTokenRepository(session).add(
        RefreshToken(
            token_hash=digest(refresh),
            family_id=family_id or uuid.uuid4(),
            user_id=user.id,
            active_tenant_id=tenant_id,
            expires_at=utcnow() + timedelta(seconds=rt.settings.refresh_token_ttl_seconds),
        )
    )
    return TokenPair(
        access_token=rt.tokens.issue_access(user.id, tenant_id),
        refresh_token=refresh,
        expires_in=rt.tokens.ttl_seconds,
        user=build_user_out(user, memberships, tenant_id),
    )


# --- refresh tokens of issued pairs ----------------------------------------------------------


async def refresh_token_for_update(session: AsyncSession, token: str) -> RefreshToken | None:
    """The stored refresh token `token` (any state), locked until the transaction ends."""
    return await RefreshTokenRepository(session).by_hash_for_update(digest(token))


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> int:
    """Revoke every live token of a rotation family; how many were revoked."""
    return await RefreshTokenRepository(session).revoke_family(family_id)


async def revoke_for_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """End every session of the user: revoke all their live refresh tokens."""
    return await RefreshTokenRepository(session).revoke_for_user(user_id)


async def revoke_for_membership(
    session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID
) -> int:
    """Revoke the user's live refresh tokens whose active tenant is `tenant_id`."""
    return await RefreshTokenRepository(session).revoke_for_membership(user_id, tenant_id)
