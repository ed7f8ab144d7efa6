"""What resolving a caller reads: exactly that, each in one statement.

- `read_user`: a signed-in user's account (platform table).
- `read_caller_in_tenant` / `CallerLookup.in_tenant`: the user, their membership of one tenant
  (through the SECURITY DEFINER `iiot_user_memberships_in_tenant()`: the application role
  cannot read another tenant's membership rows), that tenant's status and its effective
  limits, in one round trip. It reads no tenant-owned row directly, so it gives the same answer
  alone (`read_caller_in_tenant`) and in a session already scoped to that tenant
  (`CallerLookup.in_tenant`, for `TenantTransaction`).
- `caller_reading(columns)` / `read_as_caller`: the same look-up and, for a caller admitted to
  the tenant, tenant-owned values read with the tenant set (row-level security in force), in
  one statement that is its own transaction (the hottest reads: stats and quotas).
- `read_api_key`: the one live API key with a digest and its tenant's status (SECURITY
  DEFINER `iiot_api_key_by_token()`).

`read_user`, `read_caller_in_tenant` and `read_api_key` each send one statement that is its own
transaction (`Database.one_row`): resolving a caller costs one round trip, without a BEGIN, a
COMMIT or an ORM session.
- `ApiKeyUse.touch`: the key's `last_used_at`, written at most once per interval.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    LargeBinary,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    column,
    func,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from iiot.db.driver import DriverStatement
from iiot.db.repository import SystemRepository, TenantRepository
from iiot.db.session import Database, tenant_scope
from iiot.models.apikeys import ApiKey
from iiot.quotas.limits import LIMIT_FIELDS, EffectiveLimits
from iiot.tenancy.roles import Role


@dataclass(frozen=True, slots=True)
class CallerUser:
    id: uuid.UUID
    email: str
    is_system_admin: bool
    status: str  # active | invited | disabled


@dataclass(frozen=True, slots=True)
class CallerInTenant:
    user: CallerUser
    # None: the tenant does not exist or is deleted (then there is no membership either).
    tenant_status: str | None
    # The membership, when the user has one in this (existing) tenant.
    role: Role | None
    membership_status: str | None  # active | invited
    limits: EffectiveLimits | None

    @property
    def is_active_member(self) -> bool:
        return self.role is not None and self.membership_status == "active"


@dataclass(frozen=True, slots=True)
class LiveApiKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    tenant_status: str


_USER = text("select id, email, is_system_admin, status from users where id = :user_id")

# The tenant's effective limits, in `LIMIT_FIELDS` order: its own value over its tier's.
_IN_TENANT = text("""
select u.id, u.email, u.is_system_admin, u.status,
    t.status as tenant_status, m.role, m.status as membership_status,
    coalesce(t.max_devices, tr.max_devices) as max_devices,
    coalesce(t.max_users, tr.max_users) as max_users,
    coalesce(t.max_telemetry_points_per_day, tr.max_telemetry_points_per_day)
        as max_telemetry_points_per_day,
    coalesce(t.max_retention_days, tr.max_retention_days) as max_retention_days,
    coalesce(t.api_requests_per_minute, tr.api_requests_per_minute) as api_requests_per_minute,
    coalesce(t.max_device_messages_per_minute, tr.max_device_messages_per_minute)
        as max_device_messages_per_minute,
    coalesce(t.max_points_per_second, tr.max_points_per_second) as max_points_per_second
from users u
left join tenants t on t.id = :tenant_id and t.deleted_at is null
left join tiers tr on tr.name = t.tier
left join lateral (
    select x.role, x.status from iiot_user_memberships_in_tenant(u.id, :tenant_id) x
    where t.id is not null
) m on true
where u.id = :user_id
""")

_CALLER_COLUMNS = (
    column("id", Uuid),
    column("email", String),
    column("is_system_admin", Boolean),
    column("status", String),
    column("tenant_status", String),
    column("role", String),
    column("membership_status", String),
    *(column(name, Integer) for name in LIMIT_FIELDS),
)
# The parameters of a caller reading besides the columns' own: who asks, in which tenant.
CALLER_PARAMETERS = frozenset({"user_id", "tenant_id"})

_API_KEY = text(
    "select id, tenant_id, scopes, expires_at, last_used_at, tenant_status "
    "from iiot_api_key_by_token(:digest)"
)


def _caller_in_tenant(row: Any) -> CallerInTenant:
    """A `CallerInTenant` from the columns of `_IN_TENANT`, in its order."""
    found = row[4] is not None
    return CallerInTenant(
        user=CallerUser(*row[:4]),
        tenant_status=row[4],
        role=Role(row[5]) if row[5] is not None else None,
        membership_status=row[6],
        limits=EffectiveLimits(**dict(zip(LIMIT_FIELDS, row[7:14], strict=True)))
        if found
        else None,
    )


@dataclass(frozen=True, slots=True)
class CallerReading:
    """One statement: the caller in a tenant (as `CallerLookup.in_tenant`) and, when the
    caller is admitted to the tenant's data, the named tenant-owned values."""

    statement: DriverStatement
    names: tuple[str, ...]


