"""The objects one running process shares: settings, database, token codec, rate counters,
the modules it runs, and the per-process state those modules keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request

from iiot.auth.tokens import TokenCodec
from iiot.config import Settings
from iiot.db.session import Database
from iiot.modules import Module, Wiring
from iiot.quotas.ratelimit import RateCounter, make_rate_counter

T = TypeVar("T")


class ProcessState:
    """One instance per runtime of each state factory (caches, queues, workers).

    `rt.state.get(factory)` calls `factory(rt)` the first time and returns the same object
    afterwards; the factory (a class or module-level function taking the runtime) is the key,
    so the result is typed by the factory and no string keys are shared between domains.
    """

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._items: dict[Callable[[Runtime], Any], Any] = {}

    def get(self, factory: Callable[[Runtime], T]) -> T:
        try:
            found: T = self._items[factory]
        except KeyError:
            found = self._items[factory] = factory(self._rt)
        return found

    def peek(self, factory: Callable[[Runtime], T]) -> T | None:
        """The instance if one was made, without making one (for shutdown hooks)."""
        found: T | None = self._items.get(factory)
        return found


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: TokenCodec
    rate: RateCounter
    wiring: Wiring = field(default_factory=lambda: Wiring(()))
    state: ProcessState = field(init=False)

    def __post_init__(self) -> None:
        self.state = ProcessState(self)

    @classmethod
    def build(
        cls, settings: Settings, database_url: str, modules: Sequence[Module] = ()
    ) -> Runtime:
        """A runtime running `modules` (empty for command-line tools that serve nothing)."""
        return cls(
            settings=settings,
            db=Database(database_url, pool_size=settings.database_pool_size),
            tokens=TokenCodec(
                settings.resolved_jwt_secret(),
                algorithm=settings.jwt_algorithm,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            rate=make_rate_counter(settings.redis_url),
            wiring=Wiring.of(modules),
        )


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
