"""A real, throw-away PostgreSQL for the store tests: the system's binaries (run as the
`postgres` user when the tests run as root), else the `pgserver` wheel when it is installed."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent

# What a Supabase project has before our schema runs: its three API roles, with Supabase's
# default grants (full table privileges, so that only RLS stands between anon and a write).
SUPABASE_ROLES = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
END $$;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def system_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


class LocalPostgres:
    def __init__(self) -> None:
        self.bin = system_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="dt-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = self.bin is not None and os.geteuid() == 0
        self._pgserver = None

    @property
    def available(self) -> bool:
        if self.bin is not None:
            return True
        try:
            import pgserver  # noqa: F401
        except ImportError:
            return False
        return True

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> LocalPostgres:
        if self.bin is None:
            import pgserver

            self._pgserver = pgserver.get_server(str(self.data), cleanup_mode="stop")
            uri = self._pgserver.get_uri()
            self.dsn = uri
            return self
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--no-sync", "-E", "UTF8", "--no-instructions")
        self.resume()
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        return self

    def resume(self) -> None:
        """Starts the server (again, after `down`)."""
        options = (f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                   f"-c unix_socket_directories={self.dir}")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "30", "start")

    def down(self) -> None:
        """Stops the server (the database is gone until `resume`)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        try:
            if self._pgserver is not None:
                self._pgserver.cleanup()
            else:
                self.down()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def load_supabase_schema(self, *, supabase_defaults: bool = False) -> None:
        """supabase_schema.sql on this database as it is: a plain PostgreSQL with no roles
        (the default), or one prepared like a Supabase project first."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if supabase_defaults:
                conn.execute(SUPABASE_ROLES)
            conn.execute((ROOT / "supabase_schema.sql").read_text())

    def query(self, sql: str, *args) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql, args).fetchall()

    def truncate_all(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE sessions, intents, order_events, fills, position_snapshots, "
                         "risk_decisions, breaker_events, control_actions, equity_points")
