"""API keys: created by tenant admins, shown once, stored as digests, revocable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from iiot.apikeys.repository import ApiKeyRepository
from iiot.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut
from iiot.audit.service import record
from iiot.db.session import TenantSession
from iiot.errors import NotFound, ValidationFailed
from iiot.identity.credentials import API_KEY_PREFIX
from iiot.identity.tokens import digest, new_secret
from iiot.models.apikeys import ApiKey
from iiot.outputs import from_row
from iiot.tenancy.context import TenantContext

# Characters of the secret kept in clear so people can tell their keys apart.
_SHOWN_PREFIX_LENGTH = 10


async def list_keys(
    session: TenantSession, ctx: TenantContext, *, limit: int, offset: int
) -> ApiKeyList:
    rows, total = await ApiKeyRepository(session, ctx).list(limit=limit, offset=offset)
    return ApiKeyList(api_keys=[ApiKeyOut.model_validate(k) for k in rows], total=total)


async def create_key(
    session: TenantSession, ctx: TenantContext, data: ApiKeyCreate
) -> ApiKeyCreated:
    if data.expires_at is not None:
        if data.expires_at.tzinfo is None:
            raise ValidationFailed("expires_at needs a time zone")
        if data.expires_at <= datetime.now(UTC):
            raise ValidationFailed("expires_at must be in the future")
    secret = new_secret(API_KEY_PREFIX)
    key = await ApiKeyRepository(session, ctx).add(
        ApiKey(
            name=data.name,
            prefix=secret[:_SHOWN_PREFIX_LENGTH],
            token_hash=digest(secret),
            scopes=sorted(set(data.scopes)),
            created_by=ctx.user_id,
            created_at=datetime.now(UTC),
            expires_at=data.expires_at,
        )
    )
    await record(
        session,
        ctx,
        "api_key.created",
        target_type="api_key",
        target_id=key.id,
        after={"name": key.name, "scopes": key.scopes, "prefix": key.prefix},
    )
    return from_row(ApiKeyCreated, key, key=secret)


async def revoke_key(session: TenantSession, ctx: TenantContext, key_id: uuid.UUID) -> None:
    repo = ApiKeyRepository(session, ctx)
    key = await repo.get(key_id, for_update=True)
    if key is None or key.revoked_at is not None:
        raise NotFound("API key not found")
    key.revoked_at = datetime.now(UTC)
    await session.flush()
    await record(
        session,
        ctx,
        "api_key.revoked",
        target_type="api_key",
        target_id=key.id,
        before={"name": key.name, "scopes": key.scopes},
    )
