"""Classes of input closed for every route, not only the instances found (issue 13).

Free-form JSON and datetimes: the app's routes are walked and every body field and query
parameter that takes a `dict[str, Any]` or a `datetime` must use the bounded types of
`iiot.validation`. Bodies: JSON text that is not valid Unicode is refused on any route, any
body over the cap is refused on any route, malformed JSON answers 400.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from iiot.app import MAX_REQUEST_BODY_BYTES
from iiot.http.routing import IIoTRoute
from iiot.validation import check_datetime, check_json
from tests.fixtures.factories import World

PROBLEM = "application/problem+json"


def _validators(metadata: list[Any]) -> set[Any]:
    return {getattr(m, "func", None) for m in metadata}


def _walk(
    annotation: Any, metadata: list[Any], where: str, seen: set[type], bad: list[str]
) -> None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        _walk(inner, [*metadata, *extra], where, seen, bad)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            _walk(arg, metadata, where, seen, bad)
    elif annotation is dt.datetime:
        if check_datetime not in _validators(metadata):
            bad.append(f"{where}: datetime without BoundedDatetime")
    elif origin is dict or annotation is dict:
        if check_json not in _validators(metadata):
            bad.append(f"{where}: free-form object without JsonObject")
    elif origin in (list, tuple, set, frozenset):
        for arg in typing.get_args(annotation):
            if arg is not Ellipsis:
                _walk(arg, [], f"{where}[]", seen, bad)
    elif annotation is Any:
        if check_json not in _validators(metadata):
            bad.append(f"{where}: Any without JsonValue")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        for name, field in annotation.model_fields.items():
            _walk(field.annotation, list(field.metadata), f"{where}.{name}", seen, bad)


def test_every_free_form_json_and_datetime_input_is_bounded(app) -> None:  # type: ignore[no-untyped-def]
    bad: list[str] = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        where = f"{sorted(route.methods)} {route.path}"
        fields = [*route.dependant.query_params, *route.dependant.path_params]
        for dep in route.dependant.dependencies:
            fields += [*dep.query_params, *dep.path_params]
        for f in fields:
            _walk(
                f.field_info.annotation,
                list(f.field_info.metadata),
                f"{where} {f.name}",
                set(),
                bad,
            )
        if route.body_field is not None:
            body = route.body_field.field_info
            _walk(body.annotation, list(body.metadata), f"{where} body", set(), bad)
    assert not bad, "\n".join(bad)


def test_every_route_decodes_json_strictly(app) -> None:  # type: ignore[no-untyped-def]
    routes = [c.original_route for c in iter_route_contexts(app.routes)]
    api = [r for r in routes if isinstance(r, APIRoute)]
    assert len(api) > 40
    loose = [r.path for r in api if not isinstance(r, IIoTRoute)]
    assert not loose


LONE_SURROGATES = [
    b'{"email": "\\ud800@example.com", "password": "x"}',
    b'{"\\udc00": 1, "email": "a@example.com", "password": "x"}',
]


@pytest.mark.parametrize("raw", LONE_SURROGATES)
async def test_lone_surrogates_are_refused_on_any_json_route(world: World, raw: bytes) -> None:
    r = await world.anonymous.post(
        "/api/v1/auth/login", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["type"] == "string_unicode"


async def test_malformed_json_is_400_and_nan_is_not_json(world: World) -> None:
    for raw in (b'{"email": ', b'{"email": NaN}', b"[" * 5000):
        r = await world.anonymous.post(
            "/api/v1/auth/login", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, (raw[:20], r.text)
        assert r.json()["code"] == "malformed_json"


async def test_every_body_is_capped(world: World) -> None:
    big = b'{"email": "' + b"a" * (MAX_REQUEST_BODY_BYTES + 10) + b'", "password": "x"}'
    r = await world.anonymous.post(
        "/api/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "payload_too_large"

    async def chunks() -> typing.AsyncIterator[bytes]:  # no Content-Length: streamed
        yield b'{"email": "'
        for _ in range(40):
            yield b"a" * 10_000
        yield b'", "password": "x"}'

    r = await world.a["admin"].client.post(
        "/api/v1/devices", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "payload_too_large"


async def test_ingest_keeps_its_larger_cap(world: World) -> None:
    values = {f"k{i}": i for i in range(30_000)}  # ~400 KB: over the general cap
    r = await world.a["operator"].client.post(
        "/api/v1/telemetry",
        json={"device_id": "00000000-0000-0000-0000-000000000000", "telemetry": values},
    )
    assert r.status_code != 413, r.text


async def test_options_answers_405_with_allow(world: World) -> None:
    r = await world.a["viewer"].client.options("/api/v1/devices")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert r.headers["content-type"] == PROBLEM
