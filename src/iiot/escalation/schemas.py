"""Wire format of escalation policies and on-call schedules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    NaiveDatetime,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from iiot.alerts.schemas import SeverityIn

Channel = Literal["email", "webhook"]
SCHEDULE_PREFIX = "schedule:"
MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_OVERRIDE_DAYS = 90

_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def recipient_kind(value: str) -> Literal["email", "webhook", "schedule"]:
    """What a recipient string names: an e-mail address, a webhook URL or an on-call schedule."""
    if value.startswith(SCHEDULE_PREFIX):
        return "schedule"
    if value.startswith(("http://", "https://")):
        return "webhook"
    return "email"


def schedule_id_of(value: str) -> uuid.UUID:
    return uuid.UUID(value.removeprefix(SCHEDULE_PREFIX))


def _check_recipient(value: str) -> str:
    kind = recipient_kind(value)
    if kind == "schedule":
        try:
            return SCHEDULE_PREFIX + str(schedule_id_of(value))
        except ValueError as exc:
            raise ValueError("schedule:<id> needs a schedule id (a UUID)") from exc
    if kind == "webhook":
        url = AnyUrl(value)
        if not url.host or url.username or url.password:
            raise ValueError("webhook URL needs a host and no credentials")
        return str(url)
    try:
        return _EMAIL.validate_python(value)
    except ValidationError as exc:
        raise ValueError(
            "a recipient is an e-mail address, an http(s) URL or schedule:<schedule id>"
        ) from exc


Recipient = Annotated[str, StringConstraints(min_length=3, max_length=2048, strip_whitespace=True)]


class Tier(_Strict):
    delay_minutes: int = Field(
        ge=0,
        le=MAX_DELAY_MINUTES,
        description="Minutes after the alert was raised (first tier) or after the previous tier",
    )
    channels: list[Channel] = Field(min_length=1, max_length=2)
    recipients: list[Recipient] = Field(
        min_length=1,
        max_length=20,
        description="E-mail addresses, webhook URLs, or `schedule:<id>` (who is on call)",
    )

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, values: list[str]) -> list[str]:
        checked = [_check_recipient(v) for v in values]
        if len(set(checked)) != len(checked):
            raise ValueError("recipients must not repeat")
        return checked

    @model_validator(mode="after")
    def _channels_fit_recipients(self) -> Tier:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels must not repeat")
        kinds = {recipient_kind(r) for r in self.recipients}
        if "webhook" in kinds and "webhook" not in self.channels:
            raise ValueError("a webhook URL recipient needs the webhook channel")
        if kinds & {"email", "schedule"} and "email" not in self.channels:
            raise ValueError("e-mail and schedule recipients need the email channel")
        if "webhook" in self.channels and "webhook" not in kinds:
            raise ValueError("the webhook channel needs a webhook URL recipient")
        if "email" in self.channels and not kinds & {"email", "schedule"}:
            raise ValueError("the email channel needs an e-mail or schedule recipient")
        return self


class PolicyIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    severities: list[SeverityIn] = Field(
        min_length=1, max_length=5, description="Alert severities this policy escalates"
    )
    enabled: bool = True
    tiers: list[Tier] = Field(min_length=1, max_length=10)

    @field_validator("severities")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("severities must not repeat")
        return values


class PolicyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    severities: list[str]
    enabled: bool
    tiers: list[dict[str, Any]]
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class PolicySaved(PolicyOut):
    webhook_secret: str | None = Field(
        default=None,
        description="HMAC key of this policy's webhook calls, shown only when first created",
    )


class PolicyList(BaseModel):
    policies: list[PolicyOut]
    total: int


class Participant(_Strict):
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)


class ScheduleIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    time_zone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    rotation_start: NaiveDatetime = Field(
        description="Wall-clock time of the first hand-over in `time_zone` (no offset); "
        "the next participant takes over at the same local time every week"
    )
    participants: list[Participant] = Field(min_length=1, max_length=50)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value


class OverrideIn(_Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _period(self) -> OverrideIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if (self.ends_at - self.starts_at).days >= MAX_OVERRIDE_DAYS:
            raise ValueError(f"an override lasts less than {MAX_OVERRIDE_DAYS} days")
        return self


class OverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    email: str
    name: str | None
    created_at: datetime


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    time_zone: str
    rotation_start: datetime
    participants: list[dict[str, Any]]
    # Overrides that have not ended yet.
    overrides: list[OverrideOut]
    created_at: datetime
    updated_at: datetime


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]
    total: int


class OnCallOut(BaseModel):
    schedule_id: uuid.UUID
    at: datetime
    email: str
    name: str | None
    source: Literal["rotation", "override"]
    override_id: uuid.UUID | None
    # The period this person is on call for, as far as the schedule knows now.
    since: datetime
    until: datetime
