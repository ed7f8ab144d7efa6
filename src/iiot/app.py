"""The ASGI application: routers, the one problem-details error handler, start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from iiot import __version__
from iiot.config import Settings, get_settings
from iiot.errors import PROBLEM_CONTENT_TYPE, IIoTError
from iiot.runtime import Runtime

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IIoTError)
    async def _iiot_error(request: Request, exc: IIoTError) -> JSONResponse:
        return _problem_response(exc.to_problem(request.url.path), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_field_error(err) for err in exc.errors()]
        fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
        return _problem_response(
            problem(
                422, "validation_error", "Validation failed", f"invalid: {fields}", errors=errors
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return _problem_response(
            problem(exc.status_code, code, code.replace("_", " ").capitalize(), detail),
            getattr(exc, "headers", None),
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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem_response(
            problem(500, "internal_error", "Internal server error", "an unexpected error occurred")
        )


def _openapi_with_problem(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
        },
        "additionalProperties": True,
    }
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. With `runtime` given (tests), start-up does no database preparation."""
    settings = settings or (runtime.settings if runtime else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from iiot import bootstrap
        from iiot.jobs import scheduler

        rt = runtime
        owned = rt is None
        if rt is None:
            urls = await asyncio.to_thread(bootstrap.prepare_database, settings)
            rt = Runtime.build(settings, urls.require_app_url())
            await bootstrap.ensure_bootstrap_admin(rt)
        app.state.runtime = rt
        tasks = scheduler.start_all(rt) if settings.run_background_jobs and owned else []
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if owned:
                await scheduler.run_shutdown_hooks(rt)
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

    from iiot.routes import include_routes

    include_routes(app, API_PREFIX)
    app.openapi = lambda: _openapi_with_problem(app)  # type: ignore[method-assign]
    return app
