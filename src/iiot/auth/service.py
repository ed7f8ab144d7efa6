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
from iiot.auth.repository import PasswordResetRepository
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
from iiot.identity.denylist import deny_list
from iiot.identity.memberships import MembershipView
from iiot.identity.pairs import (
    build_user_out,
    issue_pair,
    refresh_token_for_update,
    revoke_family,
    revoke_for_user,
)
from iiot.identity.passwords import verify_password
from iiot.identity.schemas import TokenPair, UserOut
from iiot.identity.tokens import AccessClaims, digest, new_secret
from iiot.models.base import utcnow
from iiot.models.users import PasswordResetToken
from iiot.quotas.ratelimit import Rate
from iiot.runtime import Runtime
from iiot.tenants.lookup import tenant as find_tenant
from iiot.users import lookup as accounts
from iiot.users.accounts import record_login, set_password

INVALID_CREDENTIALS = "invalid e-mail or password"


class LoginThrottle:
    """How many password checks a login attempt may reach; exact under concurrency.

    Every attempt takes one slot, before the password is checked, from each of:

    - `login_account_address`: the account from this client address (5 per window);
    - `login_ip`: this client address, whatever the account (20 per window);
    - `login_account`: the account from any address without a recent successful login for it
      (30 per window): it bounds a guessing attack spread over many addresses.

    Taking a slot is one atomic check-and-count, so N concurrent wrong passwords reach the
    check at most `limit` times. An attacker elsewhere can use up only the last counter, and an
    address where the account signed in successfully within `login_known_address_days` is not
    subject to it: the owner keeps signing in from their usual addresses during an attack, and
    from a new address waits at most one window after the attack stops. A success clears the
    account's counter for that address.
    """

    def __init__(self, rt: Runtime, email: str, ip: str | None) -> None:
        settings = rt.settings
        window = settings.login_failure_window_seconds
        self.rt = rt
        self.account = email.strip().lower()
        self.address = ip or "unknown"
        self.pair = Rate("login_account_address", settings.login_max_failures_per_account, window)
        self.per_ip = Rate("login_ip", settings.login_max_failures_per_ip, window)
        self.per_account = Rate(
            "login_account", settings.login_max_attempts_per_account_global, window
        )
        self.known = Rate("login_known_address", 1, settings.login_known_address_days * 86400)

    async def _known_address(self) -> bool:
        return not await self.rt.rate.has_room(self.known, self.account, self.address)

    async def admit(self) -> RateLimited | None:
        """None when the attempt may check the password (its slots are taken), else the 429."""
        limiter = self.rt.rate
        checks: list[tuple[Rate, tuple[str, ...]]] = [
            (self.pair, (self.account, self.address)),
            (self.per_ip, (self.address,)),
        ]
        if not await self._known_address():
            checks.append((self.per_account, (self.account,)))
        for rate, key in checks:
            if not await limiter.consume(rate, *key):
                return await limiter.refusal(rate, *key)
        return None

    async def succeeded(self) -> None:
        await self.rt.rate.clear(self.pair, self.account, self.address)
        await self.rt.rate.consume(self.known, self.account, self.address)


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
    throttle = LoginThrottle(rt, email, ip)
    refused = await throttle.admit()
    if refused is not None:
        return AuthOutcome(error=refused)

    user = await accounts.account_by_email(session, email)
    ok = await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password
    )
    if not ok or user is None or user.status != "active":
        await record_platform(
            session,
            "auth.login_failed",
            actor_id=user.id if user else None,
            subject=email.strip().lower()[:320],
            ip=ip,
        )
        return AuthOutcome(error=Unauthorized(INVALID_CREDENTIALS, reason="invalid_credentials"))

    memberships = await accounts.memberships(session, user.id)
    try:
        chosen = _choose_tenant(memberships, tenant_id, user.is_system_admin)
    except IIoTError as exc:
        return AuthOutcome(error=exc)
    await throttle.succeeded()
    record_login(user)
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
    row = await refresh_token_for_update(session, token)
    invalid = Unauthorized("invalid refresh token")
    if row is None:
        return AuthOutcome(error=invalid)
    if row.used_at is not None or row.revoked_at is not None:
        if row.used_at is not None:  # a spent token presented again: the family is stolen
            revoked = await revoke_family(session, row.family_id)
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
    user = await accounts.account(session, row.user_id)
    if user is None or user.status != "active":
        return AuthOutcome(error=invalid)
    memberships = await accounts.memberships(session, user.id)
    tenant_id = row.active_tenant_id
    if tenant_id is not None:
        m = next((m for m in memberships if m.tenant_id == tenant_id), None)
        if (m is None or m.status != "active") and user.is_system_admin:
            tenant_id = None  # the tenant was deleted or left: platform work goes on
        elif m is None or m.status != "active":
            await revoke_family(session, row.family_id)
            return AuthOutcome(error=invalid)
        elif m.tenant_status == "suspended" and not user.is_system_admin:
            return AuthOutcome(error=TenantSuspended("this tenant is suspended"))
    pair = await issue_pair(session, rt, user, memberships, tenant_id, family_id=row.family_id)
    return AuthOutcome(pair=pair)


