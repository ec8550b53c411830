"""Finding strategies (built-in names, module:Class, file.py:Class, installed entry points) and
assigning them to symbols, with a clear error for an unknown strategy, a bad parameter or a
symbol claimed twice."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from daytrader.config import Settings
from daytrader.strategy.loader import assign, build, parse_assignment, parse_spec
from daytrader.strategy.opening_range import OpeningRange, RangeParams
from daytrader.strategy.params import StrategyError
from daytrader.strategy.vwap_reversion import VwapReversion

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "donchian.py"


def test_specs_name_a_target_and_its_parameters():
    spec = parse_spec(" opening_range( minutes = 30 , target_r=3) ")
    assert (spec.target, spec.params) == ("opening_range", (("minutes", "30"), ("target_r", "3")))
    assert str(spec) == "opening_range(minutes=30,target_r=3)"
    assert parse_spec("docs/examples/donchian.py:Donchian").target.endswith(":Donchian")
    with pytest.raises(StrategyError, match="parameter 'minutes' is not name=value"):
        parse_spec("opening_range(minutes)")


def test_built_ins_modules_and_files_load():
    built_in = build("opening_range(minutes=30)")
    assert isinstance(built_in, OpeningRange) and built_in.params == RangeParams(minutes=30)
    assert isinstance(build("daytrader.strategy.vwap_reversion:VwapReversion"), VwapReversion)
    user = build(f"{EXAMPLE}:Donchian(entry_bars=30)")
    assert user.name == "donchian" and user.params.entry_bars == 30


def test_the_seed_strategy_takes_its_defaults_from_settings():
    seed = build("ema_cross", Settings(ema_fast=5, ema_slow=30))
    assert (seed.params.fast, seed.params.slow) == (5, 30)
    assert build("ema_cross(fast=7)", Settings(ema_slow=30)).params.slow == 30


@pytest.mark.parametrize(("spec", "message"), [
    ("nope", "unknown strategy 'nope'; known: ema_cross, opening_range, vwap_reversion"),
    ("opening_range(minutes=2)", "strategy opening_range: parameter minutes: expected a whole "
                                 "number from 5 to 120, got '2'"),
    ("opening_range(colour=red)", "strategy opening_range: unknown parameter colour"),
    ("missing/file.py:X", "no such file missing/file.py"),
    ("daytrader.nothing_here:X", "cannot import daytrader.nothing_here"),
    ("daytrader.models:Bar", "is not a strategy: it lacks name, warm_up, on_bar"),
    (f"{EXAMPLE}:Nope", "has no Nope"),
])
def test_a_bad_strategy_is_a_clear_error(spec, message):
    with pytest.raises(StrategyError) as caught:
        build(spec)
    assert message in str(caught.value)


def test_installed_packages_add_strategies_through_an_entry_point(tmp_path, monkeypatch):
    (tmp_path / "acme_strategies.py").write_text(EXAMPLE.read_text())
    dist = tmp_path / "acme_strategies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strategies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[daytrader.strategies]\nacme_donchian = acme_strategies:Donchian\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    strategy = build("acme_donchian(exit_bars=5)")
    assert strategy.name == "donchian" and strategy.params.exit_bars == 5
    with pytest.raises(StrategyError, match="known: acme_donchian, ema_cross"):
        build("acme_nothing")
    sys.modules.pop("acme_strategies", None)


def test_each_symbol_gets_its_strategy():
    settings = Settings(symbols=("AAPL", "MSFT", "NVDA", "TSLA"), strategy="ema_cross",
                        strategy_symbols="opening_range(minutes=30)=NVDA,tsla; "
                                         "vwap_reversion=AAPL")
    plan = assign(settings)
    assert {s: type(x).__name__ for s, x in plan.items()} == {
        "AAPL": "VwapReversion", "MSFT": "EmaCrossover", "NVDA": "OpeningRange",
        "TSLA": "OpeningRange"}
    assert plan["NVDA"] is plan["TSLA"]  # one instance per assignment
    assert plan["NVDA"].params.minutes == 30


@pytest.mark.parametrize(("assignment", "message"), [
    ("opening_range=NVDA; vwap_reversion=NVDA", "NVDA is claimed twice (opening_range and "
                                                "vwap_reversion)"),
    ("opening_range=ZZZZ", "ZZZZ (opening_range) is not in SYMBOLS"),
    ("opening_range", "is not strategy=SYMBOL,SYMBOL"),
    ("opening_range=", "names no symbols"),
    ("opening_range(minutes=15)=NVDA; opening_range(minutes=30)=AAPL",
     "two strategies named 'opening_range'"),
])
def test_a_bad_assignment_is_a_clear_error(assignment, message):
    settings = Settings(symbols=("AAPL", "NVDA"), strategy_symbols=assignment)
    with pytest.raises(StrategyError) as caught:
        assign(settings)
    assert message in str(caught.value)


def test_assignment_keeps_parameters_with_equals_signs_inside():
    [(spec, symbols)] = parse_assignment("opening_range(minutes=30,target_r=2.5)=NVDA")
    assert spec.params == (("minutes", "30"), ("target_r", "2.5")) and symbols == ("NVDA",)
