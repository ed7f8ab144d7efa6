"""The mail outbox: queued in the caller's transaction, delivered after commit, retried."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot import mail
from iiot.delivery.retry import retry_delay
from iiot.runtime import Runtime
from tests.fixtures.factories import Factory
from tests.fixtures.ports import free_port
from tests.mail.smtp_server import Inbox, body_of


async def _rows(owner_engine: AsyncEngine) -> list[dict[str, object]]:
    async with owner_engine.connect() as conn:
        result = await conn.execute(text("select * from mail_outbox order by created_at"))
        return [dict(r._mapping) for r in result]


async def test_enqueued_message_is_delivered_after_commit(
    runtime: Runtime, smtp_inbox: Inbox, owner_engine: AsyncEngine, factory: Factory
) -> None:
    tenant = await factory.tenant()
    async with runtime.db.system() as session:
        await mail.enqueue(
            session, to="ops@example.com", subject="Hello", body="line one", tenant_id=tenant.id
        )
    report = await mail.deliver_pending(runtime)
    assert report.sent == 1
    [message] = await smtp_inbox.wait_for(1)
    assert message["To"] == "ops@example.com"
    assert message["Subject"] == "Hello"
    assert message["From"] == runtime.settings.mail_from
    assert body_of(message).strip() == "line one"
    [row] = await _rows(owner_engine)
    assert row["status"] == "sent"
    assert row["for_tenant_id"] == tenant.id
    # The body may carry a one-time link: it is not kept once delivered.
    assert row["body"] is None
    assert (await mail.deliver_pending(runtime)).handled == 0


async def test_rolled_back_transaction_sends_nothing(
    runtime: Runtime, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    class Abort(Exception):
        pass

    async def queue_then_fail() -> None:
        async with runtime.db.system() as session:
            await mail.enqueue(session, to="x@example.com", subject="never", body="never")
            raise Abort

    with pytest.raises(Abort):
        await queue_then_fail()
    assert (await mail.deliver_pending(runtime)).handled == 0
    assert await _rows(owner_engine) == []
    assert smtp_inbox.messages == []


async def test_refused_delivery_is_retried_with_backoff(
    runtime: Runtime, smtp_inbox: Inbox, owner_engine: AsyncEngine
) -> None:
    smtp_inbox.refuse = True
    async with runtime.db.system() as session:
        await mail.enqueue(session, to="ops@example.com", subject="Retry me", body="body")
    report = await mail.deliver_pending(runtime)
    assert report.retrying == 1
    assert report.sent == 0
    [row] = await _rows(owner_engine)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["body"] == "body"
    assert "451" in str(row["last_error"])
    assert row["next_attempt_at"] > row["created_at"]
    # Not due yet: a second run leaves it alone.
    assert (await mail.deliver_pending(runtime)).handled == 0

    smtp_inbox.refuse = False
    async with owner_engine.begin() as conn:
        await conn.execute(text("update mail_outbox set next_attempt_at = now()"))
    assert (await mail.deliver_pending(runtime)).sent == 1
    assert [m["Subject"] for m in smtp_inbox.messages] == ["Retry me"]
    [row] = await _rows(owner_engine)
    assert row["status"] == "sent"
    assert row["attempts"] == 2


async def test_unreachable_server_gives_up_after_max_attempts(
    runtime: Runtime, owner_engine: AsyncEngine
) -> None:
    original = runtime.settings
    runtime.settings = original.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port()}
    )
    try:
        async with runtime.db.system() as session:
            await mail.enqueue(session, to="ops@example.com", subject="Lost", body="secret link")
        for attempt in range(1, mail.MAX_ATTEMPTS + 1):
            async with owner_engine.begin() as conn:
                await conn.execute(text("update mail_outbox set next_attempt_at = now()"))
            report = await mail.deliver_pending(runtime)
            assert report.handled == 1
            [row] = await _rows(owner_engine)
            assert row["attempts"] == attempt
        assert report.failed == 1
        assert row["status"] == "failed"
        assert row["body"] is None
    finally:
        runtime.settings = original


def test_backoff_grows_and_is_capped() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 10)]
    assert delays[:4] == [30, 60, 120, 240]
    assert max(delays) == 3600
    assert delays == sorted(delays)


async def test_without_smtp_host_messages_go_to_the_development_outbox(
    runtime: Runtime, owner_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    assert runtime.settings.smtp_host is None
    async with runtime.db.system() as session:
        await mail.enqueue(session, to="dev@example.com", subject="Dev", body="see the log")
    with caplog.at_level(logging.INFO, logger="iiot.mail.development"):
        report = await mail.deliver_pending(runtime)
    assert report.logged == 1
    assert "dev@example.com" in caplog.text
    assert "see the log" in caplog.text
    [row] = await _rows(owner_engine)
    assert row["status"] == "logged"
    assert row["body"] == "see the log"


async def test_deliver_soon_runs_in_the_background(runtime: Runtime, smtp_inbox: Inbox) -> None:
    async with runtime.db.system() as session:
        await mail.enqueue(session, to="bg@example.com", subject="Background", body="b")
    mail.deliver_soon(runtime)
    await mail.wait_idle(runtime)
    assert [m["To"] for m in smtp_inbox.messages] == ["bg@example.com"]
