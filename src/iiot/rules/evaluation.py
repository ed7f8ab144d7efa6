"""Judging rules against telemetry and applying edge-triggered state changes.

For each (rule, device) a verdict says whether the condition holds. A rule fires when it goes
from not holding to holding, unless it last fired less than `cooldown_seconds` ago; while it
keeps holding nothing repeats. The state row is locked, changed and committed in the same
transaction as the alert, webhook and e-mail it causes, so a restart neither repeats nor
loses a trigger.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from iiot import mail
from iiot.alerts import service as alerts
from iiot.db.session import TenantSession
from iiot.events import CommittedPoint
from iiot.notifications import webhooks
from iiot.rules.conditions import comparator, compare, numeric, render_message
from iiot.rules.repository import DeviceInfo, ReadingRepository, RuleStateRepository
from iiot.rules.schemas import (
    AlertAction,
    ComparisonCondition,
    EmailAction,
    StatisticalCondition,
    ThresholdCondition,
    TimeBasedCondition,
    WebhookAction,
)
from iiot.rules.specs import RuleSpec
from iiot.tenancy.context import TenantContext

if TYPE_CHECKING:
    from iiot.rules.matching import Quiet


class Verdict(NamedTuple):
    matched: bool | None  # None: not enough data to say
    key: str | None = None
    value: float | None = None
    threshold: float | None = None


@dataclass
class Outcome:
    fired: int = 0
    alerts: list[uuid.UUID] = field(default_factory=list)
    webhooks: list[uuid.UUID] = field(default_factory=list)
    mails: int = 0


@dataclass(slots=True)
class KeyReadings:
    """One key's readings of one device in a batch: the numbers in time order with their
    bounds (so that a threshold the batch never crosses is judged without looking at every
    reading), and the time of the newest reading (a number or not)."""

    numbers: list[float]
    newest: datetime
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, numbers: list[float], newest: datetime) -> KeyReadings:
        if not numbers:
            return cls(numbers, newest)
        return cls(numbers, newest, min(numbers), max(numbers))


class Series(list[tuple[datetime, float | None]]):
    """One key's readings as (time, number) pairs, in any order until sealed."""

    numbers: list[float]
    low: float | None = None
    high: float | None = None

    def seal(self) -> None:
        self.sort(key=lambda r: r[0])
        self.numbers = [v for _, v in self if v is not None]
        if self.numbers:
            self.low, self.high = min(self.numbers), max(self.numbers)

    def readings(self) -> KeyReadings:
        self.seal()
        return KeyReadings(self.numbers, self[-1][0], self.low, self.high)


BatchValues = dict[str, KeyReadings]


def batch_values(points: Sequence[CommittedPoint]) -> dict[uuid.UUID, BatchValues]:
    """Per device and key, the batch's readings in time order (numbers only)."""
    out: dict[uuid.UUID, dict[str, Series]] = defaultdict(lambda: defaultdict(Series))
    for p in points:
        v = p.value
        # numeric(), inlined: this loop runs once per ingested point.
        number = v if type(v) is float else (None if v is None else numeric(v))
        out[p.device_id][p.key].append((p.ts, number))
    return {
        device: {key: series.readings() for key, series in keys.items()}
        for device, keys in out.items()
    }


def _number(num: Any, flag: Any, txt: Any) -> float | None:
    """The number of one stored reading: its number, its boolean as 1/0, its text not at all."""
    return numeric(num if num is not None else (flag if flag is not None else txt))


