"""Alert escalation: policies, on-call schedules and the job that escalates."""

from iiot.escalation import job
from iiot.escalation.api import policies, schedules
from iiot.modules import Job, Module

MODULE = Module(
    name="escalation",
    api_routers=(policies, schedules),
    jobs=(Job(job.JOB_NAME, job.JOB_INTERVAL_SECONDS, job.run),),
)
