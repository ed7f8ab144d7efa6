"""Tenants and tiers: management, stats and quotas, and the purge of deleted tenants."""

from iiot.modules import Job, Module
from iiot.tenants.api import router
from iiot.tenants.service import PURGE_INTERVAL_SECONDS, purge_deleted_tenants

MODULE = Module(
    name="tenants",
    api_routers=(router,),
    jobs=(Job("tenants.purge", PURGE_INTERVAL_SECONDS, purge_deleted_tenants),),
)
