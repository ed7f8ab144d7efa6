"""Wire format of the outbox's parked messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ParkedMessageOut(BaseModel):
    kind: Literal["mail", "webhook"]
    id: uuid.UUID
    to: str = Field(description="Recipient address (mail) or URL (webhook)")
    subject: str | None = Field(description="Subject of a mail; null for a webhook call")
    rule_id: uuid.UUID | None = Field(description="The rule whose webhook it was, if any")
    attempts: int
    last_error: str | None
    created_at: datetime


class ParkedMessages(BaseModel):
    messages: list[ParkedMessageOut]
