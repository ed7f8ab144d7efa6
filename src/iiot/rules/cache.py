"""Per-process cache of each tenant's enabled rules, invalidated through LISTEN/NOTIFY.

A rule change runs `pg_notify('iiot_rules', tenant_id)` in its own transaction. Before each
use the cache makes one round trip on the process's listening connection (`iiot.db.listen`):
PostgreSQL delivers every notification committed before that query ahead of its answer, so an
edit is in effect for the next batch in every process, with no timed expiry. Without a working
listening connection nothing is cached.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from iiot.db.listen import Subscription, listener
from iiot.rules.repository import RULES_CHANNEL, RuleRepository
from iiot.rules.specs import RuleSpec, compile_rule
from iiot.tenancy.context import system_context

if TYPE_CHECKING:
    from iiot.runtime import Runtime


class RuleCache:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._rules: dict[uuid.UUID, list[RuleSpec]] = {}
        self._subscription = Subscription(
            {RULES_CHANNEL: self._on_notify}, reset=self._rules.clear, name="rule cache"
        )

    def _on_notify(self, payload: str) -> None:
        try:
            self._rules.pop(uuid.UUID(payload), None)
        except ValueError:
            self._rules.clear()

    async def _sync(self) -> bool:
        """Receive every pending notification; False when the cache cannot be trusted."""
        found = listener(self._rt)
        found.add(self._subscription)
        if not await found.sync() or not found.hears(self._subscription):
            self._rules.clear()
            return False
        return True

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
        self._rules.clear()
        await listener(self._rt).remove(self._subscription)


async def load_rules(rt: Runtime, tenant_id: uuid.UUID) -> list[RuleSpec]:
    ctx = system_context(tenant_id)
    async with rt.db.tenant(ctx) as session:
        rows = await RuleRepository(session, ctx).enabled()
    return [s for s in (compile_rule(r) for r in rows) if s is not None]
