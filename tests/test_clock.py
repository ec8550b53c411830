"""NYSE sessions, holidays, early closes, DST and the sim clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daytrader.clock import (
    EXCHANGE_TZ,
    CalendarError,
    MarketCalendar,
    SimClock,
    WallClock,
    load_exchange_calendar,
)


@pytest.fixture(scope="module")
def cal() -> MarketCalendar:
    return MarketCalendar()


def et(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=EXCHANGE_TZ)


# --- holidays and early closes ---------------------------------------------------------------


def test_thanksgiving_2026_is_closed(cal):
    assert cal.session(date(2026, 11, 26)) is None
    assert not cal.is_session(date(2026, 11, 26))
    assert not cal.is_open(et(2026, 11, 26, 11, 0))


def test_day_after_thanksgiving_2026_closes_at_13_with_210_minutes(cal):
    session = cal.session(date(2026, 11, 27))
    assert session.open == et(2026, 11, 27, 9, 30)
    assert session.close == et(2026, 11, 27, 13, 0)
    assert session.early_close
    assert session.minutes == 210


def test_christmas_eve_2026_closes_at_13(cal):
    session = cal.session(date(2026, 12, 24))
    assert session.close == et(2026, 12, 24, 13, 0)
    assert session.early_close


def test_christmas_2026_is_closed(cal):
    assert not cal.is_session(date(2026, 12, 25))


def test_independence_day_observed_on_friday_2026_07_03_is_closed(cal):
    assert not cal.is_session(date(2026, 7, 3))


def test_normal_day_opens_0930_closes_1600_with_390_minutes(cal):
    session = cal.session(date(2026, 3, 4))
    assert session.open == et(2026, 3, 4, 9, 30)
    assert session.close == et(2026, 3, 4, 16, 0)
    assert session.open.tzinfo is EXCHANGE_TZ
    assert not session.early_close
    assert session.minutes == 390


def test_weekends_are_not_sessions(cal):
    assert not cal.is_session(date(2026, 3, 7))  # Saturday
    assert not cal.is_session(date(2026, 3, 8))  # Sunday
    assert not cal.is_open(et(2026, 3, 7, 12, 0))


# --- DST ---------------------------------------------------------------------------------------


def test_opens_at_1430_utc_in_winter(cal):
    assert cal.session(date(2026, 1, 15)).open.astimezone(UTC) == datetime(
        2026, 1, 15, 14, 30, tzinfo=UTC
    )


def test_opens_at_1330_utc_in_summer(cal):
    assert cal.session(date(2026, 7, 15)).open.astimezone(UTC) == datetime(
        2026, 7, 15, 13, 30, tzinfo=UTC
    )


def test_is_open_accepts_utc_timestamps_across_dst(cal):
    assert cal.is_open(datetime(2026, 7, 15, 13, 30, tzinfo=UTC))
    assert not cal.is_open(datetime(2026, 1, 15, 13, 30, tzinfo=UTC))


# --- is_open boundaries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (et(2026, 3, 4, 9, 29, 59), False),
        (et(2026, 3, 4, 9, 30), True),
        (et(2026, 3, 4, 15, 59, 59), True),
        (et(2026, 3, 4, 16, 0), False),
        (et(2026, 11, 27, 12, 59, 59), True),
        (et(2026, 11, 27, 13, 0), False),
    ],
)
def test_is_open_boundaries_are_open_inclusive_close_exclusive(cal, ts, expected):
    assert cal.is_open(ts) is expected
    assert (cal.session_at(ts) is not None) is expected


def test_is_open_after_an_open_answer_still_sees_the_close_other_days_and_naive_times():
    cal = MarketCalendar()  # its own: is_open remembers the session it last found open
    assert cal.is_open(et(2026, 3, 4, 10, 0))
    assert not cal.is_open(et(2026, 3, 4, 16, 0))
    assert not cal.is_open(et(2026, 3, 4, 9, 29, 59))
    assert cal.is_open(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))  # 10:00 ET, another zone
    assert not cal.is_open(et(2026, 3, 5, 9, 0))
    assert cal.is_open(et(2026, 3, 5, 15, 59))
    assert not cal.is_open(et(2026, 3, 4, 15, 0) + timedelta(days=3))  # Saturday
    with pytest.raises(CalendarError, match="naive"):
        cal.is_open(datetime(2026, 3, 5, 10, 0))


# --- navigation --------------------------------------------------------------------------------


def test_latest_session_started_on_saturday_is_friday(cal):
    assert cal.latest_session_started(et(2026, 3, 7, 12, 0)).date == date(2026, 3, 6)


def test_latest_session_started_before_tuesday_open_is_monday(cal):
    assert cal.latest_session_started(et(2026, 3, 3, 4, 55)).date == date(2026, 3, 2)


def test_latest_session_started_during_tuesday_is_tuesday(cal):
    assert cal.latest_session_started(et(2026, 3, 3, 10, 0)).date == date(2026, 3, 3)


def test_latest_session_started_after_close_is_today(cal):
    assert cal.latest_session_started(et(2026, 3, 3, 20, 0)).date == date(2026, 3, 3)


def test_next_open_skips_thanksgiving(cal):
    assert cal.next_open(et(2026, 11, 25, 16, 0)) == et(2026, 11, 27, 9, 30)


def test_next_open_is_strictly_after(cal):
    assert cal.next_open(et(2026, 3, 4, 9, 29)) == et(2026, 3, 4, 9, 30)
    assert cal.next_open(et(2026, 3, 4, 9, 30)) == et(2026, 3, 5, 9, 30)


def test_next_close_is_todays_close_while_open_else_the_next_sessions(cal):
    assert cal.next_close(et(2026, 11, 27, 10, 0)) == et(2026, 11, 27, 13, 0)
    assert cal.next_close(et(2026, 11, 25, 17, 0)) == et(2026, 11, 27, 13, 0)


def test_sessions_from_skips_holidays(cal):
    sessions = cal.sessions_from(date(2026, 12, 23))
    days = [next(sessions).date for _ in range(5)]
    assert days == [
        date(2026, 12, 23),
        date(2026, 12, 24),
        date(2026, 12, 28),
        date(2026, 12, 29),
        date(2026, 12, 30),
    ]


def test_sessions_from_a_holiday_starts_at_the_next_session(cal):
    assert next(cal.sessions_from(date(2026, 11, 26))).date == date(2026, 11, 27)


def test_previous_session_skips_weekend_and_holiday(cal):
    assert cal.previous_session(date(2026, 11, 27)).date == date(2026, 11, 25)
    assert cal.previous_session(date(2026, 3, 9)).date == date(2026, 3, 6)


# --- describe ---------------------------------------------------------------------------------


def test_describe_open_market(cal):
    assert cal.describe(et(2026, 3, 4, 13, 55)) == "open, closes 16:00 ET in 2h05m"


def test_describe_early_close(cal):
    assert cal.describe(et(2026, 11, 27, 12, 0)) == "open, closes 13:00 ET (early close) in 1h00m"


def test_describe_closed_over_the_weekend(cal):
    assert cal.describe(et(2026, 3, 6, 19, 20)) == "closed, opens Mon 09:30 ET in 2d14h"


def test_describe_premarket(cal):
    assert cal.describe(et(2026, 3, 4, 9, 0)) == "closed, opens 09:30 ET in 30m"


def test_describe_holiday(cal):
    assert cal.describe(et(2026, 11, 26, 12, 0)).startswith("closed (holiday), opens Fri 09:30 ET")


# --- errors -----------------------------------------------------------------------------------


def test_naive_datetime_is_refused(cal):
    naive = datetime(2026, 3, 4, 10, 0)
    for call in (cal.is_open, cal.session_at, cal.next_open, cal.latest_session_started):
        with pytest.raises(CalendarError, match="naive"):
            call(naive)


@pytest.mark.parametrize("day", [date(1990, 1, 2), date(2100, 1, 4)])
def test_dates_outside_the_calendar_raise_calendar_error_naming_the_range(cal, day):
    with pytest.raises(CalendarError, match=day.isoformat()) as excinfo:
        cal.session(day)
    assert cal.first_day.isoformat() in str(excinfo.value)
    assert cal.last_day.isoformat() in str(excinfo.value)
    with pytest.raises(CalendarError):
        cal.is_open(datetime.combine(day, time(10, 0), tzinfo=EXCHANGE_TZ))
    with pytest.raises(CalendarError):
        cal.sessions_from(day)


# --- clocks -----------------------------------------------------------------------------------


def test_sim_clock_moves_forward_and_refuses_to_go_backwards():
    clock = SimClock(et(2026, 3, 4, 9, 30))
    clock.set(et(2026, 3, 4, 9, 31))
    assert clock.now() == et(2026, 3, 4, 9, 31)
    with pytest.raises(CalendarError, match="backwards"):
        clock.set(et(2026, 3, 4, 9, 30))
    assert clock.now() == et(2026, 3, 4, 9, 31)


def test_sim_clock_refuses_naive_datetimes():
    with pytest.raises(CalendarError):
        SimClock(datetime(2026, 3, 4, 9, 30))
    clock = SimClock(et(2026, 3, 4, 9, 30))
    with pytest.raises(CalendarError):
        clock.set(datetime(2026, 3, 4, 9, 31))


def test_sim_clock_advance_to_reads_in_exchange_time_and_never_goes_back():
    clock = SimClock(et(2026, 3, 4, 9, 30))
    clock.advance_to(datetime(2026, 3, 4, 14, 31, tzinfo=UTC))
    assert clock.now() == et(2026, 3, 4, 9, 31) and clock.now().tzinfo is EXCHANGE_TZ
    clock.advance_to(et(2026, 3, 4, 9, 32))
    assert clock.now() == et(2026, 3, 4, 9, 32) and clock.now().tzinfo is EXCHANGE_TZ
    clock.advance_to(et(2026, 3, 4, 9, 31))  # the data's clock stays where it was
    assert clock.now() == et(2026, 3, 4, 9, 32)


def test_sim_clock_advances_by_elapsed_time_across_dst():
    clock = SimClock(et(2026, 3, 8, 1, 30))  # 02:00 EST jumps to 03:00 EDT
    clock.advance(timedelta(hours=1))
    assert clock.now() == et(2026, 3, 8, 3, 30)


def test_wall_clock_is_tz_aware_in_exchange_time():
    assert WallClock().now().tzinfo is EXCHANGE_TZ


# --- agreement with exchange_calendars ---------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_is_open_agrees_with_exchange_calendars(cal, data):
    xcal = load_exchange_calendar("XNYS")
    first = xcal.first_minute.to_pydatetime().replace(tzinfo=None)
    last = xcal.last_minute.to_pydatetime().replace(tzinfo=None)
    anywhere = st.datetimes(min_value=first, max_value=last)
    # Most random minutes fall outside trading hours; also draw near the open and close.
    near_hours = st.builds(
        lambda day, minute: datetime.combine(day, time(13)) + timedelta(minutes=minute),
        st.dates(
            min_value=first.date() + timedelta(days=1), max_value=last.date() - timedelta(days=1)
        ),
        st.integers(min_value=0, max_value=8 * 60),
    )
    naive_utc = data.draw(st.one_of(anywhere, near_hours))
    minute = naive_utc.replace(second=0, microsecond=0, tzinfo=UTC)
    expected = xcal.is_open_on_minute(pd.Timestamp(minute))
    assert cal.is_open(minute) == expected
    assert cal.is_open(minute.astimezone(EXCHANGE_TZ)) == expected
