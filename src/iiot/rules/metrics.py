"""Prometheus figures of the rules engine (served by /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVALUATION_SECONDS = Histogram(
    "iiot_rules_evaluation_seconds",
    "Time to evaluate the queued telemetry batches of one tenant",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BATCHES = Counter("iiot_rules_batches_total", "Committed telemetry batches evaluated")
TRIGGERS = Counter("iiot_rules_triggers_total", "Rule triggers (false to true, out of cooldown)")
FAILURES = Counter("iiot_rules_evaluation_failures_total", "Evaluations given up after retries")
QUEUE_DEPTH = Gauge("iiot_rules_queue_depth", "Tenants nudged for evaluation in this process")
PARKED = Counter(
    "iiot_rules_batches_parked_total",
    "Committed batches parked after repeated failed evaluations (listed per tenant by "
    "GET /api/v1/rules/parked-batches)",
)
