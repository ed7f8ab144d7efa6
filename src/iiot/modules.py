"""What the application is made of: each domain describes itself as one `Module`.

A module lists its routers, periodic jobs, start-up and shutdown hooks, usage providers (the
SQL expressions of its usage figures) and event listeners. Nothing registers itself when
imported: an entry point (`iiot.app.MODULES` for `iiot serve`) lists the modules it runs, and
the runtime and the ASGI app are built from that list, so a module is part of the system
exactly when an entry point names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import uuid
    from datetime import date, datetime

    from fastapi import APIRouter
    from sqlalchemy import BindParameter, ColumnElement

    from iiot.events import TelemetryCommitted
    from iiot.http.fast_routes import FastRoute
    from iiot.runtime import Runtime

RuntimeFn = Callable[["Runtime"], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class UsageParameters:
    """What a usage figure may depend on: bound parameters of the one statement that reads
    every figure (`iiot.quotas.usage`), set per request from the tenant context and the clock.
    """

    tenant_id: BindParameter[uuid.UUID]
    now: BindParameter[datetime]
    today: BindParameter[date]  # the UTC date of `now`


# Usage figures by name, each a SQL scalar expression (a subquery on the module's own tables,
# built by its repositories from the parameters). They are read together with the tenant's
# limits in one statement, built once per process and run for every stats or quotas request.
UsageFigures = Mapping[str, "ColumnElement[Any]"]
UsageProvider = Callable[[UsageParameters], UsageFigures]
TelemetryListener = Callable[["Runtime", "TelemetryCommitted"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Job:
    """Runs every `interval_seconds` in the one process holding the job's advisory lock."""

    name: str
    interval_seconds: float
    fn: RuntimeFn


@dataclass(frozen=True, slots=True)
class Hook:
    """Runs once: at start-up (after the database is ready) or on a graceful stop."""

    name: str
    fn: RuntimeFn


@dataclass(frozen=True)
class Module:
    name: str
    api_routers: tuple[APIRouter, ...] = ()  # declared under /api/v1 (`API_PREFIX`)
    routers: tuple[APIRouter, ...] = ()  # mounted at the root
    # Lean twins of some of `api_routers`' routes, for their hottest requests (see
    # `iiot.http.fast_routes`).
    fast_api_routes: tuple[FastRoute, ...] = ()
    jobs: tuple[Job, ...] = ()
    startup: tuple[Hook, ...] = ()
    shutdown: tuple[Hook, ...] = ()
    usage_providers: tuple[UsageProvider, ...] = ()
    telemetry_listeners: tuple[TelemetryListener, ...] = ()


@dataclass(frozen=True)
class Wiring:
    """The assembled parts of a list of modules, in module order."""

    modules: tuple[Module, ...]

    @classmethod
    def of(cls, modules: Sequence[Module]) -> Wiring:
        names = [m.name for m in modules]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"modules listed twice: {sorted(duplicates)}")
        jobs = [j.name for m in modules for j in m.jobs]
        if len(jobs) != len(set(jobs)):
            raise ValueError("two jobs share a name (their advisory lock would be shared)")
        return cls(tuple(modules))

    def _each(self, attribute: str) -> Iterator[Any]:
        for module in self.modules:
            yield from getattr(module, attribute)

    @property
    def api_routers(self) -> list[APIRouter]:
        return list(self._each("api_routers"))

    @property
    def routers(self) -> list[APIRouter]:
        return list(self._each("routers"))

    @property
    def fast_api_routes(self) -> list[FastRoute]:
        return list(self._each("fast_api_routes"))

    @property
    def jobs(self) -> list[Job]:
        return list(self._each("jobs"))

    @property
    def startup(self) -> list[Hook]:
        return list(self._each("startup"))

    @property
    def shutdown(self) -> list[Hook]:
        return list(self._each("shutdown"))

    @property
    def usage_providers(self) -> list[UsageProvider]:
        return list(self._each("usage_providers"))

    @property
    def telemetry_listeners(self) -> list[TelemetryListener]:
        return list(self._each("telemetry_listeners"))
