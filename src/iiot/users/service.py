"""Members and invitations of a tenant. Never commits: the caller does.

Membership changes (invite, role change, removal) first take the tenant's seat lock, so
that seat counting and the last-admin rule see a settled state under concurrency.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from iiot import mail
from iiot.audit.service import record
from iiot.config import Settings
from iiot.db.session import TenantSession
from iiot.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
)
from iiot.identity.pairs import issue_pair, revoke_for_membership
from iiot.identity.passwords import check_password_rules, hash_password, verify_password
from iiot.identity.schemas import TokenPair
from iiot.identity.tokens import digest, new_secret
from iiot.models.base import utcnow
from iiot.models.invitations import Invitation
from iiot.models.users import Membership
from iiot.modules import UsageFigures, UsageParameters
from iiot.outputs import from_row
from iiot.quotas.seats import lock_seats, take_seat
from iiot.tenancy.context import TenantContext, system_context
from iiot.tenancy.principals import UserPrincipal
from iiot.tenancy.roles import Role
from iiot.tenants.lookup import tenant as find_tenant
from iiot.users.repository import (
    InvitationLookup,
    InvitationRepository,
    MembershipRepository,
    UserRepository,
)
from iiot.users.schemas import (
    InvitationOut,
    InviteRequest,
    MemberList,
    MemberOut,
    RoleOut,
    RoleUpdate,
)

if TYPE_CHECKING:
    from iiot.runtime import Runtime

INVITATION_TOKEN_PREFIX = "inv_"  # noqa: S105 - a prefix, not a secret
SEAT_STATUSES = ("active", "invited")


# --- usage figures -----------------------------------------------------------------------------


def member_figures(p: UsageParameters) -> UsageFigures:
    return {
        "user_count": MembershipRepository.count_figure(p.tenant_id, "active"),
        "invited_count": MembershipRepository.count_figure(p.tenant_id, "invited"),
    }


# --- listing -----------------------------------------------------------------------------------


async def list_members(
    session: TenantSession, ctx: TenantContext, *, limit: int, offset: int
) -> MemberList:
    rows, total = await MembershipRepository(session, ctx).list_with_users(
        limit=limit, offset=offset
    )
    # Until they accept, an invitee is known to the tenant only by the invited e-mail: the
    # account's platform-wide id and name are not shown (the pending invitation's id stands
    # in for the user id, and every route taking a member id accepts it).
    pending = await InvitationRepository(session, ctx).open_ids(
        [u.id for m, u in rows if m.status == "invited"]
    )
    return MemberList(
        users=[
            MemberOut(
                user_id=pending.get(u.id, u.id) if m.status == "invited" else u.id,
                email=u.email,
                full_name=None if m.status == "invited" else u.full_name,
                role=m.role,
                is_tenant_admin=m.role == Role.admin,
                status="invited" if m.status == "invited" else "active",
                created_at=m.created_at,
            )
            for m, u in rows
        ],
        total=total,
    )


# --- roles -------------------------------------------------------------------------------------


def resolve_role(role: Role | None, is_tenant_admin: bool | None, current: Role | None) -> Role:
    """The role asked for by `role` and/or the original clients' `is_tenant_admin` flag."""
    if role is not None and is_tenant_admin is not None and (role == Role.admin) != is_tenant_admin:
        raise ValidationFailed(
            "role and is_tenant_admin disagree",
            errors=[{"field": "is_tenant_admin", "message": f"contradicts role {role.value}"}],
        )
    if role is not None:
        return role
    if is_tenant_admin is True:
        return Role.admin
    if is_tenant_admin is False and current == Role.admin:
        return Role.developer
    if current is not None and is_tenant_admin is False:
        return current
    return Role.viewer


async def _lock_members(session: TenantSession, ctx: TenantContext) -> None:
    await lock_seats(session, ctx)


async def _refuse_losing_last_admin(members: MembershipRepository, membership: Membership) -> None:
    is_active_admin = membership.role == Role.admin and membership.status == "active"
    if is_active_admin and await members.count_active_admins() <= 1:
        raise Conflict("the tenant's last admin can be neither demoted nor removed")


async def _locate_member(
    session: TenantSession, ctx: TenantContext, member_id: uuid.UUID
) -> Membership:
    """A membership by its user id, or an invited one by its pending invitation's id."""
    members = MembershipRepository(session, ctx)
    membership = await members.get_for_update(member_id)
    if membership is None:
        invitation = await InvitationRepository(session, ctx).open_by_id(member_id)
        if invitation is not None:
            membership = await members.get_for_update(invitation.user_id)
    if membership is None:
        raise NotFound("member not found")
    return membership


