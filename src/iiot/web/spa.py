"""The web UI: the single-page application's files, its client routes and offline API docs.

The UI is built from `ui/` into `iiot/web/ui/` (part of the installed package; `make run`
builds it when its sources changed). Assets are served pre-compressed (brotli or gzip, as
the browser accepts) with long-lived caching for content-hashed names. Every path that is not
an API, documentation, probe or asset path answers with the application's `index.html`, so
client routes survive a reload; those reserved paths keep their own 404s.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match
from starlette.types import Scope

from iiot.callers.access import Public
from iiot.errors import NotFound
from iiot.http.routing import IIoTRoute

DIST = Path(__file__).parent / "ui"

# The SPA loads only its own scripts and styles; it talks only to this origin. Images may come
# from elsewhere because a tenant's logo is a URL of its choosing.
SPA_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# Swagger UI sets some inline styles of its own.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
RESERVED_PREFIXES = (
    "api",
    "assets",
    "docs",
    "redoc",
    "openapi.json",
    "health",
    "ready",
    "metrics",
    "invitations",
)
# Vite names built files `name-<hash>.ext`: such a name never changes content.
_HASHED = re.compile(r"-[A-Za-z0-9_-]{8,}\.(?:js|css|woff2?|svg|png)$")
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))

_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>iiot API</title>
<link rel="stylesheet" href="/assets/swagger/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/assets/swagger/swagger-ui-bundle.js"></script>
<script src="/assets/swagger/init.js"></script>
</body>
</html>
"""


def reserved(path: str) -> bool:
    first = path.lstrip("/").split("/", 1)[0]
    return first in RESERVED_PREFIXES


class ClientRoute(IIoTRoute):
    """The catch-all of client routes: never matches a reserved path or a non-GET method, so
    it cannot shadow an API route nor turn an API 404 into a 405."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            return Match.NONE, {}
        if reserved(scope.get("path", "")):
            return Match.NONE, {}
        return super().matches(scope)


def _accepts(request: Request, encoding: str) -> bool:
    header = request.headers.get("accept-encoding", "")
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == encoding:
            return params.replace(" ", "") not in ("q=0", "q=0.0")
    return False


def file_response(request: Request, path: Path, headers: dict[str, str]) -> Response:
    """`path`, pre-compressed when a compressed sibling exists and the client accepts it."""
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript",):
        media_type += "; charset=utf-8"
    out = dict(headers)
    out["Vary"] = "Accept-Encoding"
    for encoding, suffix in _ENCODINGS:
        compressed = path.with_name(path.name + suffix)
        if _accepts(request, encoding) and compressed.is_file():
            out["Content-Encoding"] = encoding
            return FileResponse(compressed, media_type=media_type, headers=out)
    return FileResponse(path, media_type=media_type, headers=out)


def _index(request: Request) -> Response:
    index = DIST / "index.html"
    headers = {
        **_SECURITY_HEADERS,
        "Content-Security-Policy": SPA_CSP,
        "Cache-Control": "no-cache",
    }
    if not index.is_file():
        return HTMLResponse(
            "<!doctype html><title>iiot</title><p>The web UI is not built: run "
            "<code>make ui</code> (Node 20+), then reload. The API is at "
            '<a href="/docs">/docs</a>.</p>',
            status_code=503,
            headers=headers,
        )
    return file_response(request, index, headers)


assets_router = APIRouter(include_in_schema=False, route_class=IIoTRoute)
client_router = APIRouter(include_in_schema=False, route_class=ClientRoute)


@assets_router.get("/assets/{path:path}", dependencies=[Depends(Public())])
async def asset(path: str, request: Request) -> Response:
    """A built asset of the web UI."""
    root = (DIST / "assets").resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix in (".br", ".gz"):
        raise NotFound("asset not found")
    cache = "public, max-age=31536000, immutable" if _HASHED.search(path) else "no-cache"
    return file_response(request, target, {**_SECURITY_HEADERS, "Cache-Control": cache})


@assets_router.get("/docs", dependencies=[Depends(Public())])
async def api_docs() -> HTMLResponse:
    """Swagger UI of the API, from assets served by iiot itself (works offline)."""
    return HTMLResponse(
        _DOCS_HTML,
        headers={
            **_SECURITY_HEADERS,
            "Content-Security-Policy": DOCS_CSP,
            "Cache-Control": "no-cache",
        },
    )


@client_router.get("/{path:path}", dependencies=[Depends(Public())])
async def client_page(path: str, request: Request) -> Any:
    """The web UI's `index.html` for any client route (the UI routes in the browser)."""
    return _index(request)
