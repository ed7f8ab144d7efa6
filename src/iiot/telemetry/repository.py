"""Telemetry writes, the daily usage counter, and the partition functions.

Points are stored against a per-tenant series dictionary: `telemetry_series` names each
`(device, key)` once, and `telemetry` rows are `(tenant_id, series_id, ts, values)`, so rows
and index entries stay narrow and a series' points are appended next to each other.

The write is the hot path, so it skips the ORM and the session: `TelemetryWriter` runs its
own short transaction on a pooled psycopg connection, opened exactly like a tenant session
(`app.tenant_id` set for the transaction, so row-level security applies). Series ids are
cached per process; a batch with a `(device, key)` this process has not seen first resolves
it (`RESOLVE_SERIES`: creates the missing series, returns the ids). Then one statement:

- expands the points from one JSON document of columns (`json_to_record` + `unnest`;
  orjson writes datetimes in C, where adapting Python lists element by element costs
  several times more; each distinct timestamp is sent once and all-null columns not at all,
  which took a batch of 1,000 points from ~61 kB to ~19 kB),
- re-checks the device token's credential (so a token revoked a moment ago is refused even
  if this process's cache has not heard yet) or, for a member, that every device exists, and
  locks the batch's devices once (`FOR KEY SHARE`: a device cannot be deleted before this
  transaction ends; the points carry no per-row foreign key),
- checks that every cached series id still exists (a device deleted and re-created under the
  same id has new series; the writer then resolves again and retries),
- inserts the points: with a plain INSERT for a request of more points than the group
  write takes (`TelemetryWriter.write`: a re-sent point fails the statement, which is then
  rolled back and run again with `ON CONFLICT DO NOTHING`, see `WRITE_NEW_AS_DEVICE`), and
  with `ON CONFLICT DO NOTHING` otherwise (a re-sent point is a no-op, counted as duplicate),
- adds the number actually inserted to `tenant_usage_daily` with one atomic upsert that
  applies only while the sum stays within the day's limit (read in the same statement),
- queues the batch for the rules engine (`rule_batches`) when the tenant has an enabled
  telemetry rule, so an acknowledged batch is evaluated even if this process dies.

The caller commits only if the credential held, no device was missing and the counter took
the points; otherwise it rolls back, so the counter never overshoots. `COPY FROM` is not an
option: PostgreSQL refuses it into a table with row-level security. Measured per 1,000-point
batch (database backend CPU, alternating in one run on the shared machine): `COPY` into a
temporary table then `INSERT … SELECT … ON CONFLICT` cost more than this statement (11.7-11.9
ms against 8.9-10.8 ms, plus the client's row-by-row `write_row`); the same columns sent as
typed arrays cost about the same in the database but 7-10 ms in this process to adapt,
element by element; the plain INSERT took this statement from 8.2-10.1 ms to 5.7-6.8 ms.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection, AsyncRawCursor
from psycopg.errors import UniqueViolation
from psycopg.pq import TransactionStatus
from sqlalchemy import ColumnElement, ScalarSelect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from iiot.db.repository import SystemRepository, TenantRepository
from iiot.db.session import set_tenant_sql
from iiot.db.watch import watched_sql
from iiot.models.telemetry import TenantUsageDaily
from iiot.telemetry.schemas import Rows
from iiot.tenancy.context import TenantContext

# Creates the series of existing devices that are missing and returns every asked-for id.
# A series created concurrently by another transaction after this statement's snapshot is
# neither created nor returned here; the writer asks again.
RESOLVE_SERIES = """
with want as (
    select * from unnest(%(devices)s::uuid[], %(keys)s::text[]) as w(device_id, key)
),
made as (
    insert into telemetry_series (tenant_id, device_id, key)
    select %(tenant_id)s, w.device_id, w.key
    from want w
    where exists (
        select 1 from devices dv where dv.tenant_id = %(tenant_id)s and dv.id = w.device_id
    )
    on conflict do nothing
    returning id, device_id, key
)
select id, device_id, key from made
union all
select s.id, s.device_id, s.key
from want w
join telemetry_series s
  on s.tenant_id = %(tenant_id)s and s.device_id = w.device_id and s.key = w.key
