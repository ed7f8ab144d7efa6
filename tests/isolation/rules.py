"""Isolation providers for API keys, rules and alerts: tenant B's objects."""

from __future__ import annotations

from iiot.apikeys import service as apikey_service
from iiot.apikeys.schemas import ApiKeyCreate
from iiot.tenancy.context import system_context
from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider


@provider("/api/v1/api-keys/{id}")
async def other_api_key(factory: Factory, world: World) -> dict[str, str]:
    ctx = system_context(world.tenant_b.id)
    async with factory.rt.db.tenant(ctx) as session:
        created = await apikey_service.create_key(
            session, ctx, ApiKeyCreate(name="beta-integration-key", scopes=["read"])
        )
    world.b_markers += ["beta-integration-key", created.prefix]
    return {"id": str(created.id)}
