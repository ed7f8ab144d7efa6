"""Creating system admins (bootstrap and `iiot create-admin`)."""

from __future__ import annotations

import uuid

import anyio

from iiot.audit.service import record, record_platform
from iiot.identity.passwords import hash_password
from iiot.models.users import Membership, User
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context
from iiot.tenants.operator import operator_tenant
from iiot.users.repository import MembershipRepository, UserRepository


async def create_system_admin(
    rt: Runtime,
    *,
    email: str,
    password: str,
    full_name: str | None,
    tenant_name: str,
    tenant_slug: str,
) -> uuid.UUID:
    """Create (or promote) a system admin and make them admin of the operator's tenant."""
    password_hash = await anyio.to_thread.run_sync(hash_password, password)
    async with rt.db.system() as session:
        users = UserRepository(session)
        user = await users.get_by_email(email)
        if user is None:
            user = await users.add(
                User(
                    email=email.strip(),
                    password_hash=password_hash,
                    full_name=full_name,
                    is_system_admin=True,
                    status="active",
                )
            )
        else:
            user.is_system_admin = True
            user.password_hash = password_hash
            user.status = "active"
        tenant = await operator_tenant(session, name=tenant_name, slug=tenant_slug)
        await record_platform(session, "user.create_system_admin", actor_id=None, subject=email)
        user_id, tenant_id = user.id, tenant.id
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        members = MembershipRepository(session, ctx)
        existing = await members.get(user_id)
        if existing is None:
            await members.add(Membership(user_id=user_id, role="admin"))
        else:
            existing.role, existing.status = "admin", "active"
        await record(
            session,
            ctx,
            "member.add",
            target_type="user",
            target_id=user_id,
            after={"role": "admin", "reason": "bootstrap"},
        )
    return tenant_id