"""


def _rules_document(c: str) -> str:
    """The rules engine's document of a request's columns `c` (`rule_batches.points`): every
    row's series, timestamp and value columns in full (the ingest document sends each
    timestamp once and leaves out columns that are all null)."""
    nulls = f"array[cardinality({c}.s)]"
    return f"""json_build_object(
        's', {c}.s,
        't', (select array_agg({c}.t[z.k] order by z.o)
              from unnest({c}.ti) with ordinality as z(k, o)),
        'n', coalesce({c}.n, array_fill(null::float8, {nulls})),
        'b', coalesce({c}.b, array_fill(null::bool, {nulls})),
        'x', coalesce({c}.x, array_fill(null::text, {nulls})),
        'dv', {c}.dv,
        'ds', {c}.ds
    )"""  # noqa: S608 - `c` is a fixed alias of the statement, never input


# Shared by both write statements: the tenant's daily point limit, and the day's counter taking
# `total.inserted` only while it stays within that limit (otherwise nothing is counted and the
# caller rolls back), so the quota rule is written once.
_DAILY_LIMIT = """
with lim as (
    select coalesce(t.max_telemetry_points_per_day, tr.max_telemetry_points_per_day)::bigint
        as per_day
    from tenants t join tiers tr on tr.name = t.tier
    where t.id = %(tenant_id)s
),
"""
_COUNT_TODAY = """
counted as (
    insert into tenant_usage_daily as u (tenant_id, day, telemetry_points)
    select %(tenant_id)s, %(day)s, total.inserted
    from total, lim
    where total.inserted > 0 and (lim.per_day is null or total.inserted <= lim.per_day)
    on conflict (tenant_id, day) do update
        set telemetry_points = u.telemetry_points + excluded.telemetry_points
        where (select per_day from lim) is null
           or u.telemetry_points + excluded.telemetry_points <= (select per_day from lim)
    returning u.telemetry_points
),
"""

_WRITE_HEAD = (
    _DAILY_LIMIT  # noqa: S608 - fixed fragments, no input
    + """
cols as (
    select * from json_to_record(%(columns)s::json) as c(
        s int8[], t timestamptz[], ti int4[], n float8[], b bool[], x text[], u text[],
        q text[], dv uuid[], ds int8[]
    )
),
"""
)
# A device token writes only its own device: its credential row vouches for the device, and
# the device, the credential and the tenant are re-checked here, inside the transaction.
_GUARD_DEVICE = """
guard as (
    select true as ok
    from device_credentials c
    join devices d on d.tenant_id = c.tenant_id and d.id = c.device_id
    join tenants t on t.id = c.tenant_id
    where c.tenant_id = %(tenant_id)s and c.token_hash = %(token_digest)s
      and c.revoked_at is null and d.status <> 'disabled'
      and t.status <> 'suspended' and t.deleted_at is null
    for key share of d
),
missing as (select '{}'::uuid[] as ids),
"""
# A member may name any device of the tenant; unknown ones (or another tenant's, invisible
# under row-level security) refuse the whole request.
_GUARD_MEMBER = """
guard as (select true as ok),
locked as (
    select dv.id from devices dv
    where dv.tenant_id = %(tenant_id)s and dv.id = any((select cols.dv from cols)::uuid[])
    for key share
),
missing as (
    select coalesce(array_agg(x.id), '{}') as ids
    from (select unnest(cols.dv) as id from cols) x
    where x.id not in (select id from locked)
),
"""
_WRITE_TAIL_HEAD = """
series_ok as (
    select count(*) = cardinality((select ds from cols)::int8[]) as ok
    from telemetry_series s
    where s.tenant_id = %(tenant_id)s and s.id = any((select ds from cols)::int8[])
),
ins as (
    insert into telemetry
        (tenant_id, series_id, ts, value_num, value_bool, value_str, unit, quality)
    select %(tenant_id)s, u.s, cols.t[u.ti], u.n, u.b, u.x, u.un, u.ql
    from cols, unnest(cols.s, cols.ti, cols.n, cols.b, cols.x, cols.u, cols.q)
        as u(s, ti, n, b, x, un, ql)
    where exists (select 1 from guard) and cardinality((select ids from missing)) = 0
      and (select ok from series_ok)
"""
_WRITE_TAIL_REST = (
    """    returning 1
),
total as (select count(*)::bigint as inserted from ins),
"""  # noqa: S608 - fixed fragments, no input
    + _COUNT_TODAY
    + """
