"""Shared parts of the benchmarks: a scratch database, a real server, seeding, load, results.

Every benchmark runs against the machine's PostgreSQL (default
`postgresql://postgres@127.0.0.1:5432/postgres`, override with `IIOT_BENCH_PG`): it creates a
scratch database and an application role, migrates them exactly as production does, starts
the server as a subprocess on that database, and drops both at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from iiot.db import migrate, setup
from iiot.devices.access import DEVICE_TOKEN_PREFIX
from iiot.identity.tokens import TokenCodec, new_secret

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("IIOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
JWT_SECRET = "bench-" + secrets.token_urlsafe(48)
TOKEN_TTL = 86_400


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- database ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    name: str
    admin_url: str  # postgresql://… as the owner (superuser) on the scratch database
    app_url: str  # the application role, which owns nothing and cannot bypass RLS
    app_role: str

    def owner(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_url)


@contextmanager
def scratch_database(tag: str) -> Iterator[Scratch]:
    suffix = secrets.token_hex(4)
    name, role, password = (
        f"iiot_bench_{tag}_{suffix}",
        f"iiot_bench_app_{suffix}",
        secrets.token_hex(16),
    )
    setup.ensure_database(PG_ADMIN, name)
    admin_url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        setup.ensure_app_role(admin_url, role, password)
        app_url = (
            make_url(admin_url)
            .set(username=role, password=password)
            .render_as_string(hide_password=False)
        )
        migrate.upgrade(setup.sqlalchemy_url(admin_url), role)
        log(f"scratch database {name} migrated")
        yield Scratch(name=name, admin_url=admin_url, app_url=app_url, app_role=role)
    finally:
        setup.drop_database(PG_ADMIN, name)
        setup.drop_role(PG_ADMIN, role)
        log(f"scratch database {name} dropped")


def settle(db: Scratch, timeout_s: float = 60) -> None:
    """Wait until no autovacuum worker is busy on the scratch database (a previous phase's
    inserts trigger one), so that it does not run during the next measurement. No CHECKPOINT:
    right after one, every page touched again costs a full-page image in the WAL."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        while time.monotonic() < deadline:
            busy = conn.execute(
                "select count(*) from pg_stat_activity"
                " where datname = %s and backend_type = 'autovacuum worker'",
                (db.name,),
            ).fetchone()
            if not busy or busy[0] == 0:
                break
            time.sleep(0.5)


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def running_server(
    db: Scratch,
    *,
    access_log: bool = True,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`iiot serve` on the scratch database (`--workers N` processes, default one)."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="iiot-bench-"))
    env = {
        **os.environ,
        "IIOT_DATABASE_URL": db.app_url,
        "IIOT_DATABASE_OWNER_URL": db.admin_url,
        "IIOT_JWT_SECRET": JWT_SECRET,
        "IIOT_ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL),
        "IIOT_DATA_DIR": str(data_dir),
        "IIOT_BOOTSTRAP_ADMIN_EMAIL": "bench-admin@example.com",
        "IIOT_BOOTSTRAP_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "IIOT_PORT": str(port),
        **(extra_env or {}),
    }
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "iiot"), "serve", "--port", str(port), "--workers", str(workers)]
    if not access_log:
        cmd.append("--no-access-log")
    log_file = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {(data_dir / 'server.log').read_text()[-3000:]}"
                )
            try:
                if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.2)
        log(f"server pid {process.pid} listening on {url}")
        yield Server(url=url, process=process, data_dir=data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()
        keep = os.environ.get("IIOT_BENCH_SERVER_LOG")
        if keep:
            shutil.copy(data_dir / "server.log", keep)
        shutil.rmtree(data_dir, ignore_errors=True)


# --- seeding (as the owner: fast, and independent of the API under test) ----------------------


@dataclass
class SeededTenant:
    id: uuid.UUID
    device_ids: list[uuid.UUID] = field(default_factory=list)
    device_tokens: list[str] = field(default_factory=list)
    user_id: uuid.UUID | None = None


def seed_tenants(
    db: Scratch,
    *,
    tenants: int,
    devices_per_tenant: int,
    tier: str = "enterprise",
    limits: dict[str, int | None] | None = None,
    with_tokens: bool = True,
) -> list[SeededTenant]:
    """Tenants (with an admin member each) and devices (with a device token each)."""
    out: list[SeededTenant] = []
    limits = limits or {}
    with db.owner() as conn, conn.cursor() as cur:
        for n in range(tenants):
            t = SeededTenant(id=uuid.uuid4(), user_id=uuid.uuid4())
            slug = f"bench-{n}-{t.id.hex[:8]}"
            cur.execute(
                "insert into tenants (id, name, slug, tier, status, max_devices, max_users,"
                " max_telemetry_points_per_day, max_retention_days)"
                " values (%s, %s, %s, %s, 'active', %s, %s, %s, %s)",
                (
                    t.id,
                    f"Bench tenant {n}",
                    slug,
                    tier,
                    limits.get("max_devices"),
                    limits.get("max_users"),
                    limits.get("max_telemetry_points_per_day"),
                    limits.get("max_retention_days"),
                ),
            )
            cur.execute(
                "insert into users (id, email, password_hash, full_name, is_system_admin, status)"
                " values (%s, %s, 'x', %s, false, 'active')",
                (t.user_id, f"admin-{slug}@example.com", f"Admin {n}"),
            )
            cur.execute(
                "insert into memberships (tenant_id, user_id, role, status)"
                " values (%s, %s, 'admin', 'active')",
                (t.id, t.user_id),
            )
            t.device_ids = [uuid.uuid4() for _ in range(devices_per_tenant)]
            with cur.copy("copy devices (tenant_id, id, name, status) from stdin") as copy:
                for i, d in enumerate(t.device_ids):
                    copy.write_row((t.id, d, f"Device {n}-{i}", "offline"))
            if with_tokens:
                t.device_tokens = [new_secret(DEVICE_TOKEN_PREFIX) for _ in t.device_ids]
                with cur.copy(
                    "copy device_credentials (tenant_id, id, device_id, token_hash) from stdin"
                ) as copy:
                    for d, token in zip(t.device_ids, t.device_tokens, strict=True):
                        copy.write_row(
                            (t.id, uuid.uuid4(), d, hashlib.sha256(token.encode()).digest())
                        )
            out.append(t)
        conn.commit()
        # The planner's statistics as a running database has them: autovacuum analyzes a
        # table within a minute or so of a bulk insert, but a measurement started at once
        # would run on plans made for empty tables (a credential's device found by scanning
        # all of the tenant's devices: 3 of the 4.5 ms of a 32-request group's statement).
        conn.execute("analyze tenants, memberships, devices, device_credentials")
    return out


def system_admin(db: Scratch) -> uuid.UUID:
    user_id = uuid.uuid4()
    with db.owner() as conn:
        conn.execute(
            "insert into users (id, email, password_hash, full_name, is_system_admin, status)"
            " values (%s, %s, 'x', 'Bench operator', true, 'active')",
            (user_id, f"ops-{user_id.hex[:8]}@example.com"),
        )
    return user_id


def access_token(user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> str:
    codec = TokenCodec(
        JWT_SECRET, algorithm="HS256", issuer="iiot", audience="iiot-api", ttl_seconds=TOKEN_TTL
    )
    return codec.issue_access(user_id, tenant_id)


# --- load with wrk ----------------------------------------------------------------------------

WRK_SCRIPT = ROOT / "bench" / "wrk_requests.lua"


def wrk(
    url: str,
    requests_file: Path,
    *,
    connections: int,
    duration_s: int,
    threads: int = 1,
) -> dict[str, Any]:
    """Run wrk (`apt-get install wrk`) cycling over the requests in `requests_file`.

    Each line of the file is `METHOD<TAB>PATH<TAB>HEADER: VALUE|HEADER: VALUE<TAB>BODY`.
    Returns requests/s, latency percentiles (ms) and error counts.
    """
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required: apt-get install -y wrk")
    env = {**os.environ, "IIOT_WRK_REQUESTS": str(requests_file)}
    proc = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(WRK_SCRIPT),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("{"))
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "non_2xx": raw["status_errors"],
        "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
    }


