"""`/metrics` behind a bearer token; production never serves it unauthenticated by accident."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from iiot.runtime import Runtime
from tests.fixtures.factories import World

TOKEN = "scrape-" + "s" * 30


@contextmanager
def configured(runtime: Runtime, **values: object) -> Iterator[None]:
    original = runtime.settings
    runtime.settings = original.model_copy(update=values)
    try:
        yield
    finally:
        runtime.settings = original


async def test_a_configured_token_is_required(world: World, runtime: Runtime) -> None:
    with configured(runtime, metrics_token=TOKEN):
        assert (await world.anonymous.get("/metrics")).status_code == 401
        r = await world.anonymous.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        # A user's access token is not the metrics token.
        assert (await world.system_admin.client.get("/metrics")).status_code == 401
        r = await world.anonymous.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        assert "python_info" in r.text


@pytest.mark.parametrize(("public", "status"), [(False, 403), (True, 200)])
async def test_production_without_a_token(
    world: World, runtime: Runtime, public: bool, status: int
) -> None:
    with configured(runtime, env="production", metrics_public=public):
        assert (await world.anonymous.get("/metrics")).status_code == status