-- Durable rule evaluation: the batch is queued for the rules engine in this transaction when
-- the tenant has an enabled telemetry rule (see iiot.rules.engine).
outbox as (
    insert into rule_batches (tenant_id, points)
    select %(tenant_id)s, """  # noqa: S608 - a fixed alias, no input
    + _rules_document("cols")
    + """
    from cols
    where (select inserted from total) > 0
      and exists (
        select 1 from rules r
        where r.tenant_id = %(tenant_id)s and r.enabled and r.rule_type <> 'time_based'
      )
    returning id
)
select
    exists (select 1 from guard),
    (select ids from missing),
    (select inserted from total),
    (select telemetry_points from counted),
    (select per_day from lim),
    (select telemetry_points from tenant_usage_daily
        where tenant_id = %(tenant_id)s and day = %(day)s),
    (select ok from series_ok),
    (select id from outbox),
    """  # noqa: S608 - a fixed expression, no input
    + watched_sql("%(tenant_id)s")
    + """
"""
)
_WRITE_TAIL = _WRITE_TAIL_HEAD + "    on conflict do nothing\n" + _WRITE_TAIL_REST
WRITE_AS_DEVICE = _WRITE_HEAD + _GUARD_DEVICE + _WRITE_TAIL
WRITE_AS_MEMBER = _WRITE_HEAD + _GUARD_MEMBER + _WRITE_TAIL
# The same statements with a plain INSERT, for a request whose points are all expected to be
# new (the common case): `ON CONFLICT` makes every row a speculative insertion (an index probe
# before the heap insert, and a confirmation record in the WAL after it), which measured about
# a third of the database's CPU per batch. A point that is already stored makes the statement
# fail with `unique_violation`; the writer then rolls the transaction back (nothing is stored
# or counted) and writes the request again with `ON CONFLICT DO NOTHING`, which counts the
# duplicates.
_WRITE_NEW_TAIL = _WRITE_TAIL_HEAD + _WRITE_TAIL_REST
WRITE_NEW_AS_DEVICE = _WRITE_HEAD + _GUARD_DEVICE + _WRITE_NEW_TAIL
WRITE_NEW_AS_MEMBER = _WRITE_HEAD + _GUARD_MEMBER + _WRITE_NEW_TAIL

# A group of one tenant's requests in one statement: `docs` is a JSON array of the requests'
# documents (the same columns as above), `tokens` their device token digests (null for a
# member). Each request is judged on its own (its credential or its devices, its series ids);
# the points of those that pass go in with one INSERT, and the day's counter takes the
# group's total at once, only while it stays within the limit (otherwise nothing is counted
# and the caller rolls the group back). A point carried by two requests of the group is
# inserted once and counted for the first of them; the others see it as a duplicate.
WRITE_GROUP = (
    _DAILY_LIMIT  # noqa: S608 - fixed fragments, no input
    + """
