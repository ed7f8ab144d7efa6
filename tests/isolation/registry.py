"""Registry of isolation providers: who creates tenant B's object for a route with path params.

A provider is `async def f(factory: Factory, world: World) -> dict[str, str]`. It creates the
object(s) in `world.tenant_b`, appends tenant B's distinctive strings (names, e-mails, serials)
to `world.b_markers`, and returns the values of the route's path parameters. Register it for one
or more full route paths, exactly as FastAPI spells them:

    from tests.isolation.registry import provider

    @provider("/api/v1/devices/{id}", "/api/v1/devices/{id}/credentials")
    async def other_device(factory: Factory, world: World) -> dict[str, str]:
        ...
        world.b_markers.append(device.name)
        return {"id": str(device.id)}

Routes guarded by `PathTenant` need no provider: `{id}` is tenant B's id, and any other path
parameter of such a route comes from its provider when one is registered.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable

from tests.fixtures.factories import Factory, World

Provider = Callable[[Factory, World], Awaitable[dict[str, str]]]

_providers: dict[str, Provider] = {}


def provider(*route_paths: str) -> Callable[[Provider], Provider]:
    """Register `fn` as the source of tenant B's path parameters for each of `route_paths`."""
    if not route_paths:
        raise ValueError("provider() needs at least one route path")

    def register(fn: Provider) -> Provider:
        for path in route_paths:
            if not path.startswith("/"):
                raise ValueError(f"route path must start with '/': {path!r}")
            existing = _providers.get(path)
            if existing is not None and existing is not fn:
                raise ValueError(
                    f"{path} already has provider {existing.__module__}.{existing.__qualname__}"
                )
            _providers[path] = fn
        return fn

    return register


def provider_for(route_path: str) -> Provider | None:
    """The provider registered for `route_path`, if any (call `load_providers()` first)."""
    return _providers.get(route_path)


def load_providers() -> dict[str, Provider]:
    """Import every module of this package so that their `@provider` lines run."""
    package = importlib.import_module(__package__ or "tests.isolation")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "registry":
            importlib.import_module(f"{package.__name__}.{info.name}")
    return dict(_providers)
