"""Every bad setting and option the issue lists, through the real program: exit 2, a message that
names the setting (or option) and what it expects, no traceback, nothing left behind (no stale
socket, no half-started journal session); and DATA_DIR is owner-only."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BARS = "timestamp,symbol,open,high,low,close,volume\n2026-11-02 09:30,AAPL,10,10,10,10,100\n"


def run_app(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd,
                          env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(cwd / "data"), **env})


HEADLESS = ["--headless", "--speed", "max", "--duration", "5m", "--quiet"]
CASES = [
    # (id, args, env, what the message must say)
    ("API_HOST=0.0.0.0", HEADLESS, {"API_PORT": "8765", "API_TOKEN": "t", "API_HOST": "0.0.0.0"},
     "API_HOST: 0.0.0.0 is not a loopback address; set API_ALLOW_REMOTE=true"),
    ("API_HOST=hostname", HEADLESS, {"API_PORT": "8765", "API_TOKEN": "t", "API_HOST": "trader"},
     "API_HOST: expected an IP address"),
    ("STARTING_CASH=1e30", HEADLESS, {"STARTING_CASH": "1e30"},
     "STARTING_CASH: must be a positive amount up to 1,000,000,000"),
    ("--duration 1e308d", [*HEADLESS, "--duration", "1e308d"], {}, "--duration: at most 3650d"),
    ("--speed nan", ["--headless", "--speed", "nan"], {}, "--speed: expected a positive number"),
    ("backtest --oos 2", ["backtest", "--data", "bars.csv", "--oos", "2"], {},
     "--oos: expected the fraction of days held out"),
    ("backtest --capital nan", ["backtest", "--data", "bars.csv", "--capital", "nan"], {},
     "--capital (STARTING_CASH): expected a finite number"),
    ("backtest --capital 1e30", ["backtest", "--data", "bars.csv", "--capital", "1e30"], {},
     "--capital (STARTING_CASH): must be a positive amount up to 1,000,000,000"),
    ("ctl with a non-ASCII API_TOKEN", ["ctl", "status"], {"API_TOKEN": "jeton-é"},
     "API_TOKEN: expected printable ASCII characters"),
    ("SUPABASE_URL=http://", HEADLESS, {"SUPABASE_URL": "http://", "SUPABASE_SERVICE_KEY": "k"},
     "SUPABASE_URL: no host in 'http://'; expected the project URL"),
    ("SUPABASE_URL ending in /rest/v1", HEADLESS,
     {"SUPABASE_URL": "https://abc.supabase.co/rest/v1", "SUPABASE_SERVICE_KEY": "k"},
     "SUPABASE_URL: give the project URL without /rest/v1"),
    ("SUPABASE_URL without a key", HEADLESS, {"SUPABASE_URL": "https://abc.supabase.co"},
     "SUPABASE_SERVICE_KEY: required when SUPABASE_URL is set"),
    ("DATA_DIR is a file", HEADLESS, {"DATA_DIR": "afile"}, "DATA_DIR: afile is a file"),
    ("DATA_DIR cannot be created", HEADLESS, {"DATA_DIR": "afile/sub"},
     "DATA_DIR: cannot create or use afile/sub"),
    ("backtest, DATA_DIR is a file", ["backtest", "--data", "bars.csv", "--no-plot"],
     {"DATA_DIR": "afile"}, "DATA_DIR: afile is a file"),
]


@pytest.mark.parametrize(("args", "env", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_bad_setting_or_option_exits_2_naming_it(tmp_path, args, env, message):
    (tmp_path / "bars.csv").write_text(BARS)
    (tmp_path / "afile").write_text("not a folder")
    proc = run_app(args, tmp_path, **env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "data" / "run" / "daytrader.sock").exists()


@pytest.mark.parametrize("front", ["headless", "console"])
def test_an_api_port_in_use_exits_2_before_anything_starts(tmp_path, front):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    try:
        proc = run_app(HEADLESS if front == "headless" else [], tmp_path, API_PORT=port,
                       API_TOKEN="tok")
    finally:
        taken.close()
    assert proc.returncode == 2, proc.stderr
    assert f"API_PORT: cannot listen on 127.0.0.1:{port}: already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "run" / "daytrader.sock").exists()
    assert not (tmp_path / "data" / "journal.sqlite").exists()  # no session half-started


async def test_a_port_taken_between_the_check_and_the_start_still_ends_cleanly(calendar, tmp_path):
    """The race the start-up check cannot close: the server binds every listener or none, and
    removes its socket file."""
    from conftest import make_engine

    from daytrader.api import ApiServer
    from daytrader.config import Secret, Settings, SettingsError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    settings = Settings(data_dir=tmp_path, api_port=taken.getsockname()[1],
                        api_token=Secret("tok"))
    try:
        with pytest.raises(SettingsError, match="API_PORT: cannot listen"):
            await ApiServer(make_engine(calendar), settings).start()
    finally:
        taken.close()
    assert not (tmp_path / "run" / "daytrader.sock").exists()


def test_files_under_data_dir_are_owner_only(tmp_path):
    proc = run_app(HEADLESS, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"journal.sqlite", "daytrader.lock"}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        p.name: "0o600" for p in files}
    (tmp_path / "bars.csv").write_text(BARS)
    proc = run_app(["backtest", "--data", "bars.csv", "--no-plot"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = [p for p in (data / "backtests").rglob("*")]
    assert written and all(stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600)
                           for p in written)
