"""All ORM models, imported here so that one metadata holds every table."""

from iiot.models.alerts import Alert, AlertHistory
from iiot.models.apikeys import ApiKey
from iiot.models.audit import AuditEvent, PlatformAuditEvent
from iiot.models.base import Base
from iiot.models.devices import Device, DeviceCredential
from iiot.models.invitations import Invitation
from iiot.models.mail import MailMessage
from iiot.models.quotas import TenantQuotaLock
from iiot.models.rules import Rule, RuleBatch, RuleState, WebhookDelivery
from iiot.models.telemetry import (
    TelemetryPoint,
    TelemetrySeries,
    TelemetrySeriesRemoved,
    TenantUsageDaily,
)
from iiot.models.tenancy import Tenant, Tier
from iiot.models.users import Membership, RefreshToken, User

__all__ = [
    "Alert",
    "AlertHistory",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Device",
    "DeviceCredential",
    "Invitation",
    "MailMessage",
    "Membership",
    "PlatformAuditEvent",
    "RefreshToken",
    "Rule",
    "RuleBatch",
    "RuleState",
    "Tenant",
    "TelemetryPoint",
    "TelemetrySeries",
    "TelemetrySeriesRemoved",
    "TenantQuotaLock",
    "TenantUsageDaily",
    "Tier",
    "User",
    "WebhookDelivery",
]
