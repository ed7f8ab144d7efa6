"""The application is exactly the modules `iiot.app.MODULES` lists.

Every domain's `module.py` is listed, every router is mounted through a module, and the
telemetry→rules connection exists only because the rules module is in the list.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter
from fastapi.routing import APIRoute

import iiot
from iiot.app import API_PREFIX, MODULES, create_app
from iiot.modules import Module, Wiring
from iiot.rules.module import MODULE as RULES
from iiot.runtime import Runtime
from tests.fixtures.factories import Factory, World


def _module_descriptions() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for info in pkgutil.walk_packages(iiot.__path__, "iiot."):
        if info.name.endswith(".module"):
            found[info.name] = importlib.import_module(info.name).MODULE
    return found


def test_every_module_description_is_listed_in_the_app() -> None:
    described = _module_descriptions()
    assert described, "no module.py found"
    missing = [name for name, module in described.items() if module not in MODULES]
    assert missing == [], f"module.py files not listed in iiot.app.MODULES: {missing}"


def test_every_router_is_mounted_through_a_module() -> None:
    wiring = Wiring.of(MODULES)
    mounted = {id(r) for r in wiring.routers + wiring.api_routers}
    stray = []
    for info in pkgutil.walk_packages(iiot.__path__, "iiot."):
        if "migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, APIRouter) and id(value) not in mounted:
                stray.append(f"{info.name}.{name}")
    assert stray == [], f"routers no module mounts: {stray}"


def test_api_routers_are_declared_under_the_api_prefix() -> None:
    """The application mounts routes as declared: an API router carries the prefix itself."""
    elsewhere = [
        f"{module.name}: {router.prefix!r}"
        for module in MODULES
        for router in module.api_routers
        if router.prefix != API_PREFIX and not router.prefix.startswith(API_PREFIX + "/")
    ]
    assert elsewhere == []
    app = create_app(runtime=None)
    paths = {str(route.path) for route in app.routes if isinstance(route, APIRoute)}
    assert f"{API_PREFIX}/telemetry" in paths
    assert not any(p.startswith(API_PREFIX + API_PREFIX) for p in paths)


def test_jobs_and_listeners_come_from_the_listed_modules() -> None:
    wiring = Wiring.of(MODULES)
    assert [j.name for j in wiring.jobs] == [j.name for m in MODULES for j in m.jobs]
    without_rules = Wiring.of([m for m in MODULES if m is not RULES])
    assert "rules.device_offline" in {j.name for j in wiring.jobs}
    assert "rules.device_offline" not in {j.name for j in without_rules.jobs}
    from iiot.rules import engine as rules_engine

    assert rules_engine.on_telemetry_committed in wiring.telemetry_listeners
    assert rules_engine.on_telemetry_committed not in without_rules.telemetry_listeners


async def test_telemetry_reaches_the_rules_engine_only_through_the_rules_module(
    factory: Factory, world: World, runtime: Runtime
) -> None:
    from tests.rules.helpers import alerts, make_device, make_rule, settle

    dev = await make_device(world.a["developer"])
    await make_rule(world.a["developer"])
    # A process built without the rules module: the same ingest opens no alert.
    bare = Runtime.build(runtime.settings, runtime.db.url, [m for m in MODULES if m is not RULES])
    bare_factory = Factory(rt=bare, app=create_app(runtime=bare))
    try:
        client = bare_factory.client(headers=world.a["operator"].headers)
        r = await client.post(
            "/api/v1/telemetry", json={"device_id": dev["id"], "telemetry": {"temperature": 99}}
        )
        assert r.status_code == 201, r.text
        assert await alerts(world.a["operator"]) == []
    finally:
        await bare_factory.aclose()
        await bare.db.dispose()
    # The application's own list: the next hot reading opens the alert.
    r = await world.a["operator"].client.post(
        "/api/v1/telemetry", json={"device_id": dev["id"], "telemetry": {"temperature": 98}}
    )
    assert r.status_code == 201, r.text
    await settle(runtime)
    assert len(await alerts(world.a["operator"])) == 1


def test_apps_of_the_same_routes_share_one_openapi_document() -> None:
    """The document is built once per set of documented routes; an app with other routes gets
    its own. (Small apps: a full document costs about a second to build.)"""
    by_name = {m.name: m for m in MODULES}
    audit = (by_name["platform"], by_name["audit"])
    first, second = create_app(modules=audit), create_app(modules=audit)
    assert second.openapi() is first.openapi()
    assert any(p.endswith("/audit") for p in first.openapi()["paths"])
    other = create_app(modules=(by_name["platform"], by_name["apikeys"]))
    assert other.openapi() is not first.openapi()
    assert not any(p.endswith("/audit") for p in other.openapi()["paths"])
    assert any(p.startswith("/api/v1/api-keys") for p in other.openapi()["paths"])
