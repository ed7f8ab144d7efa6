"""The one retry policy of the outbox: backoff, lease, and when a message is parked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from iiot.models.base import utcnow

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
# While a message is being handed over its row is leased, so no other process sends it too.
LEASE_SECONDS = 60


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 60 s, 120 s ... capped at one hour."""
    return timedelta(
        seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    )


def lease_until(now: datetime) -> datetime:
    return now + timedelta(seconds=LEASE_SECONDS)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What becomes of a message after an attempt.

    `state`: `sent` (handed over), `logged` (the development mail outbox: written to the log,
    nothing sent), `retrying` (due again at `next_attempt_at`) or `parked` (given up)."""

    state: str
    at: datetime
    error: str | None = None
    next_attempt_at: datetime | None = None


def outcome(attempts: int, error: str | None, *, logged: bool = False) -> Outcome:
    """The outcome of attempt number `attempts` that failed with `error` (None: it worked)."""
    now = utcnow()
    if error is None:
        return Outcome("logged" if logged else "sent", now)
    error = error[:500]
    if attempts >= MAX_ATTEMPTS:
        return Outcome("parked", now, error)
    return Outcome("retrying", now, error, now + retry_delay(attempts))


@dataclass(frozen=True, slots=True)
class Parked:
    """A message given up on, as the tenant's admins see it (no body, no secret)."""

    kind: str
    id: uuid.UUID
    to: str
    subject: str | None
    rule_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    created_at: datetime
