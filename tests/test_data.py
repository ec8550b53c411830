"""Synthetic bars and replay files: determinism, realism, validation and malformed input."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daytrader.data import (
    DEFAULT_START_PRICES,
    ReplayError,
    bars_by_minute,
    load_bars,
    synthetic_bars,
    synthetic_frame,
)
from daytrader.models import Bar

NY = ZoneInfo("America/New_York")
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "ZZZZ"]
HEADER = "timestamp,symbol,open,high,low,close,volume"


def regular_sessions(count: int, start: date = date(2024, 3, 4)) -> list[tuple[datetime, datetime]]:
    """Weekday sessions 09:30-16:00 New York (the default start crosses the March DST change)."""
    sessions = []
    day = start
    while len(sessions) < count:
        if day.weekday() < 5:
            open_ = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NY)
            sessions.append((open_, open_.replace(hour=16, minute=0)))
        day += timedelta(days=1)
    return sessions


def flat(minutes) -> list[Bar]:
    return [bar for minute in minutes for bar in minute]


def ema(values: list[float], span: int) -> list[float]:
    alpha = 2 / (span + 1)
    out = [values[0]]
    for value in values[1:]:
        out.append(alpha * value + (1 - alpha) * out[-1])
    return out


def closes_by_session(symbols, sessions, seed) -> dict[tuple[int, str], list[Bar]]:
    by_session: dict[tuple[int, str], list[Bar]] = {}
    opens = [open_ for open_, _ in sessions]
    for minute in synthetic_bars(symbols, sessions, seed):
        index = max(i for i, open_ in enumerate(opens) if open_ <= minute[0].ts)
        for bar in minute:
            by_session.setdefault((index, bar.symbol), []).append(bar)
    return by_session


def is_valid(bar: Bar) -> bool:
    prices = (bar.open, bar.high, bar.low, bar.close)
    return (
        all(math.isfinite(p) and p > 0 for p in prices)
        and math.isfinite(bar.volume)
        and bar.volume >= 0
        and bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
    )


def write_csv(directory: Path, lines: list[str], name: str = "bars.csv") -> Path:
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


# -- synthetic -----------------------------------------------------------------------------


def test_same_seed_gives_identical_bars_and_another_seed_different_ones():
    sessions = regular_sessions(2)
    first = flat(synthetic_bars(SYMBOLS, sessions, seed=7))
    assert first == flat(synthetic_bars(SYMBOLS, sessions, seed=7))
    assert first != flat(synthetic_bars(SYMBOLS, sessions, seed=8))


def test_adding_a_symbol_leaves_the_other_symbols_bars_unchanged():
    sessions = regular_sessions(2)
    alone = flat(synthetic_bars(["AAPL"], sessions, seed=3))
    together = [b for b in flat(synthetic_bars(["MSFT", "AAPL"], sessions, seed=3)) if b.symbol == "AAPL"]
    assert alone == together


def test_every_synthetic_bar_keeps_the_ohlc_invariants():
    bars = flat(synthetic_bars(SYMBOLS, regular_sessions(3), seed=11))
    assert bars and all(is_valid(bar) for bar in bars)
    assert all(bar.volume == int(bar.volume) for bar in bars)


def test_one_bar_per_symbol_per_minute_inside_each_session_in_symbol_order():
    sessions = regular_sessions(2) + [
        (datetime(2024, 11, 29, 9, 30, tzinfo=NY), datetime(2024, 11, 29, 13, 0, tzinfo=NY))
    ]
    minutes = list(synthetic_bars(SYMBOLS, sessions, seed=5))
    assert len(minutes) == 390 + 390 + 210
    for minute in minutes:
        assert [bar.symbol for bar in minute] == SYMBOLS
        assert len({bar.ts for bar in minute}) == 1
        ts = minute[0].ts
        assert ts.tzinfo is NY
        assert any(open_ <= ts < close for open_, close in sessions)
    stamps = [minute[0].ts for minute in minutes]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert stamps[0] == sessions[0][0] and stamps[389] == sessions[0][1] - timedelta(minutes=1)


def test_start_prices_are_plausible_and_unknown_symbols_are_seeded_between_20_and_500():
    first = next(synthetic_bars(["AAPL", "QQQ", "ZZZZ"], regular_sessions(1), seed=1))
    assert first[0].open == DEFAULT_START_PRICES["AAPL"]
    assert first[1].open == DEFAULT_START_PRICES["QQQ"]
    assert 20 <= first[2].open <= 500
    other = next(synthetic_bars(["ZZZZ"], regular_sessions(1), seed=2))
    assert other[0].open != first[2].open


def test_volatility_is_u_shaped_and_sessions_open_with_a_gap():
    sessions = regular_sessions(12)
    by_session = closes_by_session(SYMBOLS, sessions, seed=21)
    edge, middle = [], []
    gaps = 0
    for (index, symbol), bars in by_session.items():
        moves = [abs(math.log(b.close / b.open)) for b in bars]
        edge += moves[:30] + moves[-30:]
        middle += moves[150:240]
        if index > 0:
            gaps += by_session[(index - 1, symbol)][-1].close != bars[0].open
    assert sum(edge) / len(edge) > 1.3 * sum(middle) / len(middle)
    assert gaps >= 0.9 * len(SYMBOLS) * (len(sessions) - 1)


def test_daily_volatility_is_a_few_percent():
    by_session = closes_by_session(SYMBOLS, regular_sessions(20), seed=4)
    moves = [math.log(bars[-1].close / bars[0].open) for bars in by_session.values()]
    vol = math.sqrt(sum(m * m for m in moves) / len(moves))
    assert 0.01 < vol < 0.04


def test_trend_regimes_give_ema_crossings_and_some_trends_reach_four_atr():
    by_session = closes_by_session(SYMBOLS, regular_sessions(6), seed=9)
    crossings_per_session = []
    reached = trades = 0
    for bars in by_session.values():
        closes = [b.close for b in bars]
        fast, slow = ema(closes, 9), ema(closes, 21)
        sides = [1 if f > s else -1 for f, s in zip(fast, slow, strict=True)]
        crosses = [i for i in range(22, len(bars)) if sides[i] != sides[i - 1]]
        crossings_per_session.append(len(crosses))
        for k, i in enumerate(crosses):
            atr = sum(b.high - b.low for b in bars[i - 13 : i + 1]) / 14
            target = closes[i] + sides[i] * 4 * atr
            end = crosses[k + 1] if k + 1 < len(crosses) else len(bars)
            later = bars[i + 1 : end]
            trades += 1
            if sides[i] > 0:
                reached += any(b.high >= target for b in later)
            else:
                reached += any(b.low <= target for b in later)
    crossings_per_session.sort()
    assert crossings_per_session[0] >= 1
    assert crossings_per_session[len(crossings_per_session) // 2] >= 4
    assert reached >= 0.1 * trades


def test_synthetic_frame_has_the_replay_columns_and_the_same_numbers():
    sessions = regular_sessions(1)
    frame = synthetic_frame(["AAPL", "MSFT"], sessions, seed=2)
    assert frame.columns == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    first = next(synthetic_bars(["AAPL", "MSFT"], sessions, seed=2))
    assert frame.row(0) == tuple(
        getattr(first[0], f) for f in ("ts", "symbol", "open", "high", "low", "close", "volume")
    )


def test_bars_by_minute_groups_consecutive_bars_with_the_same_timestamp():
    minutes = list(synthetic_bars(SYMBOLS, regular_sessions(1), seed=1))
    assert list(bars_by_minute(flat(minutes))) == minutes


# -- replay ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_valid_file_round_trips_to_the_synthetic_bars(tmp_path, suffix):
    symbols = sorted(SYMBOLS)  # load_bars sorts by (timestamp, symbol)
    sessions = regular_sessions(7)
    frame = synthetic_frame(symbols, sessions, seed=13)
    path = tmp_path / f"bars{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    data = load_bars(path)
    assert data.bars == flat(synthetic_bars(symbols, sessions, seed=13))
    assert data.rejected == {} and data.examples == []
    assert data.symbols == tuple(symbols)
    assert all(bar.ts.tzinfo == NY for bar in data.bars[:50])


BAD_ROWS = [
    HEADER,
    "2024-03-04T09:30:00-05:00,AAPL,10,11,9,10.5,100",  # 2 ok
    "2024-03-04T09:31:00-05:00,AAPL,nan,11,9,10.5,100",  # 3 nan
    "2024-03-04T09:32:00-05:00,AAPL,10,11,9,,100",  # 4 nan (empty)
    "2024-03-04T09:33:00-05:00,AAPL,0,11,9,10.5,100",  # 5 non_positive_price
    "2024-03-04T09:34:00-05:00,AAPL,10,9,11,10,100",  # 6 high_below_low
    "2024-03-04T09:35:00-05:00,AAPL,12,11,9,10,100",  # 7 ohlc_inconsistent
    "2024-03-04T09:36:00-05:00,AAPL,10,11,9,10,-5",  # 8 negative_volume
    "not-a-time,AAPL,10,11,9,10,100",  # 9 bad_timestamp
    "2024-03-04T09:37:00-05:00,AAPL,ten,11,9,10,100",  # 10 bad_number
    "2024-03-04T09:38:00-05:00,AAPL,10,11,9,10,100",  # 11 ok
    "2024-03-04T09:37:00-05:00,AAPL,10,11,9,10,100",  # 12 out_of_order
    "2024-03-04T09:38:00-05:00,AAPL,10,11,9,10,100",  # 13 duplicate_timestamp
    "2024-03-04T09:37:00-05:00,MSFT,10,11,9,10,100",  # 14 ok: order is per symbol
]


def test_each_bad_bar_reason_is_counted_with_its_line(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="daytrader.data.replay"):
        data = load_bars(write_csv(tmp_path, BAD_ROWS))
    assert data.rejected == {
        "nan": 2,
        "non_positive_price": 1,
        "high_below_low": 1,
        "ohlc_inconsistent": 1,
        "negative_volume": 1,
        "bad_timestamp": 1,
        "bad_number": 1,
        "out_of_order": 1,
        "duplicate_timestamp": 1,
    }
    assert data.examples == [
        (3, "nan"),
        (4, "nan"),
        (5, "non_positive_price"),
        (6, "high_below_low"),
        (7, "ohlc_inconsistent"),
        (8, "negative_volume"),
        (9, "bad_timestamp"),
        (10, "bad_number"),
        (12, "out_of_order"),
        (13, "duplicate_timestamp"),
    ]
    assert [(b.symbol, b.ts.minute) for b in data.bars] == [("AAPL", 30), ("MSFT", 37), ("AAPL", 38)]
    assert len(caplog.records) == len(data.rejected)  # one line per reason, not per bar
    assert any("2 row(s) as nan" in r.getMessage() for r in caplog.records)


def test_bars_of_other_symbols_are_skipped_when_symbols_are_given(tmp_path):
    data = load_bars(write_csv(tmp_path, BAD_ROWS), symbols=["MSFT"])
    assert data.rejected == {"other_symbol": 12}
    assert data.symbols == ("MSFT",)
    assert [b.symbol for b in data.bars] == ["MSFT"]


def test_the_same_rows_are_rejected_from_parquet_with_row_numbers(tmp_path):
    frame = pl.read_csv(write_csv(tmp_path, BAD_ROWS), infer_schema=False)
    frame.write_parquet(tmp_path / "bars.parquet")
    data = load_bars(tmp_path / "bars.parquet")
    assert sum(data.rejected.values()) == 10 and len(data.bars) == 3
    assert data.examples[0] == (2, "nan")  # row 2 of the file (line 3 of the CSV)


CORRUPTIONS = ["nan", "zero", "negative", "high_below_low", "swap", "duplicate"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(CORRUPTIONS), st.integers(0, 59), st.integers(0, 59)),
        max_size=25,
    ),
    suffix=st.sampled_from([".csv", ".parquet"]),
)
def test_accepted_bars_are_valid_and_every_row_is_accounted_for(tmp_path, edits, suffix):
    base = synthetic_frame(["AAA", "BBB"], regular_sessions(1), seed=17).head(60)
    rows = [list(row) for row in base.iter_rows()]
    for kind, i, j in edits:
        row = rows[i % len(rows)]
        if kind == "nan":
            row[2 + j % 5] = float("nan")
        elif kind == "zero":
            row[2 + j % 4] = 0.0
        elif kind == "negative":
            row[2 + j % 4] = -1.0
        elif kind == "high_below_low":
            row[3], row[4] = row[4] - 1.0, row[3] + 1.0
        elif kind == "swap":
            other = rows[j % len(rows)]
            row[0], other[0] = other[0], row[0]
        else:
            rows.insert(j % len(rows), list(row))
    frame = pl.DataFrame(rows, schema=base.schema, orient="row")
    path = tmp_path / f"fuzz{suffix}"
    if suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)

    data = load_bars(path)

    assert all(is_valid(bar) for bar in data.bars)
    keys = [(bar.ts, bar.symbol) for bar in data.bars]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert len(data.bars) + sum(data.rejected.values()) == len(rows)


@pytest.mark.parametrize(
    ("bad_line", "what"),
    [
        ("2024-03-04T09:35:00-05:00,AAPL,10,11,9,10,100,extra", "extra field"),
        ("2024-03-04T09:35:00-05:00,AAPL,10,11,9,10", "missing field"),
    ],
)
def test_malformed_csv_row_names_the_file_and_line(tmp_path, bad_line, what):
    lines = [BAD_ROWS[0], *BAD_ROWS[1:6], bad_line, *BAD_ROWS[10:12]]
    path = write_csv(tmp_path, lines, name="broken.csv")
    with pytest.raises(ReplayError, match=r"broken\.csv.*line 7"):
        load_bars(path)


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join(BAD_ROWS[:3]) + "\n").encode() + b"2024-03-04T09:40:00Z,\xc4PL,1,1,1,1,1\n")
    with pytest.raises(ReplayError, match=r"latin\.csv.*line 4"):
        load_bars(path)


def test_blank_and_quoted_lines_keep_true_line_numbers(tmp_path):
    lines = [BAD_ROWS[0], BAD_ROWS[1], "", '2024-03-04T09:31:00-05:00,"AA\nPL",1,1,1,1,1', BAD_ROWS[3]]
    data = load_bars(write_csv(tmp_path, lines))
    assert data.examples == [(4, "bad_symbol"), (6, "nan")]  # a symbol with a line break
    assert [b.symbol for b in data.bars] == ["AAPL"]


def test_missing_file_raises_replay_error_naming_it(tmp_path):
    with pytest.raises(ReplayError, match=r"nowhere\.csv"):
        load_bars(tmp_path / "nowhere.csv")


@pytest.mark.parametrize("name", ["bars.txt", "bars.json"])
def test_unsupported_suffix_raises_replay_error(tmp_path, name):
    (tmp_path / name).write_text(HEADER + "\n")
    with pytest.raises(ReplayError, match=name.replace(".", r"\.")):
        load_bars(tmp_path / name)


def test_corrupt_parquet_raises_replay_error(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ReplayError, match=r"bad\.parquet"):
        load_bars(tmp_path / "bad.parquet")


def test_missing_column_is_named(tmp_path):
    lines = [line.rsplit(",", 1)[0] for line in BAD_ROWS[:3]]
    with pytest.raises(ReplayError, match="volume"):
        load_bars(write_csv(tmp_path, lines))


def test_unknown_columns_are_dropped_counted_and_logged(tmp_path, caplog):
    lines = [HEADER + ",vwap,note", BAD_ROWS[1] + ",10.2,x", BAD_ROWS[10] + ",10.1,"]
    with caplog.at_level(logging.WARNING, logger="daytrader.data.replay"):
        data = load_bars(write_csv(tmp_path, lines))
    assert data.rejected == {"unknown_column": 2}
    assert len(data.bars) == 2
    assert any("vwap" in r.getMessage() and "note" in r.getMessage() for r in caplog.records)


def test_naive_timestamps_are_new_york_time_and_offsets_are_converted(tmp_path):
    lines = [
        HEADER,
        "2024-03-04 09:30:00,AAPL,1,1,1,1,1",  # naive, EST
        "2024-03-04T14:31:00Z,AAPL,1,1,1,1,1",  # UTC
        "2024-03-04T09:32:00-05:00,AAPL,1,1,1,1,1",
        "2024-03-04T15:33:00+01:00,AAPL,1,1,1,1,1",
        "2024-07-01T09:30:00,AAPL,1,1,1,1,1",  # naive, EDT
        "2024-07-01T09:31:00.000000-0400,AAPL,1,1,1,1,1",
        "2024-03-10T02:30:00,AAPL,1,1,1,1,1",  # skipped by the DST change
    ]
    data = load_bars(write_csv(tmp_path, lines))
    stamps = [bar.ts for bar in data.bars]
    assert all(ts.tzinfo == NY for ts in stamps)
    assert [(ts.month, ts.hour, ts.minute) for ts in stamps] == [
        (3, 9, 30),
        (3, 9, 31),
        (3, 9, 32),
        (3, 9, 33),
        (7, 9, 30),
        (7, 9, 31),
    ]
    assert stamps[0].utcoffset() == timedelta(hours=-5)
    assert stamps[4].utcoffset() == timedelta(hours=-4)
    assert data.rejected == {"bad_timestamp": 1}