def columns_values(
    doc: Mapping[str, list[Any]],
    names: Mapping[int, tuple[uuid.UUID, str]],
    parse: Callable[[Any], datetime],
) -> dict[uuid.UUID, BatchValues]:
    """`batch_values` of a queued batch read as its columns (`s` series id, `t` time, `n`
    number, `b` boolean, `x` text), per series rather than per point: only the series of
    `names` (the keys some rule reads, of devices that still exist) are looked at.

    A batch whose rows repeat the same series in the same order (points that each carry
    the same keys, as a device usually sends them) is cut into its series by slicing."""
    sids, times, nums = doc["s"], doc["t"], doc["n"]
    total = len(sids)
    if not total:
        return {}
    width = len(set(sids))
    rows: dict[int, list[int]] | None = None
    if not (total % width == 0 and sids[width:] == sids[:-width]):
        rows = defaultdict(list)
        for i, sid in enumerate(sids):
            rows[sid].append(i)
    # A batch repeats each timestamp once per key: parse each text once, and order the
    # times of a series once for every series with the same times.
    at = {t: parse(t) for t in set(times)}
    last: tuple[list[Any], list[int] | None, datetime] | None = None
    out: dict[uuid.UUID, BatchValues] = defaultdict(dict)
    for j in range(width) if rows is None else rows.keys():
        if rows is None:
            sid = sids[j]
            values, stamps = nums[j::width], times[j::width]
        else:
            sid = j
            values = [nums[i] for i in rows[j]]
            stamps = [times[i] for i in rows[j]]
        name = names.get(sid)
        if name is None:
            continue
        if last is None or stamps != last[0]:
            moments = list(map(at.__getitem__, stamps))
            ordered = sorted(moments)
            # Readings sent out of order are judged in time order (equal times keep theirs).
            order = (
                None if moments == ordered else sorted(range(len(moments)), key=moments.__getitem__)
            )
            last = (stamps, order, ordered[-1])
        _, order, newest = last
        try:
            # Only numbers compare: a reading without one (a boolean or a text) raises here.
            low, high = min(values), max(values)
        except TypeError:
            low = None
        if low is None:
            picked = range(j, total, width) if rows is None else rows[j]
            flags, texts = doc["b"], doc["x"]
            values = [_number(nums[i], flags[i], texts[i]) for i in picked]
            if order is not None:
                values = [values[i] for i in order]
            out[name[0]][name[1]] = KeyReadings.of([v for v in values if v is not None], newest)
            continue
        if order is not None:
            values = [values[i] for i in order]
        out[name[0]][name[1]] = KeyReadings(values, newest, low, high)
    return out


# For these operators a batch holds everywhere when its worst number holds, and nowhere when
# its best number does not: (worst, best) as (attribute of the readings) per operator.
_MONOTONE = {
    ">": ("low", "high"),
    ">=": ("low", "high"),
    "<": ("high", "low"),
    "<=": ("high", "low"),
}


def _plain_threshold(c: ThresholdCondition, series: Series | KeyReadings) -> list[Verdict]:
    holds = comparator(c.operator)
    numbers = series.numbers
    if not numbers:
        return []
    bounds = _MONOTONE.get(c.operator)
    if bounds is not None:
        worst, best = getattr(series, bounds[0]), getattr(series, bounds[1])
        if holds(worst, c.value):
            return [Verdict(True, c.key, float(numbers[0]), c.value)]
        if not holds(best, c.value):
            return [Verdict(False, c.key, float(numbers[0]), c.value)]
    # Only changes between holding and not holding matter to edge triggering.
    verdicts: list[Verdict] = []
    previous: bool | None = None
    for v in numbers:
        matched = holds(v, c.value)
        if matched is not previous:
            verdicts.append(Verdict(matched, c.key, float(v), c.value))
            previous = matched
    return verdicts


def judge_in_batch(spec: RuleSpec, batch: BatchValues) -> list[Verdict] | None:
    """The verdicts of a rule judged on the batch alone (a plain threshold, on every reading
    of its key); None for a rule that needs the stored telemetry (`judge`)."""
    c = spec.condition
    if isinstance(c, ThresholdCondition) and c.duration_seconds is None:
        in_batch = batch.get(c.key)
        return _plain_threshold(c, in_batch) if in_batch is not None else []
    return None


