"""Typed sessions: a tenant repository works only on the tenant session of its own context."""

from __future__ import annotations

import uuid

import pytest

from iiot.db.session import TenantSession
from iiot.devices.repository import DeviceRepository
from iiot.runtime import Runtime
from iiot.tenancy.context import system_context


async def test_tenant_session_carries_its_context(runtime: Runtime) -> None:
    ctx = system_context(uuid.uuid4())
    async with runtime.db.tenant(ctx) as session:
        assert isinstance(session, TenantSession)
        assert session.ctx is ctx
        assert DeviceRepository(session, ctx).ctx is ctx


async def test_a_tenant_repository_refuses_a_system_session(runtime: Runtime) -> None:
    async with runtime.db.system() as session:
        with pytest.raises(TypeError, match="needs a tenant session"):
            DeviceRepository(session, system_context(uuid.uuid4()))  # type: ignore[arg-type]


async def test_a_tenant_repository_refuses_another_tenants_context(runtime: Runtime) -> None:
    async with runtime.db.tenant(system_context(uuid.uuid4())) as session:
        with pytest.raises(ValueError, match="not the session's tenant"):
            DeviceRepository(session, system_context(uuid.uuid4()))
