"""Lean dispatch for the hottest requests of declared routes.

A `FastRoute` is the twin of a route declared on a router: the same method and path, the same
Access policy object, and an endpoint that does the same work without FastAPI's route
matching and dependency machinery (which cost more CPU than the work itself for a one-point
ingest request). The declared route stays what OpenAPI documents and what answers every
request the twin does not take (`takes` decides from the headers, before the body is read).
`check_twins` refuses to build an app whose fast route has no declared twin, or whose twin
is guarded by another policy.

A path is exact (`/telemetry`: one dictionary look-up) or holds one parameter segment
(`/tenants/{id}/stats`: matched by its fixed head and tail, the segment between them without
`/`, as Starlette's `{id}` matches). The route's `convert` turns the segment into the value the
Access policy is called with (`access(request, id=value)`), by the same validation FastAPI
applies to the declared parameter; a segment it refuses (a `ValueError`, which pydantic's
validation error is) leaves the request to the declared route, which answers the error.

`FastRoutes` sits in the middleware stack inside the body guard (so the body limits and read
timeout apply) and answers through the app's own exception handlers, so an error is the same
problem-details answer the declared route would give; anything those handlers do not cover
reaches the app's catch-all like any other request's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_ROUTE_KEY = "iiot.fast_route"


def every_request(request: Request) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class FastRoute:
    method: str
    path: str  # as declared on its router (API routes: below the API prefix)
    # The declared route's Access policy (the very object), called first (with the path
    # parameter, if any, as a keyword): its result is the endpoint's second argument.
    access: Callable[..., Awaitable[Any]]
    endpoint: Callable[[Request, Any], Awaitable[Response]]
    # Whether this request is one the lean path serves (from the headers only).
    takes: Callable[[Request], bool] = every_request
    # For a path with a `{name}` segment: the parameter's value from the segment's text.
    convert: Callable[[str], Any] | None = None


class _Template(NamedTuple):
    head: str  # the full path up to the parameter segment
    tail: str  # the path after it
    name: str
    route: FastRoute


def _template(full_path: str, route: FastRoute) -> _Template | None:
    """The head, parameter name and tail of a path with one `{name}` segment; None if exact."""
    start = full_path.find("{")
    if start < 0:
        return None
    end = full_path.index("}", start)
    head, name, tail = full_path[:start], full_path[start + 1 : end], full_path[end + 1 :]
    if not head.endswith("/") or "{" in tail or (tail and not tail.startswith("/")):
        raise RuntimeError(f"fast route {full_path}: one whole `{{name}}` segment at most")
    if route.convert is None:
        raise RuntimeError(f"fast route {full_path}: a path parameter needs `convert`")
    return _Template(head, tail, name, route)


def _segment(path: str, t: _Template) -> str | None:
    """The parameter segment of `path` if it matches the template's head and tail."""
    if len(path) <= len(t.head) + len(t.tail):
        return None
    if not (path.startswith(t.head) and path.endswith(t.tail)):
        return None
    segment = path[len(t.head) : len(path) - len(t.tail)]
    return None if "/" in segment else segment


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
        self.routes: dict[tuple[str, str], FastRoute] = {}
        self.templates: dict[str, list[_Template]] = {}
        for r in routes:
            template = _template(prefix + r.path, r)
            if template is None:
                self.routes[(r.method, prefix + r.path)] = r
            else:
                self.templates.setdefault(r.method, []).append(template)
        # The app's handlers but its catch-all, which stays outside (as FastAPI places it).
        own = {k: v for k, v in handlers.items() if k not in (500, Exception)}
        self._answer = ExceptionMiddleware(self._serve, handlers=own)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._match(scope)
            if found is not None:
                route, texts, params = found
                request = Request(scope, receive)
                if route.takes(request):
                    if texts:
                        scope["path_params"] = texts  # as Starlette's routing would set them
                    scope[_ROUTE_KEY] = (route, request, params)
                    try:
                        await self._answer(scope, receive, send)
                    finally:
                        # Only the route stays: the request holds the scope, so leaving it in
                        # the scope would make a reference cycle of every request's objects,
                        # which only the garbage collector frees (a pause of tens of ms per
                        # collection: see `iiot.heap`).
                        scope[_ROUTE_KEY] = route
                    return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[FastRoute, dict[str, str], dict[str, Any]] | None:
        """The fast route of this request, and its path parameter's text and value, if any."""
        method, path = scope["method"], scope["path"]
        route = self.routes.get((method, path))
        if route is not None:
            return route, {}, {}
        for t in self.templates.get(method, ()):
            segment = _segment(path, t)
            if segment is None:
                continue
            assert t.route.convert is not None
            try:
                value = t.route.convert(segment)
            except ValueError:
                return None  # the declared route answers the invalid parameter
            return t.route, {t.name: segment}, {t.name: value}
        return None

    @staticmethod
    async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
        route: FastRoute
        request: Request
        params: dict[str, Any]
        route, request, params = scope[_ROUTE_KEY]
        caller = await route.access(request, **params)
        response = await route.endpoint(request, caller)
        await response(scope, receive, send)


def check_twins(
    fast: Iterable[FastRoute], prefix: str, declared: Mapping[tuple[str, str], tuple[Any, ...]]
) -> None:
    """Every fast route must shadow a declared route (method, full path) whose only Access
    policy is the fast route's `access`, and a parameter route must not shadow another declared
    route of the same method whose segment is fixed (`/tenants/me/stats` under
    `/tenants/{id}/stats`); `declared` maps each route to its policies."""
    for route in fast:
        key = (route.method, prefix + route.path)
        policies = declared.get(key)
        if policies is None:
            raise RuntimeError(f"fast route {key} has no declared route")
        template = _template(key[1], route)
        if template is not None:
            for method, path in declared:
                if method == route.method and path != key[1]:
                    segment = _segment(path, template)
                    if segment is not None and "{" not in segment:
                        raise RuntimeError(f"fast route {key} shadows ({method}, {path})")
        if len(policies) != 1 or policies[0] is not route.access:
            raise RuntimeError(
                f"fast route {key} must use the declared route's Access policy {policies}"
            )