async def logout(session: AsyncSession, *, token: str, ip: str | None) -> None:
    row = await refresh_token_for_update(session, token)
    if row is None:
        return
    await revoke_family(session, row.family_id)
    await record_platform(
        session, "auth.logout", actor_id=row.user_id, details={"family_id": row.family_id}, ip=ip
    )


async def switch_tenant(
    session: AsyncSession, rt: Runtime, *, user_id: uuid.UUID, tenant_id: uuid.UUID, ip: str | None
) -> TokenPair:
    user = await accounts.account(session, user_id)
    if user is None:
        raise Unauthorized("invalid access token")
    memberships = await accounts.memberships(session, user.id)
    exists = user.is_system_admin and await find_tenant(session, tenant_id) is not None
    chosen = _choose_tenant(memberships, tenant_id, user.is_system_admin, exists)
    pair = await issue_pair(session, rt, user, memberships, chosen)
    await record_platform(
        session, "auth.switch_tenant", actor_id=user.id, details={"tenant_id": chosen}, ip=ip
    )
    return pair


async def me(session: AsyncSession, *, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> UserOut:
    user = await accounts.account(session, user_id)
    if user is None:
        raise Unauthorized("invalid access token")
    return build_user_out(user, await accounts.memberships(session, user_id), tenant_id)


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
    # Wrong current passwords are throttled like logins (per account), so a stolen access
    # token cannot be used to guess the password.
    rate = Rate(
        "password_change",
        rt.settings.login_max_failures_per_account,
        rt.settings.login_failure_window_seconds,
    )
    key = str(user_id)
    if not await rt.rate.has_room(rate, key):
        return AuthOutcome(error=await rt.rate.refusal(rate, key))
    user = await accounts.account_for_update(session, user_id)
    if user is None or user.status != "active":
        return AuthOutcome(error=Unauthorized("invalid access token"))
    ok = await anyio.to_thread.run_sync(verify_password, user.password_hash, current_password)
    if not ok:
        await rt.rate.consume(rate, key)
        await record_platform(
            session, "auth.password_change_failed", actor_id=user.id, subject=user.email, ip=ip
        )
        return AuthOutcome(
            error=Forbidden("the current password is wrong", reason="wrong_password")
        )
    await set_password(user, new_password)
    revoked = await revoke_for_user(session, user.id)
    await PasswordResetRepository(session).spend_open(user.id)
    memberships = await accounts.memberships(session, user.id)
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
    await rt.rate.clear(rate, key)
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
    for rate, key in (
        (Rate("password_reset_account", RESET_MAX_PER_ACCOUNT, RESET_WINDOW_SECONDS), normalised),
        (Rate("password_reset_ip", RESET_MAX_PER_IP, RESET_WINDOW_SECONDS), ip or "unknown"),
    ):
        if not await rt.rate.consume(rate, key):
            return False
    user = await accounts.account_by_email(session, normalised)
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
    user = await accounts.account_for_update(session, row.user_id)
    if user is None or user.status != "active":
        raise invalid
    await set_password(user, password)
    await resets.spend_open(user.id)
    revoked = await revoke_for_user(session, user.id)
    await record_platform(
        session,
        "auth.password_reset",
        actor_id=user.id,
        subject=user.email,
        details={"revoked_refresh_tokens": revoked},
        ip=ip,
    )
    # The owner proved control of the mailbox: guesses by others no longer hold the account.
    throttle = LoginThrottle(rt, user.email, ip)
    await rt.rate.clear(throttle.per_account, throttle.account)


async def purge_expired_reset_tokens(rt: Runtime) -> int:
    """Job: forget password-reset tokens a day after they expired."""
    async with rt.db.system() as session:
        return await PasswordResetRepository(session).delete_expired(utcnow() - timedelta(days=1))