def write_requests(path: Path, lines: list[tuple[str, str, dict[str, str], str]]) -> Path:
    with path.open("w") as fh:
        for method, target, headers, body in lines:
            header_text = "|".join(f"{k}: {v}" for k, v in headers.items())
            fh.write(f"{method}\t{target}\t{header_text}\t{body}\n")
    return path


# --- profiles ---------------------------------------------------------------------------------


def start_profile(pid: int, out: Path, duration_s: int) -> subprocess.Popen[bytes] | None:
    """Sample the server with py-spy (in the dev extra) while a run is going on."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        log("py-spy not installed: no profile")
        return None
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(duration_s),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize_profile(raw_file: Path, top: int = 25) -> list[dict[str, Any]]:
    """Own time and inclusive time of the hottest functions in a py-spy collapsed-stack file."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    if not raw_file.exists():
        return []
    for line in raw_file.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    rows = [
        {
            "function": frame,
            "own_pct": round(100 * own.get(frame, 0) / total, 1),
            "inclusive_pct": round(100 * inclusive[frame] / total, 1),
        }
        for frame in inclusive
    ]
    rows.sort(key=lambda r: (r["inclusive_pct"], r["own_pct"]), reverse=True)
    return rows[: top * 4]


# --- results ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    with psycopg.connect(PG_ADMIN) as conn:
        pg = conn.execute("show server_version").fetchone()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "postgresql": pg[0] if pg else "unknown",
        "python": platform.python_version(),
        # Other work on the machine (e.g. test suites) skews every figure: recorded with them.
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
    }


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log(f"results written to {path.relative_to(ROOT)}")
    return path


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the server's workers) so far."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def database_cpu_seconds(db: Scratch) -> float:
    """User + system CPU so far of the PostgreSQL backends connected to the scratch database
    (the measuring connection excluded): the database's share of a run, read from `/proc`."""
    import psutil

    with db.owner() as conn:
        pids = [
            int(r[0])
            for r in conn.execute(
                "select pid from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def ensure_series(
    conn: psycopg.Connection[Any], tenant_id: uuid.UUID, device_ids: list[uuid.UUID], keys: Any
) -> dict[tuple[uuid.UUID, str], int]:
    """The series ids of every (device, key), created as the owner where missing."""
    keys = list(keys)
    conn.execute(
        "insert into telemetry_series (tenant_id, device_id, key)"
        " select %s, d, k from unnest(%s::uuid[]) d, unnest(%s::text[]) k"
        " on conflict do nothing",
        (tenant_id, device_ids, keys),
    )
    rows = conn.execute(
        "select device_id, key, id from telemetry_series"
        " where tenant_id = %s and device_id = any(%s) and key = any(%s)",
        (tenant_id, device_ids, keys),
    ).fetchall()
    return {(d, k): int(i) for d, k, i in rows}
