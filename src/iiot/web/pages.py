"""Web pages served by `iiot serve` (no API data is rendered into them by the server)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from iiot.callers.access import Public
from iiot.http.routing import IIoTRoute

router = APIRouter(tags=["web"], include_in_schema=False, route_class=IIoTRoute)

_TEMPLATES = files("iiot.web") / "templates"


def _page(template: str) -> HTMLResponse:
    html = (_TEMPLATES / template).read_text(encoding="utf-8")
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


@router.get("/invitations/accept", dependencies=[Depends(Public())], response_class=HTMLResponse)
async def accept_invitation_page() -> HTMLResponse:
    """The page an invitation e-mail links to: sets a password and accepts."""
    return _page("accept_invitation.html")


@router.get("/password-reset", dependencies=[Depends(Public())], response_class=HTMLResponse)
async def reset_password_page() -> HTMLResponse:
    """Asks for a reset link by e-mail; opened from that link, sets the new password."""
    return _page("reset_password.html")