reqs as (
    select q.i::int as i, q.tok, q.doc
    from rows from (json_array_elements(%(docs)s::json), unnest(%(tokens)s::bytea[]))
        with ordinality as q(doc, tok, i)
),
cols as (
    select q.i, q.tok, q.doc, c.*
    from reqs q, json_to_record(q.doc) as c(
        s int8[], t timestamptz[], ti int4[], n float8[], b bool[], x text[], u text[],
        q text[], dv uuid[], ds int8[]
    )
),
-- Each token is looked up by its digest (a probe per request, however many devices the
-- tenant has), and its device locked.
dev_ok as (
    select q.i
    from cols q
    cross join lateral (
        select d.id
        from device_credentials c
        join devices d on d.tenant_id = c.tenant_id and d.id = c.device_id
        where c.tenant_id = %(tenant_id)s and c.token_hash = q.tok
          and c.revoked_at is null and d.status <> 'disabled'
        for key share of d
    ) ok
    where q.tok is not null and exists (
        select 1 from tenants t
        where t.id = %(tenant_id)s and t.status <> 'suspended' and t.deleted_at is null
    )
),
wanted as (
    select q.i, w.id from cols q, unnest(q.dv) as w(id) where q.tok is null
),
locked as (
    select dv.id from devices dv
    where dv.tenant_id = %(tenant_id)s and dv.id in (select id from wanted)
    for key share
),
missing as (
    select w.i, array_agg(w.id) as ids
    from wanted w
    where w.id not in (select id from locked)
    group by w.i
),
-- Requests naming a series id that does not exist (any more), checked for the whole group at
-- once (per request, the planner scanned the tenant's series once for each request).
series_bad as (
    select q.i from cols q where 0 = any(q.s)
    union
    select x.i
    from (select q.i, unnest(q.ds) as id from cols q) x
    where not exists (
        select 1 from telemetry_series s where s.tenant_id = %(tenant_id)s and s.id = x.id
    )
),
ok as (
    select q.i
    from cols q
    where case when q.tok is null then not exists (select 1 from missing m where m.i = q.i)
               else exists (select 1 from dev_ok g where g.i = q.i) end
      and not exists (select 1 from series_bad sb where sb.i = q.i)
),
src as (
    select q.i, u.s, q.t[u.ti] as t, u.n, u.b, u.x, u.un, u.ql
    from cols q, unnest(q.s, q.ti, q.n, q.b, q.x, q.u, q.q) as u(s, ti, n, b, x, un, ql)
    where q.i in (select i from ok)
),
ins as (
    insert into telemetry
        (tenant_id, series_id, ts, value_num, value_bool, value_str, unit, quality)
    select %(tenant_id)s, src.s, src.t, src.n, src.b, src.x, src.un, src.ql
    from src
    order by src.i
    on conflict do nothing
    returning series_id, ts
),
per_req as (
    select f.i, count(*)::bigint as n
    from ins
    join (select s, t, min(i) as i from src group by s, t) f
      on f.s = ins.series_id and f.t = ins.ts
    group by f.i
),
total as (select coalesce(sum(n), 0)::bigint as inserted from per_req),
"""
    + _COUNT_TODAY
    + """
-- Whether the group's points must be published to live subscribers of other processes.
live as (select """
    + watched_sql("%(tenant_id)s")
    + """ as watched),
rules_on as (
    select exists (
        select 1 from rules r
        where r.tenant_id = %(tenant_id)s and r.enabled and r.rule_type <> 'time_based'
    ) as yes
),
-- Durable rule evaluation: each request that stored points is queued, as its own batch.
outbox as (
    insert into rule_batches (tenant_id, points)
    select %(tenant_id)s, """  # noqa: S608 - a fixed alias, no input
    + _rules_document("q")
    + """
    from cols q join per_req p on p.i = q.i
    where p.n > 0 and (select yes from rules_on)
    order by q.i
    returning id
)
select
    q.i,
    q.tok is null or exists (select 1 from dev_ok g where g.i = q.i),
    coalesce(m.ids, '{}'),
    coalesce(p.n, 0),
    not exists (select 1 from series_bad sb where sb.i = q.i),
    (select inserted from total),
    (select telemetry_points from counted),
    (select per_day from lim),
    (select telemetry_points from tenant_usage_daily
        where tenant_id = %(tenant_id)s and day = %(day)s),
    (select yes from rules_on) and coalesce(p.n, 0) > 0,
    (select watched from live)
from cols q
left join missing m on m.i = q.i
left join per_req p on p.i = q.i
order by q.i
"""
)


def _numbered(sql: str, names: tuple[str, ...]) -> str:
    """`sql` with each `%(name)s` replaced by `$n`, n being the name's place in `names`."""
    for n, name in enumerate(names, 1):
        sql = sql.replace(f"%({name})s", f"${n}")
    if "%(" in sql or "%%" in sql:
        raise ValueError("a named parameter or an escaped % is left in the statement")
    return sql


# WRITE_GROUP as the driver takes it: `$n` parameters (tenant id, day, documents, tokens), sent
# through a raw cursor. The named form is 5.6 kB, beyond what psycopg keeps of converted
# queries (4 kB), so it was converted again for every group.
WRITE_GROUP_RAW = _numbered(WRITE_GROUP, ("tenant_id", "day", "docs", "tokens"))


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    credential_ok: bool
    missing_devices: list[uuid.UUID]
    inserted: int
    # The counter after this write; None when the write would have crossed the limit.
    counted_total: int | None
    limit: int | None
    # The counter as it stood before this statement (for refusals).
    used_before: int
    # The batch was queued for the rules engine in the same transaction.
    rules_queued: bool = False
    # Another process may have live subscribers of the tenant (`iiot.db.watch`).
    watched: bool = True

    @property
    def over_quota(self) -> bool:
        return self.inserted > 0 and self.counted_total is None

    @property
    def accepted(self) -> bool:
        return self.credential_ok and not self.missing_devices and not self.over_quota


SeriesKey = tuple[uuid.UUID, str]  # (device, key) within one tenant


class SeriesCache:
    """Series ids this process has seen committed, per tenant; a stale entry (its device
    deleted and re-created under the same id) is detected by the write, which resolves anew."""

    MAX_ENTRIES = 1_000_000

    def __init__(self) -> None:
        self.ids: dict[uuid.UUID, dict[SeriesKey, int]] = {}
        self._size = 0

    def of(self, tenant_id: uuid.UUID) -> dict[SeriesKey, int]:
        return self.ids.get(tenant_id) or {}

    def remember(self, found: dict[uuid.UUID, dict[SeriesKey, int]]) -> None:
        added = sum(len(v) for v in found.values())
        if self._size + added > self.MAX_ENTRIES:
            self.ids.clear()
            self._size = 0
        for tenant_id, ids in found.items():
            mine = self.ids.setdefault(tenant_id, {})
            before = len(mine)
            mine.update(ids)
            self._size += len(mine) - before

    def forget(self, tenant_id: uuid.UUID, keys: list[SeriesKey]) -> None:
        mine = self.ids.get(tenant_id, {})
        for key in keys:
            if mine.pop(key, None) is not None:
                self._size -= 1


_CACHES: weakref.WeakKeyDictionary[AsyncEngine, SeriesCache] = weakref.WeakKeyDictionary()


def series_cache(engine: AsyncEngine) -> SeriesCache:
    """The series cache of the processes' connections to one database."""
    cache = _CACHES.get(engine)
    if cache is None:
        cache = _CACHES[engine] = SeriesCache()
    return cache


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """One request's points, as handed to `TelemetryWriter`."""

    ctx: TenantContext
    rows: Rows
    day: date
    token_digest: bytes | None


@dataclass(slots=True)
class _Resolved:
    """Series ids found or created inside the current transaction (cached after commit)."""

    ids: dict[uuid.UUID, dict[SeriesKey, int]] = field(default_factory=dict)

    def of(self, tenant_id: uuid.UUID) -> dict[SeriesKey, int]:
        return self.ids.setdefault(tenant_id, {})


def _set_tenant(tenant_id: uuid.UUID) -> bytes:
    return set_tenant_sql(tenant_id).encode()


async def _resolve(
    conn: AsyncConnection[Any], tenant_id: uuid.UUID, wanted: list[SeriesKey]
) -> dict[SeriesKey, int]:
    found: dict[SeriesKey, int] = {}
    for _ in range(3):
        todo = [k for k in wanted if k not in found]
        if not todo:
            break
        cur = await conn.execute(
            RESOLVE_SERIES,
            {"tenant_id": tenant_id, "devices": [k[0] for k in todo], "keys": [k[1] for k in todo]},
        )
        for series_id, device_id, key in await cur.fetchall():
            found[(device_id, key)] = int(series_id)
    return found


def _columns(rows: Rows, series: list[int], devices: list[uuid.UUID], distinct: list[int]) -> str:
    """The statement's JSON document of a request's columns. Each distinct timestamp is sent
    once (`t`, with each row's 1-based position in it in `ti`: a batch repeats a timestamp for
    each of its keys, and its ISO text was half the document), and a column that is null in
    every row is left out (it reads as null)."""
    positions = {t: i for i, t in enumerate(dict.fromkeys(rows.ts), 1)}
    index = list(map(positions.__getitem__, rows.ts))
    document: dict[str, Any] = {"s": series, "t": list(positions), "ti": index}
    nulls = [None] * len(rows)  # compared by identity: a column of numbers differs at once
    for name, column in (
        ("n", rows.nums),
        ("b", rows.bools),
        ("x", rows.strs),
        ("u", rows.units),
        ("q", rows.qualities),
    ):
        if column != nulls:
            document[name] = column
    document["dv"] = devices
    document["ds"] = distinct
    return orjson.dumps(document).decode()


def _distinct_pairs(rows: Rows, devices: list[uuid.UUID]) -> list[SeriesKey]:
    """The rows' (device, key) pairs, each once, in order of first appearance (`devices`:
    `rows.distinct_devices()`; with one device only the keys are hashed)."""
    if len(devices) == 1:
        return [(devices[0], key) for key in dict.fromkeys(rows.keys)]
    return list(dict.fromkeys(zip(rows.device_ids, rows.keys, strict=True)))


def _row_series(rows: Rows, devices: list[uuid.UUID], by_pair: dict[SeriesKey, int]) -> list[int]:
    """Each row's series id (0 for a pair without one)."""
    if len(devices) == 1:
        by_key = {key: series_id for (_, key), series_id in by_pair.items()}
        return list(map(by_key.__getitem__, rows.keys))
    return list(map(by_pair.__getitem__, zip(rows.device_ids, rows.keys, strict=True)))


def _missing(item: PendingWrite, cache: SeriesCache, resolved: _Resolved) -> list[SeriesKey]:
    known = cache.of(item.ctx.tenant_id)
    mine = resolved.of(item.ctx.tenant_id)
    pairs = _distinct_pairs(item.rows, item.rows.distinct_devices())
    return [k for k in pairs if k not in known and k not in mine]


@dataclass(slots=True)
class _Statement:
    sql: str
    params: dict[str, Any]
    complete: bool  # every (device, key) had a series id
    wanted: list[SeriesKey]


def _statement(
    item: PendingWrite, cache: SeriesCache, resolved: _Resolved, *, new_only: bool = False
) -> _Statement:
    tenant_id = item.ctx.tenant_id
    rows = item.rows
    known = cache.of(tenant_id)
    mine = resolved.of(tenant_id)
    devices = rows.distinct_devices()
    wanted = _distinct_pairs(rows, devices)
    by_pair = {k: mine.get(k) or known.get(k, 0) for k in wanted}
    series = _row_series(rows, devices, by_pair)
    distinct = sorted({v for v in by_pair.values() if v})
    if item.token_digest is not None:
        sql = WRITE_NEW_AS_DEVICE if new_only else WRITE_AS_DEVICE
    else:
        sql = WRITE_NEW_AS_MEMBER if new_only else WRITE_AS_MEMBER
    return _Statement(
        sql=sql,
        params={
            "tenant_id": tenant_id,
            "token_digest": item.token_digest,
            "day": item.day,
            "columns": _columns(rows, series, devices, distinct),
        },
        complete=all(by_pair.values()),
        wanted=wanted,
    )


def _outcome(row: Any) -> tuple[WriteOutcome, bool]:
    """The statement's outcome, and whether every series id it was given exists."""
    outcome = WriteOutcome(
        credential_ok=bool(row[0]),
        missing_devices=list(row[1] or []),
        inserted=int(row[2] or 0),
        counted_total=None if row[3] is None else int(row[3]),
        limit=None if row[4] is None else int(row[4]),
        used_before=int(row[5] or 0),
        rules_queued=row[7] is not None,
        watched=bool(row[8]),
    )
    return outcome, bool(row[6])


def _stale(outcome: WriteOutcome, series_ok: bool, statement: _Statement) -> bool:
    """A cached series id is gone (or a series could not be resolved) while the credential
    and the devices held: the write did nothing and must be retried with fresh ids."""
    refused = not outcome.credential_ok or bool(outcome.missing_devices)
    return not refused and not (series_ok and statement.complete)


async def _write_one(
    conn: AsyncConnection[Any],
    item: PendingWrite,
    cache: SeriesCache,
    resolved: _Resolved,
    *,
    new_only: bool = False,
) -> WriteOutcome:
    """Write one request in the current transaction (`new_only`: with a plain INSERT, which
    raises `UniqueViolation` if any of its points is already stored)."""
    tenant_id = item.ctx.tenant_id
    for attempt in range(2):
        missing = _missing(item, cache, resolved)
        if missing:
            resolved.of(tenant_id).update(await _resolve(conn, tenant_id, missing))
        statement = _statement(item, cache, resolved, new_only=new_only)
        cur = await conn.execute(statement.sql, statement.params)
        row = await cur.fetchone()
        assert row is not None
        outcome, series_ok = _outcome(row)
        if attempt or not _stale(outcome, series_ok, statement):
            return outcome
        # A cached id no longer exists (its device was deleted and re-created): resolve anew.
        cache.forget(tenant_id, statement.wanted)
        for k in statement.wanted:
            resolved.of(tenant_id).pop(k, None)
    raise AssertionError("unreachable")


class ResentDevices:
    """Devices of a tenant whose recent request carried an already-stored point: their next
    requests are written with `ON CONFLICT` at once for a while, so a device that re-sends
    overlapping windows does not pay a failed plain INSERT each time."""

    SECONDS = 60.0
    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._until: dict[tuple[uuid.UUID, uuid.UUID], float] = {}

    def recent(self, item: PendingWrite) -> bool:
        if not self._until or not item.rows.device_ids:
            return False
        until = self._until.get((item.ctx.tenant_id, item.rows.device_ids[0]))
        return until is not None and until > time.monotonic()

    def note(self, item: PendingWrite) -> None:
        if not item.rows.device_ids:
            return
        if len(self._until) >= self.MAX_ENTRIES:
            now = time.monotonic()
            self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) >= self.MAX_ENTRIES:
                self._until.clear()
        key = (item.ctx.tenant_id, item.rows.device_ids[0])
        self._until[key] = time.monotonic() + self.SECONDS


