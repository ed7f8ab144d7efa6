"""The embedded PostgreSQL server (the `pgserver` package), kept in the data directory.

Used when `IIOT_DATABASE_URL` is unset, so that `make run` needs no other service.

The packaged defaults (128 MB of shared buffers, 1 GB of WAL between checkpoints) make a
telemetry partition's index fall out of memory after a few million points, and force a
checkpoint (and then a full-page image of every page touched again) every few seconds under
ingest. `sizing(memory)` derives the memory, WAL and checkpoint settings from the machine's
memory; they are written to `iiot-sizing.conf` in the data directory, included from
`postgresql.conf`, and the server is restarted once when they change (shared_buffers takes
effect only at start). README.md ("PostgreSQL sizing") gives the same figures for an
external server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

SIZING_FILE = "iiot-sizing.conf"
_INCLUDE = f"include_if_exists = '{SIZING_FILE}'"
_MIB = 1024 * 1024
_GIB = 1024 * _MIB


@dataclass(frozen=True)
class EmbeddedServer:
    handle: Any
    socket_dir: str

    def url(self, user: str, database: str) -> str:
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}"


def machine_memory() -> int:
    """Physical memory in bytes (what the cgroup allows, when it says less)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def _mb(value: int) -> str:
    return f"{max(1, value // _MIB)}MB"


def sizing(memory: int) -> dict[str, str]:
    """PostgreSQL settings for a machine with `memory` bytes, shared with the application.

    - shared_buffers: a quarter of memory (at least 128 MB, at most 8 GB): the hot days'
      telemetry indexes stay cached; the OS cache holds the rest (effective_cache_size).
    - max_wal_size: a quarter of memory, between 2 GB and 16 GB, with checkpoint_timeout 15
      min and completion target 0.9, so checkpoints are spread and rare under sustained
      ingest (each one makes the next write of every page a full-page image); WAL compression
      shrinks those images.
    - synchronous_commit stays on: a point is acknowledged only once it is durable.
    """
    shared = min(max(memory // 4, 128 * _MIB), 8 * _GIB)
    wal = min(max(memory // 4, 2 * _GIB), 16 * _GIB)
    return {
        "shared_buffers": _mb(shared),
        "effective_cache_size": _mb(max(memory // 2, shared)),
        "maintenance_work_mem": _mb(min(max(memory // 32, 64 * _MIB), 2 * _GIB)),
        "work_mem": _mb(min(max(memory // 512, 4 * _MIB), 64 * _MIB)),
        "wal_buffers": "16MB",
        "max_wal_size": _mb(wal),
        "min_wal_size": _mb(min(wal // 4, 2 * _GIB)),
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "wal_compression": "on",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "64",
        "max_connections": "200",
    }


def render(settings: dict[str, str]) -> str:
    lines = ["# Written by iiot from the machine's memory; edit iiot's sizing, not this file."]
    lines += [f"{name} = '{value}'" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_sizing(pgdata: Path, memory: int | None = None) -> bool:
    """Write the sizing file and include it; True when it changed (a restart applies it)."""
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if _INCLUDE not in text.splitlines():
        conf.write_text(text.rstrip("\n") + "\n" + _INCLUDE + "\n")
    target = pgdata / SIZING_FILE
    wanted = render(sizing(machine_memory() if memory is None else memory))
    if target.exists() and target.read_text() == wanted:
        return False
    target.write_text(wanted)
    return True


def start_embedded(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the private server in `data_dir/pg`, sized for this machine."""
    # Imported lazily: external-database deployments never load it.
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = _get_server(pgdata)
    if write_sizing(pgdata):
        # `restart` keeps the options the server was started with (socket directory...).
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=server.system_user)
    uri = urlparse(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    return EmbeddedServer(handle=server, socket_dir=socket_dir)


def _get_server(pgdata: Path) -> Any:
    """`pgserver.get_server(pgdata, cleanup_mode=None)`, except that a new data directory gets
    its sizing between `initdb` and the first start: the server starts sized, with no restart
    (a fast shutdown, its checkpoint and a start: about a second)."""
    from pgserver.postgres_server import PostgresServer

    class SizedAtCreation(PostgresServer):
        def ensure_pgdata_inited(self) -> None:
            new = not (self.pgdata / "PG_VERSION").exists()
            super().ensure_pgdata_inited()
            if new:
                write_sizing(self.pgdata)

    known = PostgresServer._instances.get(pgdata)
    return known if known is not None else SizedAtCreation(pgdata, cleanup_mode=None)