async def judge(
    readings: ReadingRepository,
    spec: RuleSpec,
    device: DeviceInfo,
    batch: BatchValues | None,
    now: datetime,
    last_seen: datetime | None = None,
) -> list[Verdict]:
    """Verdicts in time order. With a batch, a plain threshold is judged on every reading of
    the batch (so a spike inside one batch is not missed); other types once, at the newest."""
    c = spec.condition
    if isinstance(c, ThresholdCondition):
        if c.duration_seconds is None:
            if batch is not None:
                in_batch = batch.get(c.key)
                return _plain_threshold(c, in_batch) if in_batch is not None else []
            latest = await readings.latest(device.id, c.key)
            series = Series([(latest.ts, latest.value)] if latest else [])
            series.seal()
            return _plain_threshold(c, series)
        end = await _newest(readings, device.id, c.key, batch)
        if end is None:
            return []
        before, span = await readings.span(
            device.id, c.key, end - timedelta(seconds=c.duration_seconds), end
        )
        values = [r.value for r in ([before] if before else []) + span]
        last = values[-1] if values else None
        if before is None or any(v is None for v in values):
            return [Verdict(False if last is not None else None, c.key, last, c.value)]
        held = all(compare(v, c.operator, c.value) for v in values if v is not None)
        return [Verdict(held, c.key, last, c.value)]
    if isinstance(c, ComparisonCondition):
        # Judged as of the batch's newest reading: later batches may be stored already.
        until = None
        if batch is not None:
            newest = [r.newest for r in (batch.get(c.key1), batch.get(c.key2)) if r is not None]
            until = max(newest) if newest else None
        first = await readings.latest(device.id, c.key1, until)
        second = await readings.latest(device.id, c.key2, until)
        if first is None or second is None or first.value is None or second.value is None:
            return []
        return [
            Verdict(
                compare(first.value, c.operator, second.value), c.key1, first.value, second.value
            )
        ]
    if isinstance(c, StatisticalCondition):
        end = await _newest(readings, device.id, c.key, batch)
        if end is None:
            return []
        value = await readings.aggregate(
            device.id, c.key, c.function, end - timedelta(seconds=c.window_seconds), end
        )
        if value is None:
            return []
        return [Verdict(compare(value, c.operator, c.value), c.key, value, c.value)]
    if isinstance(c, TimeBasedCondition):
        if device.status == "disabled":
            return []
        reference = last_seen or device.created_at
        if reference is None:
            return []
        silent = (now - reference).total_seconds()
        return [
            Verdict(
                silent > c.offline_after_seconds, None, round(silent, 3), c.offline_after_seconds
            )
        ]
    return []


async def _newest(
    readings: ReadingRepository, device_id: uuid.UUID, key: str, batch: BatchValues | None
) -> datetime | None:
    in_batch = batch.get(key) if batch is not None else None
    if in_batch is not None:
        return in_batch.newest
    latest = await readings.latest(device_id, key)
    return latest.ts if latest else None


def in_cooldown(spec: RuleSpec, last_triggered_at: datetime | None, now: datetime) -> bool:
    if last_triggered_at is None or spec.cooldown_seconds <= 0:
        return False
    return (now - last_triggered_at).total_seconds() < spec.cooldown_seconds


Judged = tuple[RuleSpec, DeviceInfo, list[Verdict]]


DeviceResolver = Callable[[set[uuid.UUID]], Awaitable[dict[uuid.UUID, DeviceInfo]]]


