"""Access tokens (signed JWT) and opaque secrets (refresh, invitation, device, API key tokens).

Access tokens carry `sub` (user id), `tid` (active tenant or null), `iss`, `aud`, `exp`, `iat`,
`jti` and `typ: "access"`. Only the configured algorithm is accepted, so `alg=none` and
algorithm confusion are refused. Opaque secrets are stored only as their SHA-256 digest.

A client sends the same access token with every request until it expires, so the claims of a
verified token are kept (per codec, up to `VERIFIED_CACHE_SIZE` tokens) and a token seen again
is only checked against its expiry. Being signed out is not a property of the token: callers
check the deny list on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from iiot.errors import Unauthorized

# Verified access tokens whose claims a codec keeps (cleared when full).
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    jti: str
    expires_at: datetime


class TokenCodec:
    def __init__(
        self, secret: str, *, algorithm: str, issuer: str, audience: str, ttl_seconds: int
    ) -> None:
        self._secret = secret
        self._algorithm = algorithm
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds
        # token -> (its claims, its `exp` as a Unix time)
        self._verified: dict[str, tuple[AccessClaims, float]] = {}

    def issue_access(self, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user_id),
            "tid": str(tenant_id) if tenant_id else None,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": secrets.token_hex(16),
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def decode_access(self, token: str) -> AccessClaims:
        """The claims of a valid access token; 401 for an invalid or expired one."""
        seen = self._verified.get(token)
        if seen is not None:
            if seen[1] > time.time():
                return seen[0]
            del self._verified[token]
            raise Unauthorized("access token expired", code_detail="token_expired")
        claims = self._verify_access(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (claims, claims.expires_at.timestamp())
        return claims

    def _verify_access(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["sub", "exp", "iat", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("access token expired", code_detail="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid access token") from exc
        if claims.get("typ") != "access":
            raise Unauthorized("invalid access token")
        try:
            user_id = uuid.UUID(claims["sub"])
            tid = claims.get("tid")
            tenant_id = uuid.UUID(tid) if tid else None
        except (ValueError, TypeError, AttributeError) as exc:
            raise Unauthorized("invalid access token") from exc
        return AccessClaims(
            user_id=user_id,
            tenant_id=tenant_id,
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )


def new_secret(prefix: str = "") -> str:
    """An opaque secret with 256 random bits."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
