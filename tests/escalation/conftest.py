"""Fixtures of the escalation tests: a runtime that may call webhooks on 127.0.0.1."""

from tests.rules.conftest import allow_local_webhooks

__all__ = ["allow_local_webhooks"]
