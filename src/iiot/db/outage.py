"""Telling a database outage from a fault, and saying so once.

While PostgreSQL cannot be reached, every request that needs it answers 503
`database_unavailable` with `Retry-After`; the process logs one line when the outage starts
(not a traceback per request) and recovers by itself: the connection pool drops the broken
connections and the next request connects afresh.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from iiot.runtime import Runtime

log = logging.getLogger("iiot.db")

RETRY_AFTER_SECONDS = 5
# An outage is over when no failure was seen for this long; the next failure logs again.
QUIET_SECONDS = 30.0
# SQLSTATE classes of a lost or refused connection: 08 (connection exception) and 57P
# (operator intervention: admin or crash shutdown, cannot connect now).
_CONNECTION_STATES = ("08", "57P")


def _psycopg_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def is_database_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached (not a query's own fault)."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = _psycopg_error(exc)
    if isinstance(orig, psycopg.InterfaceError | ConnectionError):
        return True
    if isinstance(orig, psycopg.OperationalError):
        state = orig.sqlstate
        return state is None or state.startswith(_CONNECTION_STATES)
    return False


class OutageLog:
    """One log line per outage and process."""

    def __init__(self) -> None:
        self._last_failure: float | None = None

    def report(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._last_failure is None or now - self._last_failure > QUIET_SECONDS:
            reason = str(_psycopg_error(exc)).strip().splitlines()
            log.error(
                "database unavailable (%s); answering 503 until it is back",
                reason[0] if reason else type(exc).__name__,
            )
        self._last_failure = now


def outage_log(rt: Runtime) -> OutageLog:
    return rt.state.get(_new_outage_log)


def _new_outage_log(rt: Runtime) -> OutageLog:
    return OutageLog()
