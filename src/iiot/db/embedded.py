"""The embedded PostgreSQL server (the `pgserver` package), kept in the data directory.

Used when `IIOT_DATABASE_URL` is unset, so that `make run` needs no other service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class EmbeddedServer:
    handle: Any
    socket_dir: str

    def url(self, user: str, database: str) -> str:
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}"


def start_embedded(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the private server in `data_dir/pg` and return how to reach it."""
    # Imported lazily: external-database deployments never load it.
    from pgserver.postgres_server import get_server

    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(str(pgdata), cleanup_mode=None)
    uri = urlparse(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    return EmbeddedServer(handle=server, socket_dir=socket_dir)
