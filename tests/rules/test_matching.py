"""Rules met through the key index, with the quiet ones noted at once, move rule state exactly
as judging every rule against every batch does."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iiot.rules.evaluation import BatchValues, KeyReadings, Verdict, judge_in_batch
from iiot.rules.matching import RuleIndex, Verdicts
from iiot.rules.repository import DeviceInfo
from iiot.rules.schemas import ThresholdCondition
from iiot.rules.specs import RuleSpec

KEYS = ["a", "b", "c"]
OPERATORS = [">", ">=", "<", "<=", "==", "!="]


def _spec(rng: random.Random, devices: list[DeviceInfo]) -> RuleSpec:
    scope = rng.random()
    return RuleSpec(
        id=uuid.uuid4(),
        name="r",
        rule_type="threshold",
        condition=ThresholdCondition(
            key=rng.choice(KEYS),
            operator=rng.choice(OPERATORS),  # type: ignore[arg-type]
            value=float(rng.randint(0, 10)),
        ),
        device_id=rng.choice(devices).id if scope < 0.2 else None,
        device_type="pump" if 0.2 <= scope < 0.35 else None,
        enabled=True,
        priority=0,
        cooldown_seconds=0,
        severity="high",
        auto_resolve=True,
        actions=(),
        webhook_secret=None,
        webhook_secrets={},
    )


def _batch(rng: random.Random) -> BatchValues:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: BatchValues = {}
    for key in rng.sample(KEYS, rng.randint(1, len(KEYS))):
        numbers = [float(rng.randint(0, 10)) for _ in range(rng.randint(0, 6))]
        out[key] = KeyReadings.of(numbers, t0 + timedelta(seconds=len(numbers)))
    return out


def _moves(verdicts: list[Verdict], active: bool) -> list[tuple[bool, Any]]:
    """What edge triggering makes of `verdicts` from a state that is `active` or not."""
    moves = []
    for v in verdicts:
        if v.matched is None:
            continue
        if v.matched != active:
            active = bool(v.matched)
            moves.append((active, v.value))
    return moves


@pytest.mark.parametrize("seed", range(5))
def test_index_and_quiet_rules_agree_with_judging_every_rule(seed: int) -> None:
    rng = random.Random(seed)
    devices = [
        DeviceInfo(uuid.uuid4(), f"d{i}", rng.choice(["pump", "fan", None]), "active", None, None)
        for i in range(4)
    ]
    for _ in range(100):
        specs = [_spec(rng, devices) for _ in range(rng.randint(1, 12))]
        rounds = [
            {d.id: _batch(rng) for d in rng.sample(devices, rng.randint(1, len(devices)))}
            for _ in range(rng.randint(1, 4))
        ]
        by_id = {d.id: d for d in devices}
        expected: dict[tuple[uuid.UUID, uuid.UUID], list[Verdict]] = {}
        for per_device in rounds:
            for device_id, batch in per_device.items():
                device = by_id[device_id]
                for spec in specs:
                    if spec.applies_to(device.id, device.type) and spec.keys & set(batch):
                        found = judge_in_batch(spec, batch)
                        assert found is not None
                        expected.setdefault((spec.id, device.id), []).extend(found)

        collected = Verdicts()
        index = RuleIndex(specs)
        for per_device in rounds:
            for device_id, batch in per_device.items():
                assert collected.judge_batch(index, by_id[device_id], batch) == []
        judged, quiet = collected.judged()
        got = {(spec.id, dev.id): vs for spec, dev, vs in judged}
        got.update({(q.spec.id, q.device.id): [q.verdict()] for q in quiet})

        assert set(got) == set(expected)
        assert collected.evaluations == sum(
            1
            for per_device in rounds
            for device_id, batch in per_device.items()
            for spec in specs
            if spec.applies_to(device_id, by_id[device_id].type) and spec.keys & set(batch)
        )
        for pair, verdicts in expected.items():
            for active in (False, True):
                assert _moves(got[pair], active) == _moves(verdicts, active), (pair, active)
        for q in quiet:
            assert all(v.matched is False for v in expected[(q.spec.id, q.device.id)])
