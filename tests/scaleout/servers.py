"""Real `iiot serve` processes and a real PgBouncer for the scale-out tests.

The processes share the test session's database and one Redis database. Redis comes from
`IIOT_TEST_REDIS_URL`, else `redis://127.0.0.1:6379/12` when a server answers there; PgBouncer
is Debian's `pgbouncer` binary, started here on a free port in transaction-pooling mode.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.fixtures.ports import free_port
from tests.fixtures.tls import tls_context

IIOT = Path(sys.executable).parent / "iiot"
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/12"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_for_tests() -> str | None:
    """The Redis database the tests may use, or None when no Redis answers."""
    url = os.environ.get("IIOT_TEST_REDIS_URL") or DEFAULT_TEST_REDIS
    parsed = make_url(url.replace("redis://", "postgresql://", 1))
    return url if _answers(parsed.host or "127.0.0.1", parsed.port or 6379) else None


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_servers([self])


def stop_servers(servers: list[Server]) -> None:
    """Stop the servers, all at once: each is told to stop before any is waited for."""
    running = [s for s in servers if s.process.poll() is None]
    for server in running:
        server.process.send_signal(signal.SIGTERM)
    for server in running:
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


def start_server(name: str, workdir: Path, env: dict[str, str]) -> Server:
    """Start `iiot serve` and wait until /ready answers 200."""
    server = spawn_server(name, workdir, env)
    wait_ready(server)
    return server


def spawn_server(name: str, workdir: Path, env: dict[str, str]) -> Server:
    """Start `iiot serve` (see `wait_ready`), without MQTT. The database is expected to hold a
    system admin already: no server then creates a bootstrap admin, so that several may start
    at once on one database, and none spends a production-cost password hash on it."""
    port = free_port()
    log = workdir / f"{name}.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
    full |= {
        "IIOT_HOST": "127.0.0.1",
        "IIOT_PORT": str(port),
        "IIOT_DATA_DIR": str(workdir / name),
        "IIOT_ACCESS_LOG": "false",
        "IIOT_RUN_BACKGROUND_JOBS": "false",
        "IIOT_METRICS_ENABLED": "false",
        "IIOT_MQTT_PORT": "0",
        # Small pools: the machine's PostgreSQL is shared; requests queue for a connection.
        "IIOT_DATABASE_POOL_SIZE": "4",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(IIOT), "serve"], env=full, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    return Server(name, port, process, log)


def wait_ready(server: Server, timeout: float = 90) -> None:
    """Wait until the server's /ready answers 200; stop it and raise if it does not."""
    name, process, log = server.name, server.process, server.log
    deadline = time.monotonic() + timeout
    # One client for the polling, and the process's one TLS context.
    with httpx.Client(timeout=1, verify=tls_context()) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()[-3000:]}")
            try:
                if client.get(f"{server.url}/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not become ready: {log.read_text()[-3000:]}")


@dataclass
class PgBouncer:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_pgbouncer(binary: str, workdir: Path, database_url: str) -> PgBouncer:
    """PgBouncer in transaction-pooling mode in front of the test database, for its role."""
    url = make_url(database_url)
    # A TCP host, or the socket directory of a server reached through a Unix socket.
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):
        host = host[0]
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    auth = workdir / "users.txt"
    auth.write_text(f'"{url.username}" "{url.password}"\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{url.database} = host={host} port={url.port or 5432} dbname={url.database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = plain\nauth_file = {auth}\n"
        f"admin_users = {url.username}\n"
        "pool_mode = transaction\ndefault_pool_size = 5\nmax_client_conn = 200\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
        f"logfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n"
    )
    kwargs: dict[str, object] = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        kwargs["user"] = "postgres"
        shutil.chown(workdir, "postgres")
        for path in (auth, ini):
            shutil.chown(path, "postgres")
    process = subprocess.Popen(  # noqa: S603 - Debian's pgbouncer
        [binary, str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        **kwargs,  # type: ignore[arg-type]
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = workdir / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer exited: {log.read_text() if log.exists() else ''}")
        if _answers("127.0.0.1", port):
            return PgBouncer(port, process, workdir)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("pgbouncer did not start")
