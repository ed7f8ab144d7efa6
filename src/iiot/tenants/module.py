"""Tenants and tiers: management, stats, quotas and usage, and the purge of deleted tenants."""

from iiot.modules import Job, Module
from iiot.tenants.api import FAST_QUOTAS, FAST_STATS, router
from iiot.tenants.service import PURGE_INTERVAL_SECONDS, purge_deleted_tenants
from iiot.tenants.usage_api import router as usage_router

MODULE = Module(
    name="tenants",
    api_routers=(router, usage_router),
    fast_api_routes=(FAST_STATS, FAST_QUOTAS),
    jobs=(Job("tenants.purge", PURGE_INTERVAL_SECONDS, purge_deleted_tenants),),
)
