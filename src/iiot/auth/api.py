"""Authentication routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from iiot import mail
from iiot.auth import service
from iiot.auth.schemas import (
    Accepted,
    CookieSession,
    LoginRequest,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    SwitchTenantRequest,
)
from iiot.callers.access import AnyUser, Public
from iiot.callers.resolver import bearer_token
from iiot.errors import (
    BadRequest,
    Forbidden,
    IIoTError,
    NotAMember,
    NotFound,
    RateLimited,
    TenantSuspended,
    Unauthorized,
    ValidationFailed,
    problem_responses,
)
from iiot.http.routing import API_PREFIX, IIoTRoute
from iiot.identity.schemas import TokenPair, UserOut
from iiot.identity.tokens import AccessClaims
from iiot.runtime import client_ip, get_runtime
from iiot.tenancy.principals import UserPrincipal

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"], route_class=IIoTRoute)

CurrentUser = Annotated[UserPrincipal, Depends(AnyUser())]

# Cookie mode (the web UI): the refresh token is set as an HttpOnly, SameSite=Strict cookie
# sent only to the auth routes, and left out of the JSON body, so that script on the page
# never sees it. Without `?cookie=true` (or, for refresh and logout, without a body) the JSON
# API is unchanged.
REFRESH_COOKIE = "iiot_refresh"
COOKIE_PATH = "/api/v1/auth"
CookieMode = Annotated[
    bool,
    Query(
        alias="cookie",
        description="Cookie mode: the refresh token is set as an HttpOnly cookie, not returned",
    ),
]


def _session(request: Request, response: Response, pair: TokenPair) -> CookieSession:
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=get_runtime(request).settings.refresh_token_ttl_seconds,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return CookieSession(
        access_token=pair.access_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        user=pair.user,
    )


def _clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _presented_refresh(body: RefreshRequest | None, request: Request) -> str | None:
    if body is not None:
        return body.refresh_token
    token = request.cookies.get(REFRESH_COOKIE)
    return token if token and len(token) <= 512 else None


@router.post(
    "/login",
    dependencies=[Depends(Public())],
    responses=problem_responses(Unauthorized, Forbidden, NotFound, RateLimited, ValidationFailed),
)
async def login(
    body: LoginRequest, request: Request, response: Response, cookie: CookieMode = False
) -> TokenPair | CookieSession:
    """Sign in with e-mail and password; returns an access and a refresh token.

    With `?cookie=true` the refresh token is set as an HttpOnly cookie instead of returned."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        outcome = await service.login(
            session,
            rt,
            email=body.email,
            password=body.password,
            tenant_id=body.tenant_id,
            ip=client_ip(request),
        )
    pair = outcome.unwrap()
    return _session(request, response, pair) if cookie else pair


@router.post(
    "/refresh",
    dependencies=[Depends(Public())],
    responses=problem_responses(Unauthorized, TenantSuspended, ValidationFailed),
)
async def refresh(
    request: Request, response: Response, body: RefreshRequest | None = None
) -> TokenPair | CookieSession:
    """Exchange a refresh token for a new pair; the old one is spent.

    Without a body the refresh token is read from the cookie set in cookie mode, and the new
    one replaces it there."""
    rt = get_runtime(request)
    token = _presented_refresh(body, request)
    if token is None:
        raise Unauthorized("no refresh token: sign in")
    async with rt.db.system() as session:
        outcome = await service.refresh(session, rt, token=token, ip=client_ip(request))
    if body is None and outcome.pair is None:
        _clear_cookie(request, response)
        if outcome.error is not None:
            # The cookie is cleared even though the answer is an error.
            outcome.error.headers = {
                **(outcome.error.headers or {}),
                "set-cookie": response.headers["set-cookie"],
            }
    pair = outcome.unwrap()
    return pair if body is not None else _session(request, response, pair)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(Public())],
    responses=problem_responses(ValidationFailed),
)
async def logout(request: Request, body: RefreshRequest | None = None) -> Response:
    """Revoke a refresh token and its whole family (without a body: the cookie's, which is
    cleared), and stop the access token sent with it."""
    rt = get_runtime(request)
    token = _presented_refresh(body, request)
    if token is not None:
        async with rt.db.system() as session:
            await service.logout(session, token=token, ip=client_ip(request))
    await service.sign_out_access_token(rt, _presented_access_claims(request))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if body is None:
        _clear_cookie(request, response)
    return response


def _presented_access_claims(request: Request) -> AccessClaims | None:
    """The claims of a valid user access token sent with the request, if any."""
    try:
        token = bearer_token(request)
        return get_runtime(request).tokens.decode_access(token) if token else None
    except IIoTError:
        return None


@router.post(
    "/password",
    responses=problem_responses(Unauthorized, Forbidden, RateLimited, ValidationFailed),
)
async def change_password(body: PasswordChange, user: CurrentUser, request: Request) -> TokenPair:
    """Change one's password (the current one is required). Every refresh token of the
    account is revoked and this access token stopped; the answer is a new pair for this
    session."""
    rt = get_runtime(request)
    claims = _presented_access_claims(request)
    assert claims is not None  # AnyUser verified it
    async with rt.db.system() as session:
        outcome = await service.change_password(
            session,
            rt,
            user_id=user.user_id,
            claims=claims,
            current_password=body.current_password,
            new_password=body.new_password,
            ip=client_ip(request),
        )
    pair = outcome.unwrap()
    await service.sign_out_access_token(rt, claims)
    return pair


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(Public())],
    responses=problem_responses(ValidationFailed),
)
async def request_password_reset(body: PasswordResetRequest, request: Request) -> Accepted:
    """E-mail a single-use reset link (valid one hour) if the account exists. Always 202:
    the answer does not tell whether an account exists."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        queued = await service.request_password_reset(
            session, rt, email=body.email, ip=client_ip(request)
        )
    if queued:
        mail.deliver_soon(rt)
    return Accepted(detail="if an account exists for this e-mail, a reset link has been sent")


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(Public())],
    responses=problem_responses(BadRequest, ValidationFailed),
)
async def confirm_password_reset(body: PasswordResetConfirm, request: Request) -> Response:
    """Set a new password with the e-mailed token (once); every session of the account ends."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        await service.confirm_password_reset(
            session, rt, token=body.token, password=body.password, ip=client_ip(request)
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses=problem_responses(Unauthorized))
async def me(user: CurrentUser, request: Request) -> UserOut:
    """The signed-in user, with the active tenant and all memberships."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        return await service.me(session, user_id=user.user_id, tenant_id=user.token_tenant_id)


@router.post(
    "/switch-tenant",
    responses=problem_responses(Unauthorized, NotFound, NotAMember, ValidationFailed),
)
async def switch_tenant(
    body: SwitchTenantRequest,
    user: CurrentUser,
    request: Request,
    response: Response,
    cookie: CookieMode = False,
) -> TokenPair | CookieSession:
    """A new token pair whose active tenant is another of the user's memberships."""
    rt = get_runtime(request)
    async with rt.db.system() as session:
        pair = await service.switch_tenant(
            session, rt, user_id=user.user_id, tenant_id=body.tenant_id, ip=client_ip(request)
        )
    return _session(request, response, pair) if cookie else pair