async def change_role(
    session: TenantSession, ctx: TenantContext, user_id: uuid.UUID, body: RoleUpdate
) -> RoleOut:
    await _lock_members(session, ctx)
    members = MembershipRepository(session, ctx)
    membership = await _locate_member(session, ctx, user_id)
    if body.role is None and body.is_tenant_admin is None:
        raise ValidationFailed("send role or is_tenant_admin")
    current = Role(membership.role)
    new = resolve_role(body.role, body.is_tenant_admin, current)
    if new != current:
        if current == Role.admin:
            await _refuse_losing_last_admin(members, membership)
        membership.role, membership.updated_at = new.value, utcnow()
        await record(
            session,
            ctx,
            "member.role_change",
            target_type="user",
            target_id=user_id,
            before={"role": current.value},
            after={"role": new.value},
        )
    return RoleOut(user_id=user_id, role=new.value, is_tenant_admin=new == Role.admin)


# --- removal -----------------------------------------------------------------------------------


async def remove_member(session: TenantSession, ctx: TenantContext, user_id: uuid.UUID) -> None:
    """Remove a member (admins; or the member themself) or withdraw a pending invitation."""
    await _lock_members(session, ctx)
    members = MembershipRepository(session, ctx)
    membership = await _locate_member(session, ctx, user_id)
    if not ctx.has_role(Role.admin) and ctx.user_id != membership.user_id:
        raise Forbidden("only an admin may remove another member")
    await _refuse_losing_last_admin(members, membership)
    before = {"role": membership.role, "status": membership.status}
    await members.delete(membership)
    revoked_invitations = await InvitationRepository(session, ctx).revoke_open(membership.user_id)
    revoked_tokens = await revoke_for_membership(session, membership.user_id, ctx.tenant_id)
    await record(
        session,
        ctx,
        "member.invitation_revoke" if before["status"] == "invited" else "member.remove",
        target_type="user",
        target_id=user_id,
        before=before,
        after={"revoked_invitations": revoked_invitations, "revoked_tokens": revoked_tokens},
    )


# --- invitations -------------------------------------------------------------------------------


def _accept_link(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/invitations/accept?token={token}"


async def _send_invitation(
    session: TenantSession,
    ctx: TenantContext,
    settings: Settings,
    invitation: Invitation,
    token: str,
) -> None:
    tenant = await find_tenant(session, ctx.tenant_id)
    tenant_name = tenant.name if tenant else "a tenant"
    expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"You have been invited to join {tenant_name} on iiot as {invitation.role}.\n\n"
        f"Accept the invitation here:\n{_accept_link(settings, token)}\n\n"
        f"The link can be used once and expires on {expires}.\n"
        "If you did not expect this invitation, ignore this message.\n"
    )
    await mail.enqueue(
        session,
        to=invitation.email,
        subject=f"Invitation to {tenant_name} on iiot",
        body=body,
        tenant_id=ctx.tenant_id,
    )


def _invitation_out(invitation: Invitation, role: str) -> InvitationOut:
    # The account's id is shown only once the invitation is accepted.
    return from_row(
        InvitationOut,
        invitation,
        role=role,
        is_tenant_admin=role == Role.admin,
        user_id=invitation.id,
    )


