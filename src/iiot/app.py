"""The ASGI application: the modules iiot is made of, the one problem-details error handler,
start-up and shutdown.

`MODULES` is the whole system. Each entry is a domain's `module.py`, which lists that domain's
routers, periodic jobs, start-up and shutdown hooks, usage providers and event listeners;
nothing is part of the application unless it is listed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from iiot import __version__, heap
from iiot.alerts.module import MODULE as ALERTS
from iiot.analytics.module import MODULE as ANALYTICS
from iiot.apikeys.module import MODULE as APIKEYS
from iiot.audit.module import MODULE as AUDIT
from iiot.auth.module import MODULE as AUTH
from iiot.callers.access import SECURITY_SCHEMES, Access, route_policies
from iiot.config import Settings, get_settings
from iiot.connectivity.module import MODULE as CONNECTIVITY
from iiot.db.outage import RETRY_AFTER_SECONDS, is_database_unavailable, outage_log
from iiot.devices.module import MODULE as DEVICES
from iiot.errors import PROBLEM_CONTENT_TYPE, IIoTError
from iiot.escalation.module import MODULE as ESCALATION
from iiot.http.fast_routes import FastRoutes, check_twins
from iiot.http.limits import RequestBodyGuard
from iiot.http.routing import API_PREFIX, InvalidText
from iiot.jobs import scheduler
from iiot.metering.module import MODULE as METERING
from iiot.modules import Module, Wiring
from iiot.mqtt.module import MODULE as MQTT
from iiot.outbox.module import MODULE as OUTBOX
from iiot.platform.module import MODULE as PLATFORM
from iiot.quotas.ratelimit import claim_single_process
from iiot.rules.module import MODULE as RULES
from iiot.runtime import Runtime
from iiot.stream.module import MODULE as STREAM
from iiot.telemetry.module import MODULE as TELEMETRY
from iiot.telemetry.schemas import MAX_BODY_BYTES as MAX_INGEST_BODY_BYTES
from iiot.tenants.module import MODULE as TENANTS
from iiot.users.module import MODULE as USERS
from iiot.web.module import CLIENT_ROUTES
from iiot.web.module import MODULE as WEB

log = logging.getLogger(__name__)

# Every request body is capped; the telemetry ingest route sets its own, larger cap.
MAX_REQUEST_BODY_BYTES = 256 * 1024

# Everything `iiot serve` runs. Routers are mounted and start-up hooks run in this order;
# shutdown hooks run in the reverse order, so a module stops before those it builds on: the
# device transports drain first (their last acknowledged messages reach the rules engine),
# the rules engine drains before metering flushes and before the outbox waits for its last
# messages.
MODULES: tuple[Module, ...] = (
    PLATFORM,
    WEB,
    OUTBOX,
    METERING,
    AUTH,
    TENANTS,
    USERS,
    AUDIT,
    DEVICES,
    TELEMETRY,
    ANALYTICS,
    RULES,
    ALERTS,
    ESCALATION,
    STREAM,
    APIKEYS,
    # Last: its `/api/v1/{token}/...` device API must come after every other API route.
    CONNECTIVITY,
    MQTT,
    # The web UI's client routes (root catch-all outside the reserved paths).
    CLIENT_ROUTES,
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body = {
        "type": f"https://iiot.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def _problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=body["status"], headers=headers, media_type=PROBLEM_CONTENT_TYPE
    )


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "")


def _field_error(err: dict[str, Any]) -> dict[str, Any]:
    loc = tuple(err.get("loc", ()))
    if err.get("type") == "json_invalid":
        # The location of a JSON syntax error is a character offset, not a field.
        position = loc[1] if len(loc) > 1 else "?"
        reason = (err.get("ctx") or {}).get("error", "JSON decode error")
        return {
            "field": "body",
            "in": "body",
            "message": f"malformed JSON at character {position}: {reason}",
            "type": "json_invalid",
        }
    return {
        "field": _location(loc),
        "in": str(loc[0] if loc else "body"),
        "message": err.get("msg", "invalid"),
        "type": err.get("type", "invalid"),
    }


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (a path may be split over routes)."""
    methods: set[str] = set()
    path = request.scope.get("path", "")
    for ctx in iter_route_contexts(request.app.routes):
        regex = getattr(ctx, "path_regex", None)
        if regex is not None and ctx.methods and regex.match(path):
            methods |= set(ctx.methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IIoTError)
    async def _iiot_error(request: Request, exc: IIoTError) -> JSONResponse:
        return _problem_response(exc.to_problem(request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(err) for err in exc.errors()]
        if errors and all(e["type"] == "json_invalid" for e in errors):
            return _problem_response(
                problem(
                    400, "malformed_json", "Malformed JSON", errors[0]["message"], errors=errors
                )
            )
        fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
        return _problem_response(
            problem(
                422, "validation_error", "Validation failed", f"invalid: {fields}", errors=errors
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, InvalidText):
            error = {"field": "body", "in": "body", "message": exc.detail, "type": "string_unicode"}
            return _problem_response(
                problem(422, "validation_error", "Validation failed", exc.detail, errors=[error])
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        return _problem_response(
            problem(exc.status_code, code, code.replace("_", " ").capitalize(), detail), headers
        )

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (a NUL character, a number out of
        # range): bad input, not a server fault. The transaction has been rolled back.
        log.info(
            "database refused a value on %s %s: %s", request.method, request.url.path, exc.orig
        )
        return _problem_response(
            problem(
                422,
                "validation_error",
                "Validation failed",
                "a value in the request cannot be stored (invalid characters or out of range)",
                errors=[],
            )
        )

    async def _database_error(request: Request, exc: Exception) -> JSONResponse:
        # Registered for the driver's connection-level errors, so that an outage is answered
        # here (once logged) instead of reaching the catch-all, which logs a traceback per
        # request and makes the server log the exception again.
        if not is_database_unavailable(exc):
            return await _unexpected(request, exc)
        rt = getattr(request.app.state, "runtime", None)
        if rt is not None:
            outage_log(rt).report(exc)
        return _problem_response(
            problem(
                503,
                "database_unavailable",
                "Database unavailable",
                "the database cannot be reached; retry later",
                retry_after=RETRY_AFTER_SECONDS,
            ),
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for database_error in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        ConnectionError,
    ):
        app.add_exception_handler(database_error, _database_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem_response(
            problem(500, "internal_error", "Internal server error", "an unexpected error occurred")
        )


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}
_PROBLEM_CONTENT = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# Answers any route may give, declared where they can happen.
_BODY_PROBLEMS = {
    "400": "Malformed JSON",
    "413": "Payload too large",
    "408": "Request body too slow",
    "422": "Validation failed",
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM_CONTENT}


def declared_policies(app: FastAPI) -> dict[tuple[str, str], tuple[Access, ...]]:
    """Every declared API route's Access policies, by (method, path)."""
    found: dict[tuple[str, str], tuple[Access, ...]] = {}
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            for method in ctx.methods or ():
                found[(method, str(ctx.path))] = route_policies(ctx.dependant)
    return found


# Documents already built, by what they are made of: apps that mount the same documented route
# objects (declared once per process) share one, which costs about a second of CPU to build.
# Each entry holds its routes, so the ids in its key stay theirs.
_DOCUMENTS: dict[tuple[Any, ...], tuple[list[APIRoute], dict[str, Any]]] = {}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, made truthful: every error is declared as problem details, each
    route's security comes from its Access policy, malformed and oversized bodies are declared
    wherever a body is read."""
    if app.openapi_schema:
        return app.openapi_schema
    documented = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    key = (app.title, app.version, app.description, *map(id, documented))
    built = _DOCUMENTS.get(key)
    if built is not None:
        app.openapi_schema = built[1]
        return built[1]
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    policies = {
        (path, method.lower()): found[0]
        for (method, path), found in declared_policies(app).items()
        if found
    }
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = _PROBLEM_CONTENT
                    if response.get("description") == "Validation Error":
                        response["description"] = "Validation failed"
            access = policies.get((path, method))
            if access is not None:
                operation["security"] = access.openapi_security()
                if access.security:
                    responses.setdefault("401", _problem("Authentication required"))
            if "requestBody" in operation:
                for code, description in _BODY_PROBLEMS.items():
                    responses.setdefault(code, _problem(description))
            elif operation.get("parameters"):
                responses.setdefault("422", _problem("Validation failed"))
    _DOCUMENTS[key] = (documented, schema)
    app.openapi_schema = schema
    return schema


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    modules: tuple[Module, ...] = MODULES,
) -> FastAPI:
    """Build the app from `modules`. With `runtime` given (tests), start-up does no database
    preparation, runs no jobs or hooks, and the runtime is expected to run the same modules."""
    settings = settings or (runtime.settings if runtime else get_settings())
    wiring = Wiring.of(modules)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from iiot import bootstrap

        rt = runtime
        owned = rt is None
        if rt is None:
            urls = await asyncio.to_thread(bootstrap.prepare_database, settings)
            rt = Runtime.build(settings, urls.require_app_url(), modules)
            await bootstrap.ensure_bootstrap_admin(rt)
        app.state.runtime = rt
        single = await claim_single_process(rt) if owned else None
        if owned:
            await scheduler.run_startup_hooks(rt)
        tasks = scheduler.start_all(rt) if settings.run_background_jobs and owned else []
        if owned:
            heap.settle_after_startup()
        try:
            yield
        finally:
            if single is not None:
                await single.release()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if owned:
                await scheduler.run_shutdown_hooks(rt)
                await rt.rate.close()
                await rt.db.dispose()

    app = FastAPI(
        title="iiot",
        version=__version__,
        description="Multi-tenant Industrial IoT platform API.",
        lifespan=lifespan,
        # Served by iiot.web.spa from local assets (no CDN): /docs works offline.
        docs_url=None,
        redoc_url=None,
    )
    if runtime is not None:
        app.state.runtime = runtime
    install_error_handlers(app)
    # Inside the body guard: the guard's limits and timeout apply to the fast routes too.
    app.add_middleware(
        FastRoutes,
        routes=wiring.fast_api_routes,
        prefix=API_PREFIX,
        handlers=app.exception_handlers,
    )
    app.add_middleware(
        RequestBodyGuard,
        max_bytes=MAX_REQUEST_BODY_BYTES,
        read_timeout=settings.body_read_timeout_seconds,
        overrides={("POST", f"{API_PREFIX}/telemetry"): MAX_INGEST_BODY_BYTES},
    )
    # The routes are mounted as they were declared (API routers under API_PREFIX), in module
    # order: `include_router` would build each of them (dependencies, validators of bodies and
    # responses) a second time, a twentieth of a server's start-up CPU.
    for router in (*wiring.routers, *wiring.api_routers):
        app.router.routes.extend(router.routes)
    check_twins(wiring.fast_api_routes, API_PREFIX, declared_policies(app))
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app
