"""Every numeric setting has a sane range: a value that would overflow date arithmetic or
make no sense is refused at start-up, not at the first request (issue 13, limits class)."""

from __future__ import annotations

import pytest
from annotated_types import Ge, Gt, Le
from pydantic import ValidationError

from iiot.config import Settings


def test_every_numeric_setting_is_bounded_on_both_sides() -> None:
    unbounded = []
    for name, field in Settings.model_fields.items():
        if field.annotation not in (int, float):
            continue
        kinds = {type(m) for m in field.metadata}
        if not (kinds & {Ge, Gt}) or Le not in kinds:
            unbounded.append(name)
    assert not unbounded


@pytest.mark.parametrize(
    "values",
    [
        {"refresh_token_ttl_seconds": 10**12},
        {"login_failure_window_seconds": 10**12},
        {"smtp_port": 0},
        {"header_read_timeout_seconds": 0},
    ],
)
def test_out_of_range_settings_are_refused(values: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`IIOT_REDIS_URL=` (an empty line in a compose or env file) means one process without
    Redis, not a Redis address of "" that fails at start-up deep in the rate limiter."""
    monkeypatch.setenv("IIOT_REDIS_URL", "")
    assert Settings(_env_file=None).redis_url is None  # type: ignore[call-arg]


@pytest.mark.parametrize("url", ["localhost:6379", "http://127.0.0.1:6379", "valkey"])
def test_a_redis_url_without_a_redis_scheme_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="redis_url"):
        Settings(_env_file=None, redis_url=url)  # type: ignore[call-arg]