async def apply(
    session: TenantSession,
    ctx: TenantContext,
    judged: list[Judged],
    now: datetime,
    resolve: DeviceResolver | None = None,
    quiet: Sequence[Quiet] = (),
) -> Outcome:
    """Lock the (rule, device) states, move them, and run the actions of every trigger.

    Devices given unresolved (known by id only) are read with `resolve` only when some rule
    holds for them; one that no longer exists is skipped. `quiet` rules held nowhere: they
    only clear an active state.
    """
    outcome = Outcome()
    judged = [j for j in judged if any(v.matched is not None for v in j[2])]
    if not judged and not quiet:
        return outcome
    holding = [j for j in judged if any(v.matched for v in j[2])]
    unknown = {dev.id for _, dev, _ in holding if not dev.resolved}
    if unknown and resolve is not None:
        found = await resolve(unknown)
        judged = [
            (spec, found.get(dev.id, dev), vs)
            for spec, dev, vs in judged
            if dev.resolved or dev.id in found or not any(v.matched for v in vs)
        ]
    # Rules and devices deduplicated by identity: hashing ids costs more than comparing them.
    rules = {id(spec): spec for spec, _, _ in judged} | {id(q.spec): q.spec for q in quiet}
    devices = {id(dev): dev for _, dev, _ in judged} | {id(q.device): q.device for q in quiet}
    create = sorted({(spec.id, dev.id) for spec, dev, vs in judged if any(v.matched for v in vs)})
    states = await RuleStateRepository(session, ctx).lock(
        sorted({s.id for s in rules.values()}),
        sorted({d.id for d in devices.values()}),
        create=create,
    )
    if not states:
        return outcome
    # A pair without a state row (it never held, or is not active and nothing holds now)
    # has nothing to change; a quiet one only its first verdict.
    acting = [j for j in judged if (j[0].id, j[1].id) in states] + [
        (q.spec, q.device, [q.verdict()]) for q in quiet if (q.spec.id, q.device.id) in states
    ]
    for spec, device, verdicts in sorted(acting, key=lambda j: (-j[0].priority, str(j[0].id))):
        state = states[(spec.id, device.id)]
        for verdict in verdicts:
            if verdict.matched is None:
                continue
            if verdict.matched and not state.active:
                state.active = True
                state.since = now
                state.last_value = verdict.value
                if in_cooldown(spec, state.last_triggered_at, now):
                    continue
                state.last_triggered_at = now
                state.trigger_count += 1
                await _fire(session, ctx, spec, device, verdict, now, outcome)
            elif not verdict.matched and state.active:
                state.active = False
                state.since = now
                state.last_value = verdict.value
                if spec.auto_resolve:
                    await alerts.resolve_cleared(session, ctx, spec.id, device.id)
    await session.flush()
    return outcome


def _placeholders(spec: RuleSpec, device: DeviceInfo, verdict: Verdict) -> dict[str, Any]:
    return {
        "key": verdict.key,
        "value": verdict.value,
        "threshold": verdict.threshold,
        "device_name": device.name,
        "rule_name": spec.name,
    }


async def _fire(
    session: TenantSession,
    ctx: TenantContext,
    spec: RuleSpec,
    device: DeviceInfo,
    verdict: Verdict,
    now: datetime,
    outcome: Outcome,
) -> None:
    outcome.fired += 1
    values = _placeholders(spec, device, verdict)
    alert_id: uuid.UUID | None = None
    severity = spec.severity
    message = f"{spec.name}: {verdict.key or spec.rule_type} on {device.name}"
    for action in spec.actions:
        if isinstance(action, AlertAction):
            message = render_message(action.message, values)
            severity = action.severity or spec.severity
            alert_id = await alerts.raise_alert(
                session,
                ctx,
                rule_id=spec.id,
                rule_name=spec.name,
                device_id=device.id,
                device_name=device.name,
                severity=severity,
                message=message,
                key=verdict.key,
                value=verdict.value,
                threshold=verdict.threshold,
                now=now,
            )
            outcome.alerts.append(alert_id)
    for action in spec.actions:
        secret = spec.signing_key(str(action.url)) if isinstance(action, WebhookAction) else None
        if isinstance(action, WebhookAction) and secret:
            payload = {
                "event": "rule.triggered",
                "tenant_id": str(ctx.tenant_id),
                "rule": {"id": str(spec.id), "name": spec.name, "type": spec.rule_type},
                "device": {"id": str(device.id), "name": device.name},
                "alert_id": str(alert_id) if alert_id else None,
                "severity": severity,
                "message": message,
                "key": verdict.key,
                "value": verdict.value,
                "threshold": verdict.threshold,
                "triggered_at": now.isoformat(),
            }
            outcome.webhooks.append(
                await webhooks.enqueue(
                    session,
                    ctx,
                    rule_id=spec.id,
                    url=str(action.url),
                    secret=secret,
                    payload=payload,
                )
            )
        elif isinstance(action, EmailAction):
            for to in action.recipients:
                await mail.enqueue(
                    session,
                    to=to,
                    subject=f"[{severity}] {spec.name}",
                    body=(
                        f"{message}\n\nDevice: {device.name}\nRule: {spec.name}\n"
                        f"At: {now.isoformat()}\n"
                    ),
                    tenant_id=ctx.tenant_id,
                )
                outcome.mails += 1
