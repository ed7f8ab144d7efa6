"""Serving the web UI: index for client routes, reserved paths untouched, compressed assets."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from iiot.web import spa
from tests.fixtures.factories import Factory

INDEX = (
    b"<!doctype html><title>iiot</title>"
    b'<script type="module" src="/assets/app-abcdef12.js"></script>'
)
SCRIPT = b"console.log('iiot');" * 200


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    assets = tmp_path / "assets"
    assets.mkdir()
    (tmp_path / "index.html").write_bytes(INDEX)
    (assets / "app-abcdef12.js").write_bytes(SCRIPT)
    (assets / "app-abcdef12.js.gz").write_bytes(gzip.compress(SCRIPT))
    (assets / "app-abcdef12.js.br").write_bytes(b"brotli-bytes")
    (assets / "swagger").mkdir()
    (assets / "swagger" / "init.js").write_bytes(b"init();")
    (tmp_path / "secret.txt").write_bytes(b"outside the assets")
    monkeypatch.setattr(spa, "DIST", tmp_path)
    return tmp_path


@pytest.mark.parametrize("path", ["/", "/devices", "/devices/123/chart", "/alerts?state=new"])
async def test_client_routes_answer_with_the_index_and_a_strict_csp(
    factory: Factory, dist: Path, path: str
) -> None:
    r = await factory.client().get(path)
    assert r.status_code == 200
    assert r.content == INDEX
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nope", 404),
        ("POST", "/api/v1/nope", 404),
        ("GET", "/invitations/nope", 404),
        ("GET", "/metrics/x", 404),
        ("POST", "/devices", 404),
        ("GET", "/assets/missing.js", 404),
    ],
)
async def test_reserved_paths_keep_their_problem_answers(
    factory: Factory, dist: Path, method: str, path: str, status: int
) -> None:
    r = await factory.client().request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"


async def test_api_health_and_openapi_are_not_shadowed(factory: Factory, dist: Path) -> None:
    client = factory.client()
    assert (await client.get("/health")).json()["status"] == "ok"
    assert "paths" in (await client.get("/openapi.json")).json()
    r = await client.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


async def test_assets_are_served_pre_compressed_as_accepted(factory: Factory, dist: Path) -> None:
    client = factory.client()
    r = await client.get("/assets/app-abcdef12.js", headers={"Accept-Encoding": "gzip, br"})
    assert r.headers["content-encoding"] == "br"
    assert r.headers["vary"] == "Accept-Encoding"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"].startswith("text/javascript")
    r = await client.get("/assets/app-abcdef12.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == SCRIPT  # httpx decodes gzip
    r = await client.get("/assets/app-abcdef12.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in r.headers
    assert r.content == SCRIPT
    r = await client.get("/assets/swagger/init.js")
    assert r.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/assets/../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/app-abcdef12.js.gz"]
)
async def test_nothing_outside_the_assets_is_served(
    factory: Factory, dist: Path, path: str
) -> None:
    r = await factory.client().get(path)
    # A normalised `..` lands on a client route (the index); nothing else is served.
    assert r.status_code == 404 or r.content == INDEX
    assert b"outside the assets" not in r.content


async def test_docs_use_local_assets_only(factory: Factory, dist: Path) -> None:
    r = await factory.client().get("/docs")
    assert r.status_code == 200
    assert "/assets/swagger/swagger-ui-bundle.js" in r.text
    assert "http" not in r.text.replace("http-equiv", "")
    assert "script-src 'self';" in r.headers["content-security-policy"]


async def test_an_unbuilt_ui_says_how_to_build_it(
    factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spa, "DIST", tmp_path / "missing")
    r = await factory.client().get("/devices")
    assert r.status_code == 503
    assert "make ui" in r.text
