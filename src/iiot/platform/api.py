"""Liveness, readiness and metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iiot.callers.access import Access, Public
from iiot.db.migrate import HEAD_REVISION
from iiot.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized, problem_responses
from iiot.http.routing import IIoTRoute
from iiot.platform.repository import PlatformRepository
from iiot.runtime import get_runtime

router = APIRouter(tags=["platform"], route_class=IIoTRoute)


@router.get("/health", dependencies=[Depends(Public())])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/ready", dependencies=[Depends(Public())], responses=problem_responses(ServiceUnavailable)
)
async def ready(request: Request) -> dict[str, str]:
    """Readiness: the database answers and is migrated to this code's head revision."""
    rt = get_runtime(request)
    try:
        async with rt.db.system() as session:
            current = await PlatformRepository(session).schema_revision()
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        raise ServiceUnavailable("database unreachable") from exc
    if current != HEAD_REVISION:
        raise ServiceUnavailable(f"database at revision {current}, code expects {HEAD_REVISION}")
    return {"status": "ready", "revision": str(current)}


class MetricsScraper(Access):
    """Whoever presents `IIOT_METRICS_TOKEN` as a bearer token; anyone when no token is set,
    except in production, where metrics are then served only if `IIOT_METRICS_PUBLIC=true`."""

    label = "metrics scraper (IIOT_METRICS_TOKEN)"
    security = ("metricsToken",)

    def openapi_security(self) -> list[dict[str, list[str]]]:
        # Without a configured token the route is open (outside production): both apply.
        return [{"metricsToken": []}, {}]

    async def __call__(self, request: Request) -> None:
        settings = get_runtime(request).settings
        if not settings.metrics_enabled:
            raise NotFound("metrics are disabled")
        if settings.metrics_token is None:
            if settings.env == "production" and not settings.metrics_public:
                raise Forbidden(
                    "metrics are not served unauthenticated in production: set "
                    "IIOT_METRICS_TOKEN (or IIOT_METRICS_PUBLIC=true)"
                )
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        presented = value.strip().encode() if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(presented, settings.metrics_token.encode()):
            raise Unauthorized("the metrics token is required")


@router.get(
    "/metrics",
    dependencies=[Depends(MetricsScraper())],
    response_class=PlainTextResponse,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **problem_responses(Unauthorized, Forbidden, NotFound),
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text format); disabled with IIOT_METRICS_ENABLED=false."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
