"""Login, refresh rotation, logout and tenant switching. Never commits: the caller does.

Failures that must leave a trace (failed login, refresh-token re-use) are returned as an
outcome rather than raised, so that the caller commits the audit row and then answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from iiot import mail
from iiot.audit.service import record_platform
from iiot.auth.denylist import deny_list
from iiot.auth.passwords import check_password_rules, hash_password, verify_password
from iiot.auth.repository import PasswordResetRepository, RefreshTokenRepository
from iiot.auth.schemas import TenantMembershipRef, TenantRef, TokenPair, UserOut
from iiot.auth.tokens import AccessClaims, digest, new_secret
from iiot.errors import (
    BadRequest,
    Forbidden,
    IIoTError,
    NotAMember,
    NotFound,
    RateLimited,
    TenantSuspended,
    Unauthorized,
)
from iiot.models.base import utcnow
from iiot.models.users import PasswordResetToken, RefreshToken, User
from iiot.runtime import Runtime
from iiot.tenants.repository import TenantRepository
from iiot.users.repository import MembershipView, UserRepository

INVALID_CREDENTIALS = "invalid e-mail or password"


@dataclass
class AuthOutcome:
    pair: TokenPair | None = None
    error: IIoTError | None = None

    def unwrap(self) -> TokenPair:
        if self.error is not None:
            raise self.error
        assert self.pair is not None
        return self.pair


def _usable(m: MembershipView) -> bool:
    return m.status == "active" and m.tenant_status != "suspended"


def build_user_out(
    user: User, memberships: list[MembershipView], tenant_id: uuid.UUID | None
) -> UserOut:
    active = [m for m in memberships if m.status == "active"]
    current = next((m for m in active if m.tenant_id == tenant_id), None)
    return UserOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        is_system_admin=user.is_system_admin,
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


def _choose_tenant(
    memberships: list[MembershipView],
    requested: uuid.UUID | None,
    is_system_admin: bool,
    requested_exists: bool = False,
) -> uuid.UUID | None:
    if requested is not None:
        m = next((m for m in memberships if m.tenant_id == requested), None)
        if m is None or m.status != "active":
            if is_system_admin and requested_exists:
                # Platform routes take any tenant's id; a token's active tenant is a membership.
                raise NotAMember(
                    "you are not a member of this tenant: system admins act on other tenants "
                    "through /tenants/{id} routes"
                )
            raise NotFound("tenant not found")
        if m.tenant_status == "suspended" and not is_system_admin:
            raise TenantSuspended("this tenant is suspended")
        return requested
    usable = [m for m in memberships if _usable(m)]
    if usable:
        return usable[0].tenant_id
    if not is_system_admin and any(m.status == "active" for m in memberships):
        raise TenantSuspended("every tenant of this account is suspended")
    return None


async def login(
    session: AsyncSession,
    rt: Runtime,
    *,
    email: str,
    password: str,
    tenant_id: uuid.UUID | None,
    ip: str | None,
) -> AuthOutcome:
    settings = rt.settings
    window = settings.login_failure_window_seconds
    account_key = f"login:acct:{email.strip().lower()}"
    ip_key = f"login:ip:{ip or 'unknown'}"
    for key, limit, name in (
        (account_key, settings.login_max_failures_per_account, "login_account"),
        (ip_key, settings.login_max_failures_per_ip, "login_ip"),
    ):
        seen = await rt.rate.peek(key, window)
        if seen.count >= limit:
            return AuthOutcome(error=RateLimited(name, window, seen.retry_after))

    users = UserRepository(session)
    user = await users.get_by_email(email)
    ok = await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password
    )
    if not ok or user is None or user.status != "active":
        await rt.rate.hit(account_key, window)
        await rt.rate.hit(ip_key, window)
        await record_platform(
            session,
            "auth.login_failed",
            actor_id=user.id if user else None,
            subject=email.strip().lower()[:320],
            ip=ip,
        )
        return AuthOutcome(error=Unauthorized(INVALID_CREDENTIALS, reason="invalid_credentials"))

    memberships = await users.memberships(user.id)
    try:
        chosen = _choose_tenant(memberships, tenant_id, user.is_system_admin)
    except IIoTError as exc:
        return AuthOutcome(error=exc)
    await rt.rate.reset(account_key, window)
    user.last_login_at = utcnow()
    pair = await issue_pair(session, rt, user, memberships, chosen)
    await record_platform(
        session,
        "auth.login",
        actor_id=user.id,
        subject=user.email,
        details={"tenant_id": chosen},
        ip=ip,
    )
    return AuthOutcome(pair=pair)


async def refresh(session: AsyncSession, rt: Runtime, *, token: str, ip: str | None) -> AuthOutcome:
    tokens = RefreshTokenRepository(session)
    row = await tokens.by_hash_for_update(digest(token))
    invalid = Unauthorized("invalid refresh token")
    if row is None:
        return AuthOutcome(error=invalid)
    if row.used_at is not None or row.revoked_at is not None:
        if row.used_at is not None:  # a spent token presented again: the family is stolen
            revoked = await tokens.revoke_family(row.family_id)
            await record_platform(
                session,
                "auth.refresh_reuse",
                actor_id=row.user_id,
                details={"family_id": row.family_id, "revoked": revoked},
                ip=ip,
            )
        return AuthOutcome(error=invalid)
    if row.expires_at <= utcnow():
        return AuthOutcome(error=invalid)
    row.used_at = utcnow()
    users = UserRepository(session)
    user = await users.get(row.user_id)
    if user is None or user.status != "active":
        return AuthOutcome(error=invalid)
    memberships = await users.memberships(user.id)
    tenant_id = row.active_tenant_id
    if tenant_id is not None:
        m = next((m for m in memberships if m.tenant_id == tenant_id), None)
        if (m is None or m.status != "active") and user.is_system_admin:
            tenant_id = None  # the tenant was deleted or left: platform work goes on
        elif m is None or m.status != "active":
            await tokens.revoke_family(row.family_id)
            return AuthOutcome(error=invalid)
        elif m.tenant_status == "suspended" and not user.is_system_admin:
            return AuthOutcome(error=TenantSuspended("this tenant is suspended"))
    pair = await issue_pair(session, rt, user, memberships, tenant_id, family_id=row.family_id)
    return AuthOutcome(pair=pair)


async def logout(session: AsyncSession, *, token: str, ip: str | None) -> None:
    tokens = RefreshTokenRepository(session)
    row = await tokens.by_hash_for_update(digest(token))
    if row is None:
        return
    await tokens.revoke_family(row.family_id)
    await record_platform(
        session, "auth.logout", actor_id=row.user_id, details={"family_id": row.family_id}, ip=ip
    )


async def switch_tenant(
    session: AsyncSession, rt: Runtime, *, user_id: uuid.UUID, tenant_id: uuid.UUID, ip: str | None
) -> TokenPair:
    users = UserRepository(session)
    user = await users.get(user_id)
    if user is None:
        raise Unauthorized("invalid access token")
    memberships = await users.memberships(user.id)
    exists = user.is_system_admin and await TenantRepository(session).get(tenant_id) is not None
    chosen = _choose_tenant(memberships, tenant_id, user.is_system_admin, exists)
    pair = await issue_pair(session, rt, user, memberships, chosen)
    await record_platform(
        session, "auth.switch_tenant", actor_id=user.id, details={"tenant_id": chosen}, ip=ip
    )
    return pair


async def me(session: AsyncSession, *, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> UserOut:
    users = UserRepository(session)
    user = await users.get(user_id)
    if user is None:
        raise Unauthorized("invalid access token")
    return build_user_out(user, await users.memberships(user_id), tenant_id)


# --- sign-out, password change and reset -------------------------------------------------------

RESET_TOKEN_PREFIX = "pr_"  # noqa: S105 - a prefix, not a secret
RESET_TOKEN_TTL = timedelta(hours=1)
# Reset e-mails per account and per client address per hour; beyond, requests are still
# answered 202 but send nothing.
RESET_WINDOW_SECONDS = 3600
RESET_MAX_PER_ACCOUNT = 3
RESET_MAX_PER_IP = 20


async def sign_out_access_token(rt: Runtime, claims: AccessClaims | None) -> None:
    """Stop an access token before its expiry (the deny list holds its jti until then)."""
    if claims is not None:
        await deny_list(rt).deny(claims.jti, claims.expires_at)


async def change_password(
    session: AsyncSession,
    rt: Runtime,
    *,
    user_id: uuid.UUID,
    claims: AccessClaims,
    current_password: str,
    new_password: str,
    ip: str | None,
) -> AuthOutcome:
    """Verify the current password, set the new one, end every other session: all refresh
    tokens are revoked and a new pair is issued for this one."""
    window = rt.settings.login_failure_window_seconds
    key = f"password:acct:{user_id}"
    seen = await rt.rate.peek(key, window)
    if seen.count >= rt.settings.login_max_failures_per_account:
        return AuthOutcome(error=RateLimited("password_change", window, seen.retry_after))
    users = UserRepository(session)
    user = await users.get_for_update(user_id)
    if user is None or user.status != "active":
        return AuthOutcome(error=Unauthorized("invalid access token"))
    ok = await anyio.to_thread.run_sync(verify_password, user.password_hash, current_password)
    if not ok:
        await rt.rate.hit(key, window)
        await record_platform(
            session, "auth.password_change_failed", actor_id=user.id, subject=user.email, ip=ip
        )
        return AuthOutcome(
            error=Forbidden("the current password is wrong", reason="wrong_password")
        )
    check_password_rules(new_password, user.email)
    user.password_hash = await anyio.to_thread.run_sync(hash_password, new_password)
    user.updated_at = utcnow()
    revoked = await RefreshTokenRepository(session).revoke_for_user(user.id)
    await PasswordResetRepository(session).spend_open(user.id)
    memberships = await users.memberships(user.id)
    tenant_id = claims.tenant_id
    if tenant_id is not None and not any(
        m.tenant_id == tenant_id and m.status == "active" for m in memberships
    ):
        tenant_id = None
    pair = await issue_pair(session, rt, user, memberships, tenant_id)
    await record_platform(
        session,
        "auth.password_change",
        actor_id=user.id,
        subject=user.email,
        details={"revoked_refresh_tokens": revoked},
        ip=ip,
    )
    await rt.rate.reset(key, window)
    return AuthOutcome(pair=pair)


def reset_link(rt: Runtime, token: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/password-reset?token={token}"


async def request_password_reset(
    session: AsyncSession, rt: Runtime, *, email: str, ip: str | None
) -> bool:
    """E-mail a reset link when the account exists, is active and is not throttled.

    The caller answers the same whatever happens here, so nobody learns whether an account
    exists. Returns whether a message was queued."""
    normalised = email.strip().lower()
    for key, limit in (
        (f"reset:acct:{normalised}", RESET_MAX_PER_ACCOUNT),
        (f"reset:ip:{ip or 'unknown'}", RESET_MAX_PER_IP),
    ):
        if (await rt.rate.hit(key, RESET_WINDOW_SECONDS)).count > limit:
            return False
    user = await UserRepository(session).get_by_email(normalised)
    if user is None or user.status != "active":
        return False
    resets = PasswordResetRepository(session)
    await resets.spend_open(user.id)
    token = new_secret(RESET_TOKEN_PREFIX)
    now = utcnow()
    expires_at = now + RESET_TOKEN_TTL
    await resets.add(
        PasswordResetToken(
            user_id=user.id, token_hash=digest(token), created_at=now, expires_at=expires_at
        )
    )
    body = (
        "Someone (hopefully you) asked to reset the password of your iiot account.\n\n"
        f"Choose a new password here:\n{reset_link(rt, token)}\n\n"
        f"The link can be used once and expires at {expires_at:%Y-%m-%d %H:%M} UTC.\n"
        "If you did not ask for this, ignore this message: your password is unchanged.\n"
    )
    await mail.enqueue(session, to=user.email, subject="Reset your iiot password", body=body)
    await record_platform(
        session, "auth.password_reset_requested", actor_id=user.id, subject=user.email, ip=ip
    )
    return True


async def confirm_password_reset(
    session: AsyncSession, rt: Runtime, *, token: str, password: str, ip: str | None
) -> None:
    """Set a new password with a reset token (once); every session of the account ends."""
    invalid = BadRequest("invalid or expired password-reset token", reason="invalid_reset_token")
    resets = PasswordResetRepository(session)
    row = await resets.by_hash_for_update(digest(token))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise invalid
    users = UserRepository(session)
    user = await users.get_for_update(row.user_id)
    if user is None or user.status != "active":
        raise invalid
    check_password_rules(password, user.email)
    user.password_hash = await anyio.to_thread.run_sync(hash_password, password)
    user.updated_at = utcnow()
    await resets.spend_open(user.id)
    revoked = await RefreshTokenRepository(session).revoke_for_user(user.id)
    await record_platform(
        session,
        "auth.password_reset",
        actor_id=user.id,
        subject=user.email,
        details={"revoked_refresh_tokens": revoked},
        ip=ip,
    )
    await rt.rate.reset(
        f"login:acct:{user.email.strip().lower()}", rt.settings.login_failure_window_seconds
    )


async def purge_expired_reset_tokens(rt: Runtime) -> int:
    """Job: forget password-reset tokens a day after they expired."""
    async with rt.db.system() as session:
        return await PasswordResetRepository(session).delete_expired(utcnow() - timedelta(days=1))
