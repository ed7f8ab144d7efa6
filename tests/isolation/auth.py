"""Valid bodies for the account routes the walk calls as each member of tenant A."""

from __future__ import annotations

from tests.fixtures.factories import PASSWORD, Factory, World
from tests.isolation.registry import request_body


@request_body("POST", "/api/v1/auth/password")
async def _change_password(
    factory: Factory, world: World, ids: dict[str, str]
) -> dict[str, object]:
    # Every user of the world has the same password; each caller is another user.
    return {"current_password": PASSWORD, "new_password": "another-horse-battery-staple"}
