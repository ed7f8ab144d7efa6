"""Per-process cache of each tenant's enabled rules, invalidated through LISTEN/NOTIFY.

A rule change runs `pg_notify('iiot_rules', tenant_id)` in its own transaction. Before each
use the cache makes one round trip on its listening connection: PostgreSQL delivers every
notification committed before that query ahead of its answer, so an edit is in effect for the
next batch in every process, with no timed expiry. Without a working listening connection
nothing is cached.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

import psycopg

from iiot.db.setup import plain_url
from iiot.rules.repository import RULES_CHANNEL, RuleRepository
from iiot.rules.specs import RuleSpec, compile_rule
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger(__name__)


class RuleCache:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._rules: dict[uuid.UUID, list[RuleSpec]] = {}
        self._lock = asyncio.Lock()

    def _on_notify(self, note: psycopg.Notify) -> None:
        try:
            self._rules.pop(uuid.UUID(note.payload), None)
        except ValueError:
            self._rules.clear()

    async def _sync(self) -> bool:
        """Receive every pending notification; False when the cache cannot be trusted."""
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._rules.clear()
                    conn = await psycopg.AsyncConnection.connect(
                        plain_url(self._rt.db.session_url),
                        autocommit=True,
                    )
                    conn.add_notify_handler(self._on_notify)
                    await conn.execute(f"listen {RULES_CHANNEL}")
                    self._conn = conn
                else:
                    await self._conn.execute("select 1")
                return True
            except (psycopg.Error, OSError):
                log.warning("rule cache listener unavailable; reading rules uncached")
                await self._drop()
                return False

    async def _drop(self) -> None:
        self._rules.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close()

    async def rules_for(self, tenant_id: uuid.UUID) -> list[RuleSpec]:
        """The tenant's enabled rules, highest priority first."""
        cacheable = await self._sync()
        if cacheable and tenant_id in self._rules:
            return self._rules[tenant_id]
        specs = await load_rules(self._rt, tenant_id)
        if cacheable:
            self._rules[tenant_id] = specs
        return specs

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


async def load_rules(rt: Runtime, tenant_id: uuid.UUID) -> list[RuleSpec]:
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        rows = await RuleRepository(session, ctx).enabled()
    return [s for s in (compile_rule(r) for r in rows) if s is not None]