def caller_reading(
    columns: Mapping[str, ColumnElement[Any]], parameters: frozenset[str]
) -> CallerReading:
    """The statement resolving the caller (`user_id`) in `tenant_id` and reading `columns`
    (built with `bindparam("tenant_id")` and the other `parameters` their runs supply).

    Each column is read in a CASE whose condition admits the caller (an active user; an
    existing tenant; an active member of it, unless it is suspended, or a system admin) and sets
    the tenant (`tenant_scope`), so it is read only for an admitted caller and only with the
    tenant's row-level security in force. Nothing tenant-owned is read before: the caller's
    membership comes through the SECURITY DEFINER `iiot_user_memberships_in_tenant()`. The
    caller's own role is left to the resolver, which decides the answer.
    """
    clash = set(columns) & ({c.name for c in _CALLER_COLUMNS} | {"admitted"})
    if clash:
        raise ValueError(f"columns named like the caller's: {sorted(clash)}")
    tenant_id = bindparam("tenant_id", type_=Uuid)
    caller = (
        _IN_TENANT.bindparams(tenant_id, bindparam("user_id", type_=Uuid))
        .columns(*_CALLER_COLUMNS)
        .subquery("caller")
    )
    c = caller.c
    admitted = and_(
        c.status == "active",
        c.tenant_status.is_not(None),
        or_(
            c.is_system_admin,
            and_(
                c.role.is_not(None),
                c.membership_status == "active",
                c.tenant_status != "suspended",
            ),
        ),
    )
    in_scope = and_(admitted, tenant_scope(tenant_id).is_not(None))
    stmt = select(
        *(c[col.name] for col in _CALLER_COLUMNS),
        admitted.label("admitted"),
        *(case((in_scope, value), else_=null()).label(name) for name, value in columns.items()),
    ).select_from(caller)
    return CallerReading(
        statement=DriverStatement.compile(stmt, CALLER_PARAMETERS | parameters),
        names=tuple(columns),
    )


async def read_as_caller(
    db: Database,
    reading: CallerReading,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    values: Mapping[str, Any],
) -> tuple[CallerInTenant | None, dict[str, Any] | None]:
    """The caller in the tenant (None: no such user) and the reading's values by name (None
    when the caller was not admitted), from one statement in a transaction of its own."""
    row = await db.one_row(
        reading.statement, {**values, "user_id": user_id, "tenant_id": tenant_id}
    )
    if row is None:
        return None, None
    width = len(_CALLER_COLUMNS)
    read = row[width]
    return _caller_in_tenant(row), (
        dict(zip(reading.names, row[width + 1 :], strict=True)) if read else None
    )


def _one_statement(
    statement: TextClause, parameters: dict[str, TypeEngine[Any]], *columns: ColumnElement[Any]
) -> DriverStatement:
    """A textual SELECT with its `:name` parameters typed, compiled for `Database.one_row`."""
    typed = statement.bindparams(*(bindparam(name, type_=t) for name, t in parameters.items()))
    found = typed.columns(*columns).subquery("found")
    return DriverStatement.compile(select(*found.c), frozenset(parameters))


_USER_READ = _one_statement(
    _USER,
    {"user_id": Uuid()},
    column("id", Uuid),
    column("email", String),
    column("is_system_admin", Boolean),
    column("status", String),
)
_API_KEY_READ = _one_statement(
    _API_KEY,
    {"digest": LargeBinary()},
    column("id", Uuid),
    column("tenant_id", Uuid),
    column("scopes", ARRAY(String)),
    column("expires_at", DateTime(timezone=True)),
    column("last_used_at", DateTime(timezone=True)),
    column("tenant_status", String),
)
_NOTHING_MORE = caller_reading({}, frozenset())


async def read_user(db: Database, user_id: uuid.UUID) -> CallerUser | None:
    """The user's account, in one statement that is its own transaction."""
    row = await db.one_row(_USER_READ, {"user_id": user_id})
    return None if row is None else CallerUser(*row)


async def read_caller_in_tenant(
    db: Database, user_id: uuid.UUID, tenant_id: uuid.UUID
) -> CallerInTenant | None:
    """The user in the tenant (as `CallerLookup.in_tenant`; None when there is no such user),
    in one statement that is its own transaction."""
    found, _ = await read_as_caller(db, _NOTHING_MORE, user_id, tenant_id, {})
    return found


async def read_api_key(db: Database, token_digest: bytes) -> LiveApiKey | None:
    """The live API key with this digest and its tenant's status, in one statement that is
    its own transaction."""
    row = await db.one_row(_API_KEY_READ, {"digest": token_digest})
    if row is None:
        return None
    return LiveApiKey(
        id=row[0],
        tenant_id=row[1],
        scopes=frozenset(row[2]),
        expires_at=row[3],
        last_used_at=row[4],
        tenant_status=row[5],
    )


class CallerLookup(SystemRepository):
    async def in_tenant(self, user_id: uuid.UUID, tenant_id: uuid.UUID) -> CallerInTenant | None:
        """None when there is no such user."""
        row = (
            await self.session.execute(_IN_TENANT, {"user_id": user_id, "tenant_id": tenant_id})
        ).first()
        return None if row is None else _caller_in_tenant(row)


class ApiKeyUse(TenantRepository[ApiKey]):
    model = ApiKey

    async def touch(self, key_id: uuid.UUID, *, stale_seconds: int) -> None:
        """Set last_used_at unless it was set within `stale_seconds` (one write per interval)."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.tenant_id == self.ctx.tenant_id,
                ApiKey.id == key_id,
                (ApiKey.last_used_at.is_(None))
                | (ApiKey.last_used_at < datetime.now(UTC) - timedelta(seconds=stale_seconds)),
            )
            .values(last_used_at=func.now())
        )
