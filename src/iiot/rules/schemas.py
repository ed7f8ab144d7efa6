"""Wire format of rules. Each rule type has its own condition model (a discriminated union),
so a condition that does not fit its type, an unknown operator or function is a 422.

The original platform's spelling is accepted on input and stored in ours (the canonical form,
the one every response shows): `conditions` for `condition`, a threshold's `duration` for
`duration_seconds`, a statistical `window` for `window_seconds`, an e-mail action's `to_emails`
for `recipients`, and severity `warning` for `medium`."""

from __future__ import annotations

import math
import string
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AnyUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from iiot.alerts.schemas import SeverityIn

Operator = Literal[">", "<", ">=", "<=", "==", "!="]
DEFAULT_STATISTICAL_WINDOW_SECONDS = 3600
MIN_WEBHOOK_SECRET_LENGTH = 16
StatFunction = Literal["avg", "min", "max", "stddev", "count"]
TelemetryKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]

MESSAGE_PLACEHOLDERS = frozenset({"key", "value", "threshold", "device_name", "rule_name"})
MAX_TEMPLATE_LENGTH = 500
MAX_WINDOW_SECONDS = 7 * 86400


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class ThresholdCondition(_Strict):
    key: TelemetryKey
    operator: Operator
    value: float
    duration_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW_SECONDS,
        validation_alias=AliasChoices("duration_seconds", "duration"),
    )

    _finite_value = field_validator("value")(_finite)


class ComparisonCondition(_Strict):
    key1: TelemetryKey
    operator: Operator
    key2: TelemetryKey


class StatisticalCondition(_Strict):
    key: TelemetryKey
    function: StatFunction
    window_seconds: int = Field(
        default=DEFAULT_STATISTICAL_WINDOW_SECONDS,
        ge=1,
        le=MAX_WINDOW_SECONDS,
        validation_alias=AliasChoices("window_seconds", "window"),
    )
    operator: Operator
    value: float

    _finite_value = field_validator("value")(_finite)


class TimeBasedCondition(_Strict):
    check: Literal["device_offline"]
    offline_after_seconds: int = Field(ge=10, le=30 * 86400)


def check_template(template: str) -> str:
    """Only the known placeholders, by plain name (no attribute, index or format spec)."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template: {exc}") from exc
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in MESSAGE_PLACEHOLDERS or spec or conversion:
            allowed = ", ".join("{" + p + "}" for p in sorted(MESSAGE_PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{name}}}: use {allowed}")
    return template


class AlertAction(_Strict):
    type: Literal["alert"]
    severity: SeverityIn | None = Field(default=None, description="Defaults to the rule's")
    message: str = Field(
        default="{rule_name}: {key} = {value} on {device_name}",
        min_length=1,
        max_length=MAX_TEMPLATE_LENGTH,
    )

    _template = field_validator("message")(check_template)


class WebhookAction(_Strict):
    type: Literal["webhook"]
    url: AnyUrl = Field(description="http(s) URL; private addresses are refused")
    secret: str | None = Field(
        default=None,
        min_length=MIN_WEBHOOK_SECRET_LENGTH,
        max_length=128,
        exclude=True,
        description=(
            "Your own HMAC key for this URL's signatures (write-only; never returned). "
            "Without it the rule's generated key signs."
        ),
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: AnyUrl) -> AnyUrl:
        if url.scheme not in ("http", "https"):
            raise ValueError("webhook URL must be http or https")
        if not url.host:
            raise ValueError("webhook URL needs a host")
        if url.username or url.password:
            raise ValueError("webhook URL must not carry credentials")
        if len(str(url)) > 2048:
            raise ValueError("webhook URL is too long")
        return url


class EmailAction(_Strict):
    type: Literal["email"]
    recipients: list[EmailStr] = Field(
        min_length=1, max_length=20, validation_alias=AliasChoices("recipients", "to_emails")
    )


Action = Annotated[AlertAction | WebhookAction | EmailAction, Field(discriminator="type")]


class _RuleFields(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    device_id: uuid.UUID | None = Field(default=None, description="Apply to this device only")
    device_type: str | None = Field(
        default=None, min_length=1, max_length=64, description="Apply to devices of this type"
    )
    enabled: bool = True
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher runs first")
    cooldown_seconds: int = Field(default=0, ge=0, le=30 * 86400)
    severity: SeverityIn = "medium"
    auto_resolve: bool = False
    actions: list[Action] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _one_target(self) -> _RuleFields:
        if self.device_id is not None and self.device_type is not None:
            raise ValueError("give device_id or device_type, not both")
        return self

    @model_validator(mode="after")
    def _one_secret_per_url(self) -> _RuleFields:
        secrets: dict[str, str] = {}
        for action in self.actions:
            if not isinstance(action, WebhookAction) or action.secret is None:
                continue
            if secrets.setdefault(str(action.url), action.secret) != action.secret:
                raise ValueError("webhook actions to the same URL must share one secret")
        return self

    def webhook_secrets(self) -> dict[str, str]:
        """The caller's own signing keys, by webhook URL."""
        return {
            str(a.url): a.secret
            for a in self.actions
            if isinstance(a, WebhookAction) and a.secret is not None
        }


_CONDITION = AliasChoices("condition", "conditions")


class ThresholdRule(_RuleFields):
    rule_type: Literal["threshold"]
    condition: ThresholdCondition = Field(validation_alias=_CONDITION)


class ComparisonRule(_RuleFields):
    rule_type: Literal["comparison"]
    condition: ComparisonCondition = Field(validation_alias=_CONDITION)


class StatisticalRule(_RuleFields):
    rule_type: Literal["statistical"]
    condition: StatisticalCondition = Field(validation_alias=_CONDITION)


class TimeBasedRule(_RuleFields):
    rule_type: Literal["time_based"]
    condition: TimeBasedCondition = Field(validation_alias=_CONDITION)


RuleIn = Annotated[
    ThresholdRule | ComparisonRule | StatisticalRule | TimeBasedRule,
    Field(discriminator="rule_type"),
]
Condition = ThresholdCondition | ComparisonCondition | StatisticalCondition | TimeBasedCondition
CONDITION_MODELS: dict[str, type[BaseModel]] = {
    "threshold": ThresholdCondition,
    "comparison": ComparisonCondition,
    "statistical": StatisticalCondition,
    "time_based": TimeBasedCondition,
}


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    rule_type: str
    condition: dict[str, Any]
    device_id: uuid.UUID | None
    device_type: str | None
    enabled: bool
    priority: int
    cooldown_seconds: int
    severity: str
    auto_resolve: bool
    actions: list[dict[str, Any]]
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class RuleSaved(RuleOut):
    webhook_secret: str | None = Field(
        default=None,
        description="HMAC key of the rule's webhook signatures, shown only when first created",
    )


class RuleList(BaseModel):
    rules: list[RuleOut]
    total: int


class ParkedBatchOut(BaseModel):
    """A committed telemetry batch the rules engine gave up on after repeated failures."""

    id: int
    created_at: datetime
    attempts: int
    last_error: str | None
    parked_at: datetime


class ParkedBatchList(BaseModel):
    batches: list[ParkedBatchOut]


class RuleTestResult(BaseModel):
    device_id: uuid.UUID
    device_name: str
    matched: bool | None = Field(description="null when there is not enough data")
    key: str | None
    value: float | None
    threshold: float | None
    would_fire: bool = Field(description="matched, and the rule is enabled and not cooling down")


class RuleTestReport(BaseModel):
    rule_id: uuid.UUID
    evaluated_at: datetime
    results: list[RuleTestResult]
