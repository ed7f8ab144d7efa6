"""Lean dispatch for the hottest requests of declared routes.

A `FastRoute` is the twin of a route declared on a router: the same method and path, the same
Access policy object, and an endpoint that does the same work without FastAPI's route
matching and dependency machinery (which cost more CPU than the work itself for a one-point
ingest request). The declared route stays what OpenAPI documents and what answers every
request the twin does not take (`takes` decides from the headers, before the body is read).
`check_twins` refuses to build an app whose fast route has no declared twin, or whose twin
is guarded by another policy.

`FastRoutes` sits in the middleware stack inside the body guard (so the body limits and read
timeout apply) and answers through the app's own exception handlers, so an error is the same
problem-details answer the declared route would give; anything those handlers do not cover
reaches the app's catch-all like any other request's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_ROUTE_KEY = "iiot.fast_route"


@dataclass(frozen=True, slots=True)
class FastRoute:
    method: str
    path: str  # as declared on its router (API routes: below the API prefix)
    # The declared route's Access policy (the very object), called first: its result is the
    # endpoint's second argument.
    access: Callable[[Request], Awaitable[Any]]
    endpoint: Callable[[Request, Any], Awaitable[Response]]
    # Whether this request is one the lean path serves (from the headers only).
    takes: Callable[[Request], bool]


class FastRoutes:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Iterable[FastRoute],
        prefix: str,
        handlers: Mapping[Any, Any],
    ) -> None:
        self.app = app
        self.routes = {(r.method, prefix + r.path): r for r in routes}
        # The app's handlers but its catch-all, which stays outside (as FastAPI places it).
        own = {k: v for k, v in handlers.items() if k not in (500, Exception)}
        self._answer = ExceptionMiddleware(self._serve, handlers=own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get((scope["method"], scope["path"]))
            if route is not None:
                request = Request(scope, receive)
                if route.takes(request):
                    scope[_ROUTE_KEY] = (route, request)
                    await self._answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
        route: FastRoute
        request: Request
        route, request = scope[_ROUTE_KEY]
        caller = await route.access(request)
        response = await route.endpoint(request, caller)
        await response(scope, receive, send)


def check_twins(
    fast: Iterable[FastRoute], prefix: str, declared: Mapping[tuple[str, str], tuple[Any, ...]]
) -> None:
    """Every fast route must shadow a declared route (method, full path) whose only Access
    policy is the fast route's `access`; `declared` maps each route to its policies."""
    for route in fast:
        key = (route.method, prefix + route.path)
        policies = declared.get(key)
        if policies is None:
            raise RuntimeError(f"fast route {key} has no declared route")
        if len(policies) != 1 or policies[0] is not route.access:
            raise RuntimeError(
                f"fast route {key} must use the declared route's Access policy {policies}"
            )
