"""What other domains may know of alerts without reaching into the alert repository: the
channel on which alert openings and changes are announced, and how to read such a notice."""

from __future__ import annotations

import json
import uuid
from typing import Any

from iiot.alerts.repository import ALERTS_CHANNEL

__all__ = ["ALERTS_CHANNEL", "alert_notice"]


def alert_notice(payload: str) -> tuple[uuid.UUID, dict[str, Any]] | None:
    """The tenant and the event (alert id, state, event, severity) of a notice on
    `ALERTS_CHANNEL`; None for a malformed payload."""
    try:
        note = json.loads(payload)
        tenant_id = uuid.UUID(note["t"])
    except (ValueError, KeyError, TypeError):
        return None
    return tenant_id, {k: v for k, v in note.items() if k != "t"}
