"""Rules: their API, the engine fed by committed telemetry, and the device-offline job."""

from iiot.modules import Hook, Job, Module
from iiot.rules import engine, offline
from iiot.rules.api import router
from iiot.rules.service import rule_usage

MODULE = Module(
    name="rules",
    api_routers=(router,),
    jobs=(
        Job("rules.device_offline", offline.JOB_INTERVAL_SECONDS, offline.evaluate_offline_rules),
        Job(engine.SWEEP_JOB, engine.SWEEP_INTERVAL_SECONDS, engine.sweep_queued_batches),
    ),
    shutdown=(Hook("rules.engine", engine.shutdown),),
    usage_providers=(rule_usage,),
    telemetry_listeners=(engine.on_telemetry_committed,),
)