_RESENT: weakref.WeakKeyDictionary[AsyncEngine, ResentDevices] = weakref.WeakKeyDictionary()


def resent_devices(engine: AsyncEngine) -> ResentDevices:
    found = _RESENT.get(engine)
    if found is None:
        found = _RESENT[engine] = ResentDevices()
    return found


class TelemetryWriter:
    """Writes requests' points in committed transactions of their own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.series = series_cache(engine)
        self.resent = resent_devices(engine)

    @asynccontextmanager
    async def _transaction(self, first_tenant: uuid.UUID) -> AsyncIterator[AsyncConnection[Any]]:
        """A transaction with `app.tenant_id` set; the caller ends it with commit or rollback.

        The connection runs in autocommit mode so that BEGIN and the tenant setting travel as
        one simple query; it is restored before it goes back to the pool.
        """
        async with self.engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            conn = raw.driver_connection
            assert isinstance(conn, AsyncConnection)
            await conn.set_autocommit(True)
            try:
                await conn.execute(f"begin; {set_tenant_sql(first_tenant)}".encode())
                yield conn
            except BaseException:
                if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                    await conn.execute("rollback")
                raise
            finally:
                if not conn.closed:
                    await conn.set_autocommit(False)

    async def write(self, item: PendingWrite) -> WriteOutcome:
        """Insert and count one request; committed when `accepted`, rolled back otherwise.

        The points are first inserted with a plain INSERT (`WRITE_NEW_AS_DEVICE`); if one of
        them is already stored, that transaction is rolled back and the request is written
        again in a new one with `ON CONFLICT DO NOTHING`, which counts the duplicates."""
        resolved = _Resolved()
        tenant_id = item.ctx.tenant_id
        new_only = not self.resent.recent(item)
        async with self._transaction(tenant_id) as conn:
            try:
                outcome = await _write_one(conn, item, self.series, resolved, new_only=new_only)
            except UniqueViolation:
                if not new_only:
                    raise
                self.resent.note(item)
                await conn.execute(b"rollback; begin; " + _set_tenant(tenant_id))
                resolved = _Resolved()  # what the first attempt resolved was rolled back
                outcome = await _write_one(conn, item, self.series, resolved)
            await conn.execute("commit" if outcome.accepted else "rollback")
        if outcome.accepted:
            self.series.remember(resolved.ids)
        return outcome

    async def write_group(self, items: list[PendingWrite]) -> list[WriteOutcome] | None:
        """Several requests in one transaction and one commit (group commit).

        The series the group lacks are resolved first (one statement per tenant); then each
        tenant's requests (of one day) are written by one statement (`WRITE_GROUP`), which
        judges every request on its own and counts the group's points at once. A refused
        request (bad token, unknown device) wrote nothing and stays refused; if the group would
        cross the quota, or a request met a stale series id, the whole group is rolled back and
        None is returned, so the caller can write them one by one (each checked against the counter
        as left by the ones before it, so the quota stays exact).
        """
        resolved = _Resolved()
        # One statement per tenant and day (a group may straddle midnight).
        by_tenant: dict[tuple[uuid.UUID, date], list[int]] = {}
        for index, item in enumerate(items):
            by_tenant.setdefault((item.ctx.tenant_id, item.day), []).append(index)
        outcomes: list[WriteOutcome | None] = [None] * len(items)
        async with self._transaction(items[0].ctx.tenant_id) as conn:
            tenant = items[0].ctx.tenant_id
            for (tenant_id, _), indexes in by_tenant.items():
                if tenant_id != tenant:
                    tenant = tenant_id
                    await conn.execute(_set_tenant(tenant))
                mine = [items[i] for i in indexes]
                missing: dict[SeriesKey, None] = {}
                for item in mine:
                    missing.update(dict.fromkeys(_missing(item, self.series, resolved)))
                if missing:
                    resolved.of(tenant_id).update(await _resolve(conn, tenant_id, list(missing)))
                written = await _write_tenant_group(conn, tenant_id, mine, self.series, resolved)
                if written is None:
                    await conn.execute("rollback")
                    return None
                for i, outcome in zip(indexes, written, strict=True):
                    outcomes[i] = outcome
            await conn.execute("commit")
        # Everything resolved in a committed transaction exists (a refused request's series
        # too: they were created for existing devices and committed with the group).
        self.series.remember(resolved.ids)
        return [o for o in outcomes if o is not None]


async def _write_tenant_group(
    conn: AsyncConnection[Any],
    tenant_id: uuid.UUID,
    items: list[PendingWrite],
    cache: SeriesCache,
    resolved: _Resolved,
) -> list[WriteOutcome] | None:
    """One tenant's requests with one statement; None when the group must be rolled back."""
    statements = [_statement(item, cache, resolved) for item in items]
    docs = "[" + ",".join(st.params["columns"] for st in statements) + "]"
    cur = AsyncRawCursor(conn)
    await cur.execute(
        WRITE_GROUP_RAW, (tenant_id, items[0].day, docs, [item.token_digest for item in items])
    )
    rows = await cur.fetchall()
    assert len(rows) == len(items)
    outcomes: list[WriteOutcome] = []
    for row, statement in zip(rows, statements, strict=True):
        _, credential_ok, missing, inserted, series_ok = row[:5]
        total, counted, per_day, used, queued, watched = row[5:]
        outcome = WriteOutcome(
            credential_ok=bool(credential_ok),
            missing_devices=list(missing or []),
            inserted=int(inserted),
            counted_total=None if counted is None else int(counted),
            limit=None if per_day is None else int(per_day),
            used_before=int(used or 0),
            rules_queued=bool(queued),
            watched=bool(watched),
        )
        if int(total) > 0 and counted is None:
            return None  # the group would cross the day's quota
        if _stale(outcome, bool(series_ok), statement):
            return None
        outcomes.append(outcome)
    return outcomes


