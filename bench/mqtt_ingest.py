"""MQTT ingest: N device connections publishing single-value QoS 1 telemetry.

    .venv/bin/python bench/mqtt_ingest.py [--duration 60] [--devices 1000] [--window 4]

A scratch database with N devices, `iiot serve` on it (MQTT on a free port), and a load
generator in this process (asyncio on uvloop, packets built with iiot's own codec, so the
generator costs little CPU): every device holds one connection and keeps `--window` QoS 1
messages `{"temperature": x}` in flight on `v1/devices/me/telemetry`. Reported: acknowledged
messages/s (= points/s: one value each) sustained over the measured window, and p50/p99 of
PUBLISH -> PUBACK. The server acknowledges only after the points are committed.

References in the same run:
- the machine's Mosquitto (127.0.0.1:1883) relaying the same messages publisher -> one
  subscriber (QoS 1 both ways, the same generator): what a C broker does on these cores;
- the HTTP single-point path (`POST /api/v1/telemetry`, one point per request) with `wrk` if
  it is installed, on the same server.
After the run the rows in the database are counted: every acknowledged message is there.
The machine's two cores are shared with the database, the generator and, at times, other work:
the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from iiot.mqtt import codec  # noqa: E402

TOPIC = "v1/devices/me/telemetry"


@dataclass
class Stats:
    sent: int = 0
    acked: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list)
    measuring: bool = False
    received: int = 0  # subscriber side (Mosquitto reference)


class Publisher(asyncio.Protocol):
    """One device connection: CONNECT, then keep `window` QoS 1 PUBLISHes in flight."""

    def __init__(
        self, token: str | None, topic: str, window: int, stats: Stats, level: int
    ) -> None:
        self.token = token
        self.topic = topic
        self.window = window
        self.stats = stats
        self.level = level
        self.buffer = bytearray()
        self.inflight: dict[int, float] = {}
        self.next_id = 0
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.running = True
        self.value = 0
        self.topic_bytes = topic.encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        connect = codec.Connect(self.level, f"b{id(self)}", True, 120, username=self.token)
        transport.write(codec.encode_client_connect(connect))

    def _publish(self) -> None:
        assert self.transport is not None
        self.next_id = self.next_id % 65535 + 1
        self.value += 1
        payload = b'{"temperature":%d.%d}' % (20 + self.value % 10, self.value % 10)
        body = (
            len(self.topic_bytes).to_bytes(2, "big")
            + self.topic_bytes
            + self.next_id.to_bytes(2, "big")
            + (b"\x00" if self.level == codec.MQTT_5 else b"")
            + payload
        )
        self.transport.write(bytes((0x32, len(body))) + body)
        self.inflight[self.next_id] = time.perf_counter()
        self.stats.sent += 1

    def start(self) -> None:
        for _ in range(self.window):
            self._publish()

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos = 0
        while len(buf) - pos >= 2:
            first, length = buf[pos], buf[pos + 1]
            if length & 0x80:
                raise RuntimeError("unexpected long packet")
            if len(buf) - pos - 2 < length:
                break
            body = bytes(buf[pos + 2 : pos + 2 + length])
            pos += 2 + length
            kind = first >> 4
            if kind == codec.CONNACK:
                if not self.connected.done():
                    self.connected.set_result(body[1])
            elif kind == codec.PUBACK:
                packet_id = (body[0] << 8) | body[1]
                started = self.inflight.pop(packet_id, None)
                if started is None:
                    continue
                if len(body) > 2 and body[2] >= 0x80:
                    self.stats.refused += 1
                elif self.stats.measuring:
                    self.stats.acked += 1
                    self.stats.latencies.append(time.perf_counter() - started)
                if self.running:
                    self._publish()
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("closed before CONNACK"))
        self.running = False


class Subscriber(asyncio.Protocol):
    """The Mosquitto reference's consumer: subscribes to every publisher's topic."""

    def __init__(self, topic_filter: str, stats: Stats, qos: int) -> None:
        self.filter = topic_filter
        self.qos = qos
        self.stats = stats
        self.reader = bytearray()
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not subclasses of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        transport.write(
            codec.encode_client_connect(codec.Connect(codec.MQTT_311, "bench-sub", True, 120))
        )
        transport.write(
            codec.encode_client_subscribe(
                codec.Subscribe(1, [(self.filter, self.qos)]), codec.MQTT_311
            )
        )

    def data_received(self, data: bytes) -> None:
        buf = self.reader
        buf += data
        pos = 0
        acks = bytearray()
        while len(buf) - pos >= 2:
            first = buf[pos]
            length, shift, i = 0, 0, pos + 1
            while True:
                if i >= len(buf):
                    length = -1
                    break
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
            if length < 0 or len(buf) - i < length:
                break
            kind = first >> 4
            if kind == codec.SUBACK and not self.ready.done():
                self.ready.set_result(True)
            elif kind == codec.PUBLISH:
                if self.stats.measuring:
                    self.stats.received += 1
                if (first >> 1) & 3:
                    tlen = (buf[i] << 8) | buf[i + 1]
                    pid = buf[i + 2 + tlen : i + 4 + tlen]
                    acks += b"\x40\x02" + pid
            pos = i + length
        del buf[:pos]
        if acks and self.transport is not None:
            self.transport.write(bytes(acks))


async def run_load(
    host: str,
    port: int,
    tokens: list[str | None],
    topics: list[str],
    *,
    window: int,
    warmup_s: float,
    duration_s: float,
    level: int,
    subscriber_filter: str | None = None,
    subscriber_qos: int = 0,
    on_measuring: Any = None,
    cpu_probe: Any = None,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stats = Stats()
    sub: Subscriber | None = None
    if subscriber_filter is not None:
        _, sub = await loop.create_connection(
            lambda: Subscriber(subscriber_filter, stats, subscriber_qos), host, port
        )
        await asyncio.wait_for(sub.ready, 10)
    publishers: list[Publisher] = []
    for start in range(0, len(tokens), 100):
        batch = await asyncio.gather(
            *(
                loop.create_connection(
                    lambda t=t, tp=tp: Publisher(t, tp, window, stats, level), host, port
                )
                for t, tp in zip(
                    tokens[start : start + 100], topics[start : start + 100], strict=True
                )
            )
        )
        publishers += [p for _, p in batch]
    codes = await asyncio.gather(*(p.connected for p in publishers))
    assert all(c == 0 for c in codes), f"CONNACK refusals: {[c for c in codes if c]}"
    harness.log(f"{len(publishers)} connections up; warm-up {warmup_s:.0f} s")
    for p in publishers:
        p.start()
    await asyncio.sleep(warmup_s)
    stats.measuring = True
    if on_measuring is not None:
        on_measuring()
    cpu_before = cpu_probe() if cpu_probe is not None else {}
    started = time.perf_counter()
    load_before = os.getloadavg()
    await asyncio.sleep(duration_s)
    stats.measuring = False
    elapsed = time.perf_counter() - started
    cpu_after = cpu_probe() if cpu_probe is not None else {}
    for p in publishers:
        p.running = False
    await asyncio.sleep(1.0)  # let the in-flight messages finish
    for p in publishers:
        if p.transport is not None:
            p.transport.close()
    if sub is not None and sub.transport is not None:
        sub.transport.close()
    lat = sorted(stats.latencies)
    return {
        "connections": len(publishers),
        "window_per_connection": window,
        "seconds": round(elapsed, 2),
        "acknowledged_messages": stats.acked,
        "messages_per_s": round(stats.acked / elapsed),
        "points_per_s": round(stats.acked / elapsed),
        "refused": stats.refused,
        "sent_total": stats.sent,
        "p50_ms": round(harness.percentile(lat, 0.50) * 1000, 2) if lat else None,
        "p99_ms": round(harness.percentile(lat, 0.99) * 1000, 2) if lat else None,
        "subscriber_received_per_s": round(stats.received / elapsed) if sub else None,
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        **cpu_figures(cpu_before, cpu_after, stats.acked, elapsed),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_figures(
    before: dict[str, float], after: dict[str, float], acked: int, elapsed: float
) -> dict[str, Any]:
    """CPU used during the window by each party, per 1,000 acknowledged messages: robust to
    the other work on a shared machine, unlike the rate."""
    out: dict[str, Any] = {}
    for name in before:
        used = after.get(name, 0.0) - before[name]
        out[f"{name}_cpu_cores_used"] = round(used / elapsed, 2)
        if acked:
            out[f"{name}_cpu_ms_per_1000_messages"] = round(used * 1000 / (acked / 1000), 1)
    return out


def count_rows(db: harness.Scratch) -> int:
    with db.owner() as conn:
        row = conn.execute("select count(*) from telemetry").fetchone()
    return int(row[0]) if row else 0


def measure_iiot(args: argparse.Namespace, level: int, results: dict[str, Any]) -> None:
    """iiot serve on a scratch database: the MQTT load, then the HTTP single-point reference."""
    mqtt_port = harness.free_port()
    os.environ["IIOT_MQTT_PORT"] = str(mqtt_port)
    os.environ["IIOT_MQTT_MAX_INFLIGHT"] = str(max(100, args.window * 2))
    with harness.scratch_database("mqtt") as db:
        (tenant,) = harness.seed_tenants(db, tenants=1, devices_per_tenant=args.devices)
        with harness.running_server(db, access_log=False) as server:
            profilers: list[Any] = []

            def start_profiler() -> None:
                if args.profile:
                    profilers.append(
                        harness.start_profile(
                            server.pid,
                            harness.RESULTS / f"{args.out}_profile.raw",
                            int(args.duration),
                        )
                    )

            harness.settle(db)

            def probe() -> dict[str, float]:
                with db.owner() as conn:
                    pids = [
                        r[0]
                        for r in conn.execute(
                            "select pid from pg_stat_activity where datname = %s"
                            " and pid <> pg_backend_pid()",
                            (db.name,),
                        )
                    ]
                return {
                    "server": cpu_seconds(server.pid),
                    "postgres_backends": sum(cpu_seconds(p) for p in pids),
                    "load_generator": time.process_time(),
                }

            iiot = asyncio.run(
                run_load(
                    "127.0.0.1",
                    mqtt_port,
                    list(tenant.device_tokens),
                    [TOPIC] * len(tenant.device_tokens),
                    window=args.window,
                    warmup_s=args.warmup,
                    duration_s=args.duration,
                    level=level,
                    on_measuring=start_profiler,
                    cpu_probe=probe,
                )
            )
            for profiler in profilers:
                if profiler is not None:
                    profiler.wait()
                results["profile_top"] = harness.summarize_profile(
                    harness.RESULTS / f"{args.out}_profile.raw"
                )
            time.sleep(1.0)
            rows = count_rows(db)
            iiot["rows_in_database_after_run"] = rows
            iiot["every_ack_stored"] = rows >= iiot["acknowledged_messages"]
            harness.log(f"iiot MQTT: {iiot}")
            results["iiot_mqtt"] = iiot
            if not args.no_reference and shutil.which("wrk"):
                harness.settle(db)
                requests_file = harness.write_requests(
                    harness.RESULTS / "mqtt_ingest_http_requests.tsv",
                    [
                        (
                            "POST",
                            "/api/v1/telemetry",
                            {"X-API-Key": token, "Content-Type": "application/json"},
                            json.dumps({"telemetry": {"temperature": 20.0 + i % 100 / 10}}),
                        )
                        for i, token in enumerate(tenant.device_tokens)
                    ],
                )
                http = harness.wrk(
                    server.url,
                    requests_file,
                    connections=64,
                    duration_s=int(min(args.duration, 30)),
                )
                requests_file.unlink(missing_ok=True)
                harness.log(f"HTTP single point: {http}")
                results["http_single_point"] = http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--window", type=int, default=4, help="QoS 1 messages in flight each")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--mqtt5", action="store_true", help="MQTT 5 instead of 3.1.1")
    parser.add_argument("--no-reference", action="store_true", help="skip Mosquitto and HTTP")
    parser.add_argument(
        "--reference-only", action="store_true", help="only the Mosquitto relay (no iiot)"
    )
    parser.add_argument(
        "--subscriber-qos",
        type=int,
        default=0,
        choices=(0, 1),
        help="QoS of the Mosquitto reference's subscriber (1: one client, 20 in flight, drops)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server meanwhile")
    parser.add_argument("--out", default="mqtt_ingest")
    args = parser.parse_args()
    level = codec.MQTT_5 if args.mqtt5 else codec.MQTT_311
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    results: dict[str, Any] = {
        "benchmark": "mqtt_ingest",
        "machine": harness.machine(),
        "note": (
            "load generator, PostgreSQL and the server share the machine's 2 cores; the machine "
            "is shared with other engineers' work during this run (see loadavg)"
        ),
        "protocol": "5" if args.mqtt5 else "3.1.1",
    }
    if not args.reference_only:
        measure_iiot(args, level, results)
    if not args.no_reference:
        try:
            mosq = asyncio.run(
                run_load(
                    "127.0.0.1",
                    1883,
                    [None] * args.devices,
                    [f"bench/iiot/{i}" for i in range(args.devices)],
                    window=args.window,
                    warmup_s=args.warmup,
                    duration_s=args.duration,
                    level=level,
                    subscriber_filter="bench/iiot/#",
                    subscriber_qos=args.subscriber_qos,
                )
            )
            harness.log(f"Mosquitto relay: {mosq}")
            results["mosquitto_relay"] = mosq
        except OSError as exc:
            results["mosquitto_relay"] = {"error": str(exc)}
    results["target"] = {"messages_per_s": 20_000, "p99_ms": 50}
    path = harness.save(args.out, results)
    harness.log(f"results in {path}")


if __name__ == "__main__":
    main()
