"""Per-tenant quota bookkeeping (tenant-owned)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, func
from sqlalchemy.orm import Mapped, mapped_column

from iiot.models.base import Base


class TenantQuotaLock(Base):
    """One row per tenant, locked FOR UPDATE while a seat (device, user) is being taken,
    so that two concurrent creates at the limit cannot both succeed."""

    __tablename__ = "tenant_quota_locks"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="cascade"), primary_key=True
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
