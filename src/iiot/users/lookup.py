"""What other domains may read of the accounts: the look-ups that signing in, token refresh
and the first start need, and nothing else.

Accounts are a platform table: each function takes the system session (or any session
allowed to read `users`). Rows are returned for update where the caller changes the password
(through `iiot.users.accounts`).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from iiot.identity.memberships import MembershipView
from iiot.models.users import User
from iiot.users.repository import UserRepository


async def account(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await UserRepository(session).get(user_id)


async def account_for_update(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await UserRepository(session).get_for_update(user_id)


async def account_by_email(session: AsyncSession, email: str) -> User | None:
    """The account of `email`, compared without case and surrounding spaces."""
    return await UserRepository(session).get_by_email(email)


async def memberships(session: AsyncSession, user_id: uuid.UUID) -> list[MembershipView]:
    """The user's memberships of tenants not deleted, oldest tenant first."""
    return await UserRepository(session).memberships(user_id)


async def any_system_admin(session: AsyncSession) -> bool:
    return await UserRepository(session).any_system_admin()
