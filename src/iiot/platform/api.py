"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iiot.db.migrate import head_revision
from iiot.errors import NotFound, ServiceUnavailable, problem_responses
from iiot.http.routing import IIoTRoute
from iiot.platform.repository import PlatformRepository
from iiot.runtime import get_runtime
from iiot.tenancy.access import Public

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
    head = head_revision()
    if current != head:
        raise ServiceUnavailable(f"database at revision {current}, code expects {head}")
    return {"status": "ready", "revision": str(current)}


@router.get("/metrics", dependencies=[Depends(Public())], responses=problem_responses(NotFound))
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text format); disabled with IIOT_METRICS_ENABLED=false."""
    if not get_runtime(request).settings.metrics_enabled:
        raise NotFound("metrics are disabled")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