async def invite(
    session: TenantSession, ctx: TenantContext, body: InviteRequest, *, settings: Settings
) -> tuple[InvitationOut, bool]:
    """Invite `body.email`; (invitation, True) when new, (invitation, False) when re-sent.

    The token is e-mailed (queued in this transaction) and never returned."""
    fields = body.model_fields_set
    role = resolve_role(body.role if "role" in fields else None, body.is_tenant_admin, None)
    await _lock_members(session, ctx)
    users = UserRepository(session)
    members = MembershipRepository(session, ctx)
    invitations = InvitationRepository(session, ctx)
    existing = await users.get_by_email(body.email)
    membership = await members.get_for_update(existing.id) if existing else None
    if membership is not None and membership.status == "active":
        raise Conflict("already a member of this tenant")
    token = new_secret(INVITATION_TOKEN_PREFIX)
    expires_at = utcnow() + timedelta(days=settings.invitation_ttl_days)
    if membership is not None:
        assert existing is not None
        previous = {"role": membership.role}
        membership.role, membership.updated_at = role.value, utcnow()
        invitation = await invitations.open_for_user(existing.id)
        if invitation is None:
            invitation = await invitations.add(
                Invitation(
                    user_id=existing.id,
                    email=existing.email,
                    role=role.value,
                    token_hash=digest(token),
                    expires_at=expires_at,
                    invited_by=ctx.user_id,
                )
            )
        else:
            invitation.token_hash, invitation.expires_at = digest(token), expires_at
            invitation.role, invitation.updated_at = role.value, utcnow()
            await invitations.flush()
        await record(
            session,
            ctx,
            "member.reinvite",
            target_type="invitation",
            target_id=invitation.id,
            before=previous,
            after={"email": invitation.email, "role": role.value, "expires_at": expires_at},
        )
        created = False
    else:
        await take_seat(session, ctx, "users", lambda: members.count(*SEAT_STATUSES))
        user = existing or await users.get_or_create_invited(body.email)
        if user.status == "disabled":
            raise Conflict("this account is disabled")
        await members.add(
            Membership(user_id=user.id, role=role.value, status="invited", invited_by=ctx.user_id)
        )
        invitation = await invitations.add(
            Invitation(
                user_id=user.id,
                email=user.email,
                role=role.value,
                token_hash=digest(token),
                expires_at=expires_at,
                invited_by=ctx.user_id,
            )
        )
        await record(
            session,
            ctx,
            "member.invite",
            target_type="invitation",
            target_id=invitation.id,
            after={"email": user.email, "role": role.value, "expires_at": expires_at},
        )
        created = True
    await _send_invitation(session, ctx, settings, invitation, token)
    return _invitation_out(invitation, role.value), created


async def locate_invitation(session: AsyncSession, token: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The (tenant, invitation) a token belongs to; 400 for a token that matches none."""
    found = await InvitationLookup(session).by_token_digest(digest(token))
    if found is None:
        raise BadRequest("unknown or malformed invitation token", reason="invalid_invitation")
    return found


async def accept_invitation(
    session: TenantSession,
    ctx: TenantContext,
    rt: Runtime,
    *,
    invitation_id: uuid.UUID,
    token: str,
    password: str | None,
    full_name: str | None,
) -> TokenPair:
    """Activate the invited membership (and the new account) and sign the user in."""
    invitation = await InvitationRepository(session, ctx).get_for_update(invitation_id)
    if invitation is None or invitation.token_hash != digest(token):
        raise BadRequest("unknown or malformed invitation token", reason="invalid_invitation")
    if invitation.revoked_at is not None:
        raise Gone("this invitation was withdrawn", reason="revoked")
    if invitation.accepted_at is not None:
        raise Gone("this invitation was already used", reason="used")
    if invitation.expires_at <= utcnow():
        raise Gone("this invitation has expired", reason="expired")
    tenant = await find_tenant(session, ctx.tenant_id)
    if tenant is None:
        raise Gone("this tenant no longer exists", reason="tenant_deleted")
    if tenant.status == "suspended":
        raise TenantSuspended("this tenant is suspended")
    membership = await MembershipRepository(session, ctx).get_for_update(invitation.user_id)
    if membership is None or membership.status != "invited":
        raise Gone("this invitation was withdrawn", reason="revoked")
    users = UserRepository(session)
    user = await users.get_for_update(invitation.user_id)
    if user is None:
        raise Gone("this invitation was withdrawn", reason="revoked")
    if user.status == "disabled":
        raise Forbidden("this account is disabled")
    new_account = user.password_hash is None
    if new_account:
        if password is None:
            raise ValidationFailed(
                "choose a password", errors=[{"field": "password", "message": "required"}]
            )
        check_password_rules(password, user.email)
        user.password_hash = await anyio.to_thread.run_sync(hash_password, password)
        user.status = "active"
    else:
        ok = await anyio.to_thread.run_sync(verify_password, user.password_hash, password or "")
        if not ok:
            raise Unauthorized("this e-mail already has an account: give its password")
    if full_name:
        user.full_name = full_name
    membership.status, membership.updated_at = "active", utcnow()
    invitation.accepted_at = utcnow()
    actor = UserPrincipal(
        user_id=user.id,
        email=user.email,
        is_system_admin=user.is_system_admin,
        token_tenant_id=ctx.tenant_id,
    )
    await record(
        session,
        system_context(ctx.tenant_id, actor, ctx.client_ip),
        "member.accept",
        target_type="user",
        target_id=user.id,
        before={"status": "invited"},
        after={"status": "active", "role": membership.role, "new_account": new_account},
    )
    memberships = await users.memberships(user.id)
    return await issue_pair(session, rt, user, memberships, ctx.tenant_id)
