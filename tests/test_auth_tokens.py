"""Access tokens: only a well-formed, unexpired, correctly signed access token of this issuer and
audience is accepted. Everything else is 401 problem+json with a WWW-Authenticate challenge."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from iiot.runtime import Runtime
from tests.fixtures.factories import PASSWORD, Factory, World

ME = "/api/v1/auth/me"


def _claims(world: World, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    admin = world.a["admin"]
    claims: dict[str, Any] = {
        "sub": str(admin.user_id),
        "tid": str(world.tenant_a.id),
        "iss": "iiot",
        "aud": "iiot-api",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not _DROP}


_DROP = object()


def _secret(runtime: Runtime) -> str:
    return runtime.settings.resolved_jwt_secret()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, default=str).encode())


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers={"Authorization": f"Bearer {token}"})


def _assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert body["code"] == "unauthorized"
    assert body["status"] == 401


async def test_a_valid_token_is_accepted(world: World, runtime: Runtime) -> None:
    """The control case: the forged tokens below differ from this one in one thing only."""
    token = jwt.encode(_claims(world), _secret(runtime), algorithm="HS256")
    r = await _me(world.anonymous, token)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == world.a["admin"].email


async def test_expired_token(world: World, runtime: Runtime) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    token = jwt.encode(
        _claims(world, iat=past - timedelta(minutes=15), exp=past), _secret(runtime), "HS256"
    )
    r = await _me(world.anonymous, token)
    _assert_refused(r)
    assert r.json()["detail"] == "access token expired"


async def test_a_token_seen_before_is_refused_once_it_expires(
    world: World, runtime: Runtime
) -> None:
    """Verified tokens are remembered per codec; a remembered one still expires on time."""
    exp = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    token = jwt.encode(_claims(world, exp=exp), _secret(runtime), "HS256")
    assert (await _me(world.anonymous, token)).status_code == 200
    assert runtime.tokens.decode_access(token).expires_at == exp  # remembered: same claims
    await asyncio.sleep(max(0.0, (exp - datetime.now(UTC)).total_seconds()) + 0.2)
    for _ in range(2):
        r = await _me(world.anonymous, token)
        _assert_refused(r)
        assert r.json()["detail"] == "access token expired"


async def test_a_remembered_token_does_not_vouch_for_an_altered_copy(
    world: World, runtime: Runtime
) -> None:
    token = jwt.encode(_claims(world), _secret(runtime), "HS256")
    assert (await _me(world.anonymous, token)).status_code == 200
    header, payload, signature = token.split(".")
    forged = _json_segment({**_claims(world), "sub": str(world.a["viewer"].user_id)})
    _assert_refused(await _me(world.anonymous, f"{header}.{forged}.{signature}"))


def _label(value: Any) -> str:
    """A stable test id (no random or time values): parallel workers collect the same tests."""
    if value is _DROP:
        return "<none>"
    if isinstance(value, datetime):
        return "future"
    if isinstance(value, str) and len(value) == 36:
        return "unknown-uuid"
    return str(value)


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-api"},
        {"aud": _DROP},
        {"iss": "someone-else"},
        {"iss": _DROP},
        {"jti": _DROP},
        {"sub": _DROP},
        {"exp": _DROP},
        {"typ": "refresh"},
        {"typ": _DROP},
        {"sub": "not-a-uuid"},
        {"sub": 12345},
        {"tid": "not-a-uuid"},
        {"sub": str(uuid.uuid4())},  # no such user
        {"iat": datetime.now(UTC) + timedelta(hours=1), "exp": _DROP},
    ],
    ids=lambda c: ",".join(f"{k}={_label(v)}" for k, v in c.items()),
)
async def test_wrong_claims(world: World, runtime: Runtime, changes: dict[str, Any]) -> None:
    token = jwt.encode(_claims(world, **changes), _secret(runtime), algorithm="HS256")
    _assert_refused(await _me(world.anonymous, token))


async def test_wrong_secret(world: World) -> None:
    token = jwt.encode(_claims(world), "another-secret-" + "y" * 40, algorithm="HS256")
    _assert_refused(await _me(world.anonymous, token))


@pytest.mark.parametrize("where", ["header", "payload", "signature"])
async def test_tampered_token(world: World, where: str) -> None:
    header, payload, signature = world.a["viewer"].token.split(".")
    if where == "payload":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["sub"] = str(world.a["admin"].user_id)  # promote oneself to another user
        payload = _json_segment(claims)
    elif where == "header":
        header = _json_segment({"alg": "HS256", "typ": "JWT", "kid": "x"})
    else:
        signature = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    _assert_refused(await _me(world.anonymous, f"{header}.{payload}.{signature}"))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none(world: World, alg: str) -> None:
    unsigned = f"{_json_segment({'alg': alg, 'typ': 'JWT'})}.{_json_segment(_claims(world))}."
    _assert_refused(await _me(world.anonymous, unsigned))


async def test_alg_none_keeping_a_valid_signature(world: World) -> None:
    """A real token whose header is swapped to `none`: the signature no longer covers it."""
    _, payload, signature = world.a["admin"].token.split(".")
    header = _json_segment({"alg": "none", "typ": "JWT"})
    _assert_refused(await _me(world.anonymous, f"{header}.{payload}.{signature}"))


@pytest.mark.filterwarnings("ignore:The HMAC key is")
@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_other_hmac_algorithm_with_the_right_secret(
    world: World, runtime: Runtime, alg: str
) -> None:
    """Only the configured algorithm is accepted, even when signed with the real secret."""
    token = jwt.encode(_claims(world), _secret(runtime), algorithm=alg)
    _assert_refused(await _me(world.anonymous, token))


async def test_refresh_token_used_as_access_token(world: World, factory: Factory) -> None:
    login = await factory.client().post(
        "/api/v1/auth/login", json={"email": world.a["admin"].email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    _assert_refused(await _me(world.anonymous, login.json()["refresh_token"]))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer garbage",
        "Bearer " + "x" * 5000,
        "Bearer a.b.c",
        "Bearer ...",
        "Bearer",
        "Bearer    ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "bearer",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0",
    ],
)
async def test_garbage_authorization(world: World, header: str) -> None:
    _assert_refused(await world.anonymous.get(ME, headers={"Authorization": header}))


async def test_no_token(world: World) -> None:
    _assert_refused(await world.anonymous.get(ME))


async def test_token_of_a_disabled_user(world: World, runtime: Runtime) -> None:
    from iiot.models.users import User

    actor = world.a["operator"]
    async with runtime.db.system() as session:
        user = await session.get(User, actor.user_id)
        assert user is not None
        user.status = "disabled"
    _assert_refused(await actor.client.get(ME))


async def test_issued_token_carries_the_documented_claims(world: World, runtime: Runtime) -> None:
    login = await world.anonymous.post(
        "/api/v1/auth/login", json={"email": world.a["developer"].email, "password": PASSWORD}
    )
    token = login.json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == runtime.settings.jwt_algorithm
    claims = jwt.decode(token, _secret(runtime), algorithms=["HS256"], audience="iiot-api")
    assert set(claims) >= {"sub", "tid", "iss", "aud", "exp", "iat", "jti"}
    assert claims["sub"] == str(world.a["developer"].user_id)
    assert claims["tid"] == str(world.tenant_a.id)
    assert claims["iss"] == "iiot"
    assert claims["exp"] - claims["iat"] == 900
    assert login.json()["expires_in"] == 900
