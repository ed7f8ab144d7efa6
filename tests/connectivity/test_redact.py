"""Device tokens in paths are redacted from every log line `iiot serve` writes."""

from __future__ import annotations

import logging
import logging.config

import pytest

from iiot.connectivity.redact import TokenPathFilter, redact_paths, uvicorn_log_config

TOKEN = "dt_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-xyz"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"POST /api/v1/{TOKEN}/telemetry", "POST /api/v1/***/telemetry"),
        (f"GET /api/v1/{TOKEN}/rpc?timeout=20000", "GET /api/v1/***/rpc?timeout=20000"),
        (f"POST /api/v1/{TOKEN}/rpc/42", "POST /api/v1/***/rpc/42"),
        ("GET /api/v1/not-ours-token/attributes/updates", "GET /api/v1/***/attributes/updates"),
        (f"GET /api/v1/{TOKEN}/typo", "GET /api/v1/dt_***/typo"),
        ("POST /api/v1/telemetry", "POST /api/v1/telemetry"),
        ("GET /api/v1/devices/7f9c/attributes", "GET /api/v1/devices/7f9c/attributes"),
    ],
)
def test_paths_are_redacted(line: str, expected: str) -> None:
    assert redact_paths(line) == expected


def test_the_uvicorn_access_record_and_other_records() -> None:
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/api/v1/{TOKEN}/telemetry", "1.1", 200),
        None,
    )
    assert TokenPathFilter().filter(access)
    assert access.getMessage() == '127.0.0.1:5000 - "POST /api/v1/***/telemetry HTTP/1.1" 200'
    error = logging.LogRecord(
        "iiot.app",
        logging.ERROR,
        __file__,
        1,
        "unhandled error on %s %s",
        ("POST", f"/api/v1/{TOKEN}/attributes"),
        None,
    )
    assert TokenPathFilter().filter(error)
    assert TOKEN not in error.getMessage()


def test_every_handler_of_the_log_config_redacts() -> None:
    config = uvicorn_log_config()
    assert config["handlers"]
    for handler in config["handlers"].values():
        assert "redact_device_tokens" in handler["filters"]
    assert config["root"]["handlers"] == ["default"]
