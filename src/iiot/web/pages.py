"""Web pages served by `iiot serve` (no API data is rendered into them by the server)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from iiot.http.routing import IIoTRoute
from iiot.tenancy.access import Public

router = APIRouter(tags=["web"], include_in_schema=False, route_class=IIoTRoute)

_TEMPLATES = files("iiot.web") / "templates"


@router.get("/invitations/accept", dependencies=[Depends(Public())], response_class=HTMLResponse)
async def accept_invitation_page() -> HTMLResponse:
    """The page an invitation e-mail links to: sets a password and accepts."""
    html = (_TEMPLATES / "accept_invitation.html").read_text(encoding="utf-8")
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
