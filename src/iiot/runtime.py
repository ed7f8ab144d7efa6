"""The objects one running process shares: settings, database, token codec, rate limiter,
the modules it runs, and the per-process state those modules keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any, TypeVar

from iiot.config import Settings
from iiot.db.session import Database
from iiot.identity.tokens import TokenCodec
from iiot.modules import Module, Wiring
from iiot.quotas.ratelimit import RateLimiter, make_rate_limiter

if TYPE_CHECKING:
    from starlette.requests import Request

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
    rate: RateLimiter
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
            db=Database(
                database_url,
                pool_size=settings.database_pool_size,
                direct_url=settings.database_direct_url,
                pooled=settings.database_pooled,
            ),
            tokens=TokenCodec(
                settings.resolved_jwt_secret(),
                algorithm=settings.jwt_algorithm,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            rate=make_rate_limiter(settings.redis_url),
            wiring=Wiring.of(modules),
        )


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[IPv4Network | IPv6Network, ...]:
    return tuple(ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip())


def _trusted(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def forwarded_client(peer: str | None, forwarded_for: str | None, trusted_spec: str) -> str | None:
    """The client address: the peer, or, when the peer is a trusted proxy, the nearest
    address in `X-Forwarded-For` that is not itself a trusted proxy (read from the right, so
    that a client cannot choose its address by sending the header itself)."""
    networks = _networks(trusted_spec)
    if peer is None or not forwarded_for or not networks or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ip_address(hop)
        except ValueError:
            break  # a malformed hop: keep the last address a trusted proxy vouched for
        client = hop
        if not _trusted(hop, networks):
            break
    return client


def client_ip(request: Request) -> str | None:
    """The caller's address; `X-Forwarded-For` counts only from IIOT_TRUSTED_PROXIES."""
    peer = request.client.host if request.client else None
    spec = get_runtime(request).settings.trusted_proxies
    if not spec:
        return peer
    return forwarded_client(peer, request.headers.get("x-forwarded-for"), spec)
