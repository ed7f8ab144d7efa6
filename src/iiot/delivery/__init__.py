"""The delivery mechanism shared by every outbox kind (mail, webhook calls): one retry policy
(`retry`) and one loop that finds, claims, sends and records due messages (`loop`). The kinds
build on it; `iiot.outbox` assembles them into one job."""
