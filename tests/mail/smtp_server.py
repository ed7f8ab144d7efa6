"""A real SMTP server (aiosmtpd) for tests, and a fixture that points the runtime at it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from iiot import mail
from iiot.runtime import Runtime
from tests.fixtures.ports import free_port


class Inbox:
    """Messages the server accepted; `refuse` makes it answer 451 to every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return "451 4.3.0 try again later"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
            await asyncio.sleep(0.05)
        return self.messages


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def accept_token(message: EmailMessage) -> str:
    match = re.search(r"[?&]token=([A-Za-z0-9_\-]+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


@pytest.fixture
async def smtp_inbox(runtime: Runtime) -> AsyncIterator[Inbox]:
    """Start an SMTP server and send the runtime's mail to it for the length of one test."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    original = runtime.settings
    runtime.settings = original.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
    try:
        yield inbox
    finally:
        await mail.wait_idle(runtime)
        runtime.settings = original
        controller.stop()
