"""All ORM models, imported here so that one metadata holds every table."""

from iiot.models.alerts import Alert, AlertHistory
from iiot.models.apikeys import ApiKey
from iiot.models.audit import AuditEvent, PlatformAuditEvent
from iiot.models.base import Base
from iiot.models.connectivity import DeviceAttribute, DeviceRpc
from iiot.models.devices import Device, DeviceCredential
from iiot.models.escalation import (
    AlertEscalation,
    EscalationPolicy,
    OnCallOverride,
    OnCallSchedule,
)
from iiot.models.invitations import Invitation
from iiot.models.mail import MailMessage
from iiot.models.quotas import TenantQuotaLock
from iiot.models.rules import Rule, RuleBatch, RuleState, WebhookDelivery
from iiot.models.telemetry import (
    TelemetryDay,
    TelemetryPoint,
    TelemetrySeries,
    TelemetrySeriesRemoved,
    TenantUsageDaily,
)
from iiot.models.tenancy import Tenant, Tier
from iiot.models.usage import DeviceUsageDaily, UsageDaily
from iiot.models.users import Membership, RefreshToken, User

__all__ = [
    "Alert",
    "AlertEscalation",
    "AlertHistory",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Device",
    "DeviceAttribute",
    "DeviceUsageDaily",
    "DeviceCredential",
    "EscalationPolicy",
    "DeviceRpc",
    "Invitation",
    "MailMessage",
    "OnCallOverride",
    "OnCallSchedule",
    "Membership",
    "PlatformAuditEvent",
    "RefreshToken",
    "Rule",
    "RuleBatch",
    "RuleState",
    "Tenant",
    "TelemetryPoint",
    "TelemetrySeries",
    "TelemetryDay",
    "TelemetrySeriesRemoved",
    "TenantQuotaLock",
    "TenantUsageDaily",
    "Tier",
    "UsageDaily",
    "User",
    "WebhookDelivery",
]
