"""The route class of every API router: JSON bodies decoded strictly, in one place.

Bodies are decoded with orjson instead of the standard library: NaN and Infinity are not
JSON, nesting is bounded (1,024 levels) and text that is not valid Unicode (a lone UTF-16
surrogate such as `"\\ud800"`, which no column, index or serialiser can hold) is refused
with 422 before any route sees it. Malformed JSON answers 400 (see `iiot.app`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

# Where the API is. The routers of a module's `api_routers` are declared under it (their
# prefix starts with it), and the application mounts every route as it was declared.
API_PREFIX = "/api/v1"


class InvalidText(HTTPException):
    """A JSON body whose text is not valid Unicode (422)."""

    def __init__(self, detail: str) -> None:
        super().__init__(status_code=422, detail=detail)


class JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                if "surrogate" in exc.msg:
                    raise InvalidText(
                        f"the body is not valid Unicode at character {exc.pos}: "
                        "lone UTF-16 surrogates are not allowed"
                    ) from exc
                raise
        return self._json


class IIoTRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decode_strictly(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive, request._send))

        return decode_strictly
