"""Device tokens in URL paths (`/api/v1/{token}/telemetry`) never reach a log line.

`uvicorn_log_config()` is uvicorn's logging configuration with `TokenPathFilter` on every
handler (the access log and the default one) and a root handler, so the access log line, the
application's own error logs and anything else that prints a request path show
`/api/v1/***/telemetry` instead of the token.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

# `/api/v1/<one segment>/telemetry|attributes|rpc[/…]`: the device API's shape. A route of
# the API with that shape would have its second segment hidden too, which is harmless.
_TOKEN_PATH = re.compile(r"(/api/v1/)[^/?#\s\"]+(?=/(?:telemetry|attributes|rpc)(?:[/?#\s\"]|$))")
# Anything shaped like one of iiot's device tokens, wherever it appears in a path.
_DEVICE_TOKEN = re.compile(r"dt_[A-Za-z0-9_\-]{8,}")
REDACTED = "***"


def redact_paths(text: str) -> str:
    """`text` with every device token in a device-API path replaced by `***`."""
    if "dt_" in text:
        text = _DEVICE_TOKEN.sub("dt_" + REDACTED, text)
    if "/api/v1/" not in text:
        return text
    return _TOKEN_PATH.sub(r"\g<1>" + REDACTED, text)


class TokenPathFilter(logging.Filter):
    """Rewrites a record so that it carries no device token (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            record.args = (args[0], args[1], redact_paths(str(args[2])), args[3], args[4])
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the formatter
            return True
        redacted = redact_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, with device tokens redacted everywhere."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_device_tokens"] = {"()": TokenPathFilter}
    for handler in config.get("handlers", {}).values():
        handler.setdefault("filters", []).append("redact_device_tokens")
    # Application loggers propagate to the root: give it the default handler (warnings and
    # errors, as Python prints them without any configuration) so they are redacted too.
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
