"""Fixtures of the rule tests: a runtime that may call webhooks on 127.0.0.1, and SMTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from iiot.runtime import Runtime
from tests.mail.smtp_server import smtp_inbox

__all__ = ["smtp_inbox"]


@pytest.fixture
async def allow_local_webhooks(runtime: Runtime) -> AsyncIterator[None]:
    original = runtime.settings
    runtime.settings = original.model_copy(update={"webhook_allow_private": True})
    try:
        yield
    finally:
        runtime.settings = original
