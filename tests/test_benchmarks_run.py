"""The benchmark scripts this issue touched run as the README says (figures, not timed tests),
and `pip install -e ".[bench]"` brings what backtest_speed.py's reference frameworks need."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_bench_extra_has_what_polars_needs_to_hand_bars_to_pandas():
    # backtest_speed.py gives backtesting.py and backtrader their bars with polars' to_pandas(),
    # which needs pandas and pyarrow: without them the script failed after the install.
    source = (ROOT / "benchmarks" / "backtest_speed.py").read_text()
    assert ".to_pandas()" in source
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["bench"]
    names = {item.split(">")[0].split("=")[0].split("[")[0].strip().lower() for item in extra}
    assert {"pyarrow", "pandas", "backtrader", "backtesting"} <= names


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def test_backtest_speed_prints_its_figures():
    proc = run("benchmarks/backtest_speed.py", "--days", "2", "--symbols", "2", "--combos", "2",
               "--skip-others")
    assert proc.returncode == 0, proc.stderr
    assert "full engine" in proc.stdout and "bars/s" in proc.stdout


def test_order_input_benchmark_prints_its_figures():
    proc = run("benchmarks/order_input.py")
    assert proc.returncode == 0, proc.stderr
    assert "qty=1E+500000" in proc.stdout and "4 KB nested 2,000 deep" in proc.stdout


def test_engine_latency_prints_the_advisors_figures():
    """Section 3: the engine in veto mode against a local model server of its own."""
    proc = run("benchmarks/engine_latency.py", "--advisor-only", "--symbols", "4",
               "--advisor-minutes", "10", "--advisor-pace", "0.35")
    assert proc.returncode == 0, proc.stderr
    assert "advisor (veto mode), model latency 300 ms, deadline 2000 ms" in proc.stdout
    assert "bar in -> order at broker (advised entries): p50" in proc.stdout
    assert "minutes that waited for an earlier minute's entry" in proc.stdout
