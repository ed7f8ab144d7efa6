"""The one query of the stream: which of the requested devices belong to the tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from iiot.db.repository import TenantRepository
from iiot.models.devices import Device


class StreamDeviceRepository(TenantRepository[Device]):
    model = Device

    async def existing(self, device_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not device_ids:
            return set()
        stmt = select(Device.id).where(
            Device.tenant_id == self.ctx.tenant_id, Device.id.in_(device_ids)
        )
        return set((await self.session.scalars(stmt)).all())
