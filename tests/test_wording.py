"""What people read: counts in the right number, tallies without Python's braces, charts labelled
with times, one short order id."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from daytrader.charting import padded_range, time_ticks
from daytrader.clock import EXCHANGE_TZ
from daytrader.models import short_order_id
from daytrader.snapshot import EmergencyReport
from daytrader.wording import agree, counts, plural
from widgets.emergency import emergency_text


def test_counts_read_in_the_right_number():
    assert plural(1, "position") == "1 position" and plural(3, "position") == "3 positions"
    assert plural(0, "close") == "0 closes" and plural(2, "trip") == "2 trips"
    assert plural(1200, "bar") == "1,200 bars" and plural(2, "entry") == "2 entries"
    assert agree(1, "was") == "was" and agree(0, "was") == "were" and agree(2, "was") == "were"
    assert counts({"stop_cooldown": 3, "buying_power": 1}) == "stop_cooldown 3, buying_power 1"
    assert counts({}) == "none"


def test_emergency_texts_say_1_position_not_all_1_positions():
    one = emergency_text(1, 1)
    assert "the 1 open order" in one and "the 1 position" in one and "all 1" not in one
    assert "closes all 3 positions at market, then" in emergency_text(3, 0)
    assert "cancels the 1 open order, then" in emergency_text(0, 1)
    nothing = emergency_text(0, 0)
    assert "No open order or position is known here" in nothing and "cancels no" not in nothing
    report = EmergencyReport(0.1, 5, 1, 1, True, (), 0, (), 20)
    assert "canceled 1 order, sent 1 close," in report.message


def test_one_short_order_id_for_sim_and_alpaca_ids():
    assert short_order_id("sim-000014") == "sim-000014"
    assert short_order_id("61e69015-8549-4bfd-b9c3-01e75de8ab5b") == "61e69015"
    assert short_order_id("x" * 30) == "x" * 12


def test_time_ticks_label_minutes_within_a_day_and_dates_across_days():
    day = [datetime(2026, 11, 24, 9, 30, tzinfo=EXCHANGE_TZ) + timedelta(minutes=i)
           for i in range(391)]
    ticks, labels = time_ticks(day)
    assert labels[0] == "09:30" and labels[-1] == "16:00" and ticks[-1] == 390
    weeks = [datetime(2026, 11, 2, 16, 0, tzinfo=EXCHANGE_TZ) + timedelta(days=i) for i in range(20)]
    assert time_ticks(weeks)[1][0] == "11-02"


def test_a_flat_series_gets_a_narrow_range_around_its_value():
    low, high = padded_range([100_000.0] * 50, min_span=50)
    assert 99_950 < low < 100_000 < high < 100_050


def test_backtest_report_charts_are_labelled_with_dates_not_bar_numbers(tmp_path):
    from daytrader.backtest_cli import _plot
    from daytrader.metrics import compute

    class Result:
        equity_curve = [(datetime(2026, 11, 2, 9, 31, tzinfo=EXCHANGE_TZ) + timedelta(days=d,
                         minutes=m), 100_000.0 + d * 10 + m) for d in range(5) for m in range(390)]
        metrics = compute([])

    out = io.StringIO()
    _plot(Result(), out)
    text = out.getvalue()
    assert "11-02" in text and "11-06" in text
    assert "1950" not in text and "1500" not in text  # no point numbers on the x axis


def test_a_backtest_without_trades_charts_a_flat_line_near_its_equity():
    """No trade: the equity is flat at $100,000. Its axis stays near it (plotext alone spread
    it from 50,000 to 150,000), in dollars, in the `backtest` report and on the console's
    backtest screen; the drawdown axis sits just under 0."""
    from daytrader.backtest_cli import _plot
    from daytrader.metrics import compute
    from widgets.backtest import CurveChart

    times = [datetime(2026, 11, 2, 9, 31, tzinfo=EXCHANGE_TZ) + timedelta(minutes=m)
             for m in range(10)]

    class Result:
        equity_curve = [(t, 100_000.0) for t in times]
        metrics = compute([])

    out = io.StringIO()
    _plot(Result(), out)
    text = out.getvalue()
    digits = text.replace(",", "")
    assert "100,0" in text and "150000" not in digits and " 50000" not in digits, text
    assert "09:39 09:40" not in text  # the last label not crammed against the one before
    equity, drawdown = CurveChart("Equity"), CurveChart("Drawdown %", drawdown=True)
    equity.show(times, [100_000.0] * 10)
    drawdown.show(times, [0.0] * 10)
    for chart in (equity, drawdown):
        chart.plt.plotsize(80, 14)
    screen = equity.plt.build()
    digits = screen.replace(",", "")
    assert "100,0" in screen and "150000" not in digits and " 50000" not in digits, screen
    assert "-0.10" in drawdown.plt.build() and "1.00" not in drawdown.plt.build()
