"""Which rules a batch meets, and their verdicts, gathered per (rule, device) batch by batch.

A tenant's telemetry rules are indexed by the keys whose arrival makes them worth judging,
so a batch meets only the rules reading one of its keys. Plain thresholds with an ordering
operator (`>`, `>=`, `<`, `<=`) are further kept sorted by their value per key: against one
key's readings of a batch, those the readings never cross are found with one binary search
on the readings' bounds and noted as quiet (one false verdict, materialised only if the
rule's state is active), and only the others are judged reading by reading. Judging a key's
rules thus costs O(readings + rules) with a small constant for the quiet ones, which is what
almost every rule is almost always.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import NamedTuple

from iiot.rules.evaluation import BatchValues, Judged, KeyReadings, Verdict, judge_in_batch
from iiot.rules.repository import DeviceInfo
from iiot.rules.schemas import ThresholdCondition
from iiot.rules.specs import RuleSpec


class Quiet(NamedTuple):
    """A rule whose condition held nowhere in the batches of one round for one device: only
    its first false verdict can change anything (clearing an active state)."""

    spec: RuleSpec
    device: DeviceInfo
    value: float

    def verdict(self) -> Verdict:
        c = self.spec.condition
        assert isinstance(c, ThresholdCondition)
        return Verdict(False, c.key, self.value, c.value)


class _Sorted(NamedTuple):
    """The plain thresholds of one key and one ordering operator, by value."""

    operator: str
    values: list[float]
    specs: list[RuleSpec]


def _tenant_wide(spec: RuleSpec) -> bool:
    return spec.device_id is None and spec.device_type is None


def _sortable(spec: RuleSpec) -> bool:
    c = spec.condition
    return (
        isinstance(c, ThresholdCondition)
        and c.duration_seconds is None
        and c.operator in (">", ">=", "<", "<=")
    )


class RuleIndex:
    """A tenant's telemetry rules by key (built once per rule list)."""

    def __init__(self, specs: list[RuleSpec]) -> None:
        self.specs = [s for s in specs if s.rule_type != "time_based"]
        self.keys = frozenset(k for spec in self.specs for k in spec.keys)
        self.typed = any(s.device_type is not None for s in self.specs)
        # Rules judged one by one, per key; a rule reading two keys is listed under both.
        self.by_key: dict[str, list[RuleSpec]] = {}
        # Sortable thresholds per key and operator.
        self.sorted: dict[str, list[_Sorted]] = {}
        groups: dict[tuple[str, str], list[RuleSpec]] = {}
        for spec in self.specs:
            c = spec.condition
            if _sortable(spec):
                assert isinstance(c, ThresholdCondition)
                groups.setdefault((c.key, c.operator), []).append(spec)
                continue
            for key in sorted(spec.keys):
                self.by_key.setdefault(key, []).append(spec)
        for (key, op), members in groups.items():
            members.sort(key=_threshold)
            self.sorted.setdefault(key, []).append(
                _Sorted(op, [_threshold(s) for s in members], members)
            )
        self._candidates: dict[tuple[str, ...], list[RuleSpec]] = {}

    def others(self, keys: Iterable[str]) -> list[RuleSpec]:
        """The rules judged one by one that read any of `keys`, each once."""
        wanted = tuple(keys)
        found = self._candidates.get(wanted)
        if found is None:
            listed = [s for key in wanted for s in self.by_key.get(key, ())]
            found = self._candidates[wanted] = list({id(s): s for s in listed}.values())
        return found


def _threshold(spec: RuleSpec) -> float:
    c = spec.condition
    assert isinstance(c, ThresholdCondition)
    return c.value


def _split(group: _Sorted, readings: KeyReadings) -> tuple[list[RuleSpec], list[RuleSpec]]:
    """(quiet, others): the rules of `group` whose condition holds at no reading, and the rest."""
    low, high = readings.low, readings.high
    assert low is not None
    assert high is not None
    op, values, specs = group
    if op == ">":  # holds nowhere when high <= value
        cut = bisect_left(values, high)
        return specs[cut:], specs[:cut]
    if op == ">=":  # nowhere when high < value
        cut = bisect_right(values, high)
        return specs[cut:], specs[:cut]
    if op == "<":  # nowhere when low >= value
        cut = bisect_right(values, low)
        return specs[:cut], specs[cut:]
    cut = bisect_left(values, low)  # "<=": nowhere when low > value
    return specs[:cut], specs[cut:]


class Verdicts:
    """The verdicts of one round, per device and rule, in batch order."""

    def __init__(self) -> None:
        # Per device: per rule (by identity within the round's index) its verdicts, or Quiet.
        self._by_device: dict[uuid.UUID, dict[int, Judged | Quiet]] = {}
        self.evaluations = 0

    def _mine(self, device: DeviceInfo) -> dict[int, Judged | Quiet]:
        mine = self._by_device.get(device.id)
        if mine is None:
            mine = self._by_device[device.id] = {}
        return mine

    def add(self, spec: RuleSpec, device: DeviceInfo, verdicts: list[Verdict]) -> None:
        mine = self._mine(device)
        self.evaluations += 1
        entry = mine.get(id(spec))
        if entry is None:
            mine[id(spec)] = (spec, device, verdicts)
        elif isinstance(entry, Quiet):
            mine[id(spec)] = (spec, device, [entry.verdict(), *verdicts])
        else:
            entry[2].extend(verdicts)

    def quiet(self, specs: list[RuleSpec], device: DeviceInfo, value: float) -> None:
        mine = self._mine(device)
        self.evaluations += len(specs)
        for spec in specs:
            entry = mine.get(id(spec))
            if entry is None:
                mine[id(spec)] = Quiet(spec, device, value)
            elif not isinstance(entry, Quiet):
                c = spec.condition
                assert isinstance(c, ThresholdCondition)
                entry[2].append(Verdict(False, c.key, value, c.value))

    def judge_batch(
        self, index: RuleIndex, device: DeviceInfo, batch: BatchValues
    ) -> list[RuleSpec]:
        """Judge the rules that need only the batch; the rules that need the stored
        telemetry are returned (for `evaluation.judge`)."""
        for key, readings in batch.items():
            groups = index.sorted.get(key)
            if groups is None:
                continue
            if not readings.numbers:
                for group in groups:
                    for spec in group.specs:
                        if spec.applies_to(device.id, device.type):
                            self.add(spec, device, [])
                continue
            first = float(readings.numbers[0])
            for group in groups:
                quiet, others = _split(group, readings)
                if quiet:
                    if not all(map(_tenant_wide, quiet)):
                        quiet = [s for s in quiet if s.applies_to(device.id, device.type)]
                    self.quiet(quiet, device, first)
                for spec in others:
                    if spec.applies_to(device.id, device.type):
                        found = judge_in_batch(spec, batch)
                        assert found is not None
                        self.add(spec, device, found)
        stored: list[RuleSpec] = []
        for spec in index.others(batch):
            if not spec.applies_to(device.id, device.type):
                continue
            found = judge_in_batch(spec, batch)
            if found is None:
                stored.append(spec)
            else:
                self.add(spec, device, found)
        return stored

    def judged(self) -> tuple[list[Judged], list[Quiet]]:
        judged: list[Judged] = []
        quiet: list[Quiet] = []
        for mine in self._by_device.values():
            for entry in mine.values():
                if isinstance(entry, Quiet):
                    quiet.append(entry)
                else:
                    judged.append(entry)
        return judged, quiet
