"""Telemetry: ingest, queries (and the device detail with its latest values), day partitions
and retention."""

from iiot.modules import Job, Module
from iiot.telemetry import partitions, removed, retention
from iiot.telemetry.api import FAST_INGEST
from iiot.telemetry.api import router as ingest_router
from iiot.telemetry.device_detail_api import router as device_detail_router
from iiot.telemetry.ingest import telemetry_usage
from iiot.telemetry.query_api import router as query_router

MODULE = Module(
    name="telemetry",
    api_routers=(ingest_router, query_router, device_detail_router),
    fast_api_routes=(FAST_INGEST,),
    jobs=(
        Job("telemetry-partitions", partitions.JOB_INTERVAL_SECONDS, partitions.prepare_ahead),
        Job(retention.JOB_NAME, retention.INTERVAL_SECONDS, retention.run_job),
        Job(removed.JOB_NAME, removed.INTERVAL_SECONDS, removed.run_job),
    ),
    usage_providers=(telemetry_usage, retention.oldest_data_age),
)
