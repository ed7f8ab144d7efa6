"""The embedded server's settings follow the machine's memory and land in its data directory."""

from __future__ import annotations

from pathlib import Path

from iiot.db.embedded import SIZING_FILE, sizing, write_sizing

GIB = 1024**3


def test_sizing_scales_with_memory_within_bounds() -> None:
    small, medium, large = sizing(1 * GIB), sizing(24 * GIB), sizing(256 * GIB)
    assert small["shared_buffers"] == "256MB"
    assert medium["shared_buffers"] == "6144MB"
    assert large["shared_buffers"] == "8192MB"  # capped
    assert small["max_wal_size"] == "2048MB"  # floor
    assert medium["max_wal_size"] == "6144MB"
    assert large["max_wal_size"] == "16384MB"
    assert medium["effective_cache_size"] == "12288MB"
    assert medium["checkpoint_timeout"] == "15min"


def test_written_once_and_included_from_postgresql_conf(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("port = 5432\n")
    assert write_sizing(tmp_path, memory=8 * GIB) is True
    assert write_sizing(tmp_path, memory=8 * GIB) is False  # unchanged: no restart
    conf = (tmp_path / "postgresql.conf").read_text().splitlines()
    assert conf.count(f"include_if_exists = '{SIZING_FILE}'") == 1
    written = (tmp_path / SIZING_FILE).read_text()
    assert "shared_buffers = '2048MB'" in written
    assert write_sizing(tmp_path, memory=16 * GIB) is True  # the machine grew
    assert "shared_buffers = '4096MB'" in (tmp_path / SIZING_FILE).read_text()