class UsageRepository(TenantRepository[TenantUsageDaily]):
    model = TenantUsageDaily

    @staticmethod
    def points_on_figure(
        tenant_id: ColumnElement[uuid.UUID], day: ColumnElement[date]
    ) -> ScalarSelect[int]:
        """The points accepted on `day` as a scalar subquery (for the usage statement); NULL
        for a day without any."""
        return (
            select(TenantUsageDaily.telemetry_points)
            .where(TenantUsageDaily.tenant_id == tenant_id, TenantUsageDaily.day == day)
            .scalar_subquery()
        )

    async def points_on(self, day: date) -> int:
        value = await self.session.scalar(
            select(TenantUsageDaily.telemetry_points).where(
                TenantUsageDaily.tenant_id == self.ctx.tenant_id, TenantUsageDaily.day == day
            )
        )
        return int(value or 0)


@dataclass(frozen=True, slots=True)
class LatestPoint:
    key: str
    ts: datetime
    value: float | bool | str | None
    unit: str | None
    quality: str | None


# The device's series in key order (the dictionary's unique index), then the newest point of
# each by a backward primary-key probe; cost grows with the number of keys, not of rows. A
# series without points (all expired) is left out, as a key without points never existed.
_LATEST_FOR_DEVICE = text(
    """
    select s.key, p.ts, p.value_num, p.value_bool, p.value_str, p.unit, p.quality
    from telemetry_series s
    cross join lateral (
        select ts, value_num, value_bool, value_str, unit, quality
        from telemetry t
        where t.tenant_id = :tenant_id and t.series_id = s.id
        order by t.ts desc limit 1
    ) p
    where s.tenant_id = :tenant_id and s.device_id = :device_id
    order by s.key
    limit :max_keys
    """
)


class LatestTelemetryRepository(TenantRepository[Any]):
    model = TenantUsageDaily

    async def for_device(self, device_id: uuid.UUID, max_keys: int = 1000) -> list[LatestPoint]:
        rows = await self.session.execute(
            _LATEST_FOR_DEVICE,
            {"tenant_id": self.ctx.tenant_id, "device_id": device_id, "max_keys": max_keys},
        )
        out: list[LatestPoint] = []
        for key, ts, num, flag, txt, unit, quality in rows:
            value: float | bool | str | None = (
                num if num is not None else flag if flag is not None else txt
            )
            out.append(LatestPoint(key, ts, value, unit, quality))
        return out


class PartitionRepository(SystemRepository):
    async def ensure(self, day: date) -> bool:
        created = await self.session.scalar(
            text("select iiot_ensure_telemetry_partition(:day)"), {"day": day}
        )
        return bool(created)

    async def days(self) -> list[date]:
        rows = await self.session.execute(text("select day from iiot_telemetry_partitions()"))
        return [r[0] for r in rows]
