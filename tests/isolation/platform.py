"""Isolation providers for the platform's own tenant routes (members of a tenant)."""

from __future__ import annotations

from tests.fixtures.factories import Factory, World
from tests.isolation.registry import provider


@provider(
    "/api/v1/tenants/{id}/users/{user_id}",
    "/api/v1/tenants/{id}/users/{user_id}/role",
)
async def other_member(factory: Factory, world: World) -> dict[str, str]:
    """A member of tenant B only (not tenant B's admin, so removal rules don't interfere)."""
    member = await factory.member(world.tenant_b, "viewer", full_name="Bertha Bystander")
    world.b_markers.extend([member.email, "Bertha Bystander"])
    return {"user_id": str(member.user_id)}
