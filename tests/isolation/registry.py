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

A `PathTenant` route whose only path parameter is `{id}` needs no provider: the walk passes
tenant B's id. A `PathTenant` route with more parameters (`/tenants/{id}/users/{user_id}`) needs
one for the others; the walk still sets `{id}` to tenant B's id.

A write route whose `{}` body is refused by validation before the object is looked up can
register a valid body with `@request_body(method, path)`.
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


BodyBuilder = Callable[[Factory, World, dict[str, str]], Awaitable[dict[str, object]]]

_bodies: dict[tuple[str, str], BodyBuilder] = {}


def request_body(method: str, route_path: str) -> Callable[[BodyBuilder], BodyBuilder]:
    """Register a valid request body for a write route whose `{}` fails validation first.

    The walk sends `{}`; a route that answers 422 to it (before looking the object up) is
    called again with this body, built from tenant B's path parameters, and must answer 404.
    Routes without one get a body generated from their OpenAPI schema.
    """
    key = (method.upper(), route_path)

    def register(fn: BodyBuilder) -> BodyBuilder:
        if key in _bodies and _bodies[key] is not fn:
            raise ValueError(f"{method} {route_path} already has a request body")
        _bodies[key] = fn
        return fn

    return register


def body_for(method: str, route_path: str) -> BodyBuilder | None:
    return _bodies.get((method.upper(), route_path))
