"""Market calendar and session times on the real NYSE calendar, plus wall and simulated clocks."""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import exchange_calendars

EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_CLOSE = time(16, 0)


class CalendarError(Exception):
    """A question the calendar cannot answer: a date outside its range, a naive datetime, ..."""


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day: its date and the tz-aware (America/New_York) open and close."""

    date: date
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        """True when the session closes before the regular 16:00 ET close."""
        return self.close.astimezone(EXCHANGE_TZ).time() < REGULAR_CLOSE

    @property
    def minutes(self) -> int:
        """Number of one-minute bars in the session: 390 normally, 210 on a 13:00 close."""
        return int((self.close - self.open).total_seconds()) // 60


@functools.cache
def load_exchange_calendar(name: str = "XNYS") -> exchange_calendars.ExchangeCalendar:
    """The exchange_calendars calendar object, loaded once per process (it is slow to build)."""
    import exchange_calendars as xcals

    try:
        return xcals.get_calendar(name)
    except xcals.errors.InvalidCalendarName as exc:
        raise CalendarError(f"unknown exchange calendar {name!r}") from exc


def _sessions_from_schedule(cal: exchange_calendars.ExchangeCalendar) -> list[Session]:
    """Every session of `cal`, in date order, with open/close converted to exchange time."""
    schedule = cal.schedule
    opens = schedule["open"].to_numpy(dtype="datetime64[s]").astype("int64").tolist()
    closes = schedule["close"].to_numpy(dtype="datetime64[s]").astype("int64").tolist()
    days = schedule.index.date
    return [
        Session(
            date=day,
            open=datetime.fromtimestamp(open_s, EXCHANGE_TZ),
            close=datetime.fromtimestamp(close_s, EXCHANGE_TZ),
        )
        for day, open_s, close_s in zip(days, opens, closes, strict=True)
    ]


def _to_exchange_time(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise CalendarError(f"naive datetime {ts.isoformat()}: pass a tz-aware datetime")
    return ts.astimezone(EXCHANGE_TZ)


def format_duration(delta: timedelta) -> str:
    """A short countdown, rounded up to the minute: '45m', '2h05m', '1d14h'."""
    minutes = max(0, math.ceil(delta.total_seconds() / 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"


class MarketCalendar:
    """Sessions of one exchange (NYSE by default), indexed by date for fast lookups."""

    def __init__(self, name: str = "XNYS") -> None:
        self.name = name
        self._sessions = _sessions_from_schedule(load_exchange_calendar(name))
        if not self._sessions:
            raise CalendarError(f"calendar {name} has no sessions")
        self._dates = [s.date for s in self._sessions]
        self._by_date = {s.date: s for s in self._sessions}
        self.first_day = self._dates[0]
        self.last_day = self._dates[-1]
        self._open_session: Session | None = None  # the one `is_open` found open last

    def __repr__(self) -> str:
        return f"MarketCalendar({self.name!r}, {self.first_day} to {self.last_day})"

    def _check_in_range(self, day: date) -> None:
        if not self.first_day <= day <= self.last_day:
            raise CalendarError(
                f"{day.isoformat()} is outside the {self.name} calendar "
                f"({self.first_day.isoformat()} to {self.last_day.isoformat()})"
            )

    def session(self, day: date) -> Session | None:
        """The session on `day`, or None on a weekend or holiday."""
        session = self._by_date.get(day)
        if session is None:
            self._check_in_range(day)
        return session

    def is_session(self, day: date) -> bool:
        return self.session(day) is not None

    def is_open(self, ts: datetime) -> bool:
        """True when `ts` falls in a session: open <= ts < close."""
        last = self._open_session
        if last is not None and ts.tzinfo is EXCHANGE_TZ and last.open <= ts < last.close:
            return True  # most asks (one or two per order) fall in the session asked before
        if ts.tzinfo is None:
            raise CalendarError(f"naive datetime {ts.isoformat()}: pass a tz-aware datetime")
        local = ts.astimezone(EXCHANGE_TZ)
        session = self._by_date.get(local.date())
        if session is None:
            self._check_in_range(local.date())
            return False
        if session.open <= local < session.close:
            self._open_session = session
            return True
        return False

    def session_at(self, ts: datetime) -> Session | None:
        """The session open at `ts` (open <= ts < close), or None when the market is closed."""
        local = _to_exchange_time(ts)
        session = self.session(local.date())
        if session is not None and session.open <= local < session.close:
            return session
        return None

    def _session_after(self, day: date) -> Session:
        i = bisect_right(self._dates, day)
        if i >= len(self._sessions):
            raise CalendarError(
                f"no {self.name} session after {day.isoformat()}: "
                f"the calendar ends {self.last_day.isoformat()}"
            )
        return self._sessions[i]

    def next_session(self, ts: datetime) -> Session:
        """The first session that opens strictly after `ts`."""
        local = _to_exchange_time(ts)
        today = self.session(local.date())
        if today is not None and local < today.open:
            return today
        return self._session_after(local.date())

    def next_open(self, ts: datetime) -> datetime:
        """The first session open strictly after `ts`."""
        return self.next_session(ts).open

    def next_close(self, ts: datetime) -> datetime:
        """The close of the session open at `ts`, or else of the next session to open."""
        local = _to_exchange_time(ts)
        session = self.session_at(local)
        if session is not None:
            return session.close
        return self.next_session(local).close

    def latest_session_started(self, ts: datetime) -> Session:
        """The latest session with open <= ts: today's once it has opened, else the previous one."""
        local = _to_exchange_time(ts)
        today = self.session(local.date())
        if today is not None and today.open <= local:
            return today
        return self.previous_session(local.date())

    def sessions_from(self, day: date) -> Iterator[Session]:
        """Consecutive sessions from `day` (inclusive if it is a session) to the calendar's end."""
        self._check_in_range(day)
        return iter(self._sessions[bisect_left(self._dates, day) :])

    def previous_session(self, day: date) -> Session:
        """The last session strictly before `day`."""
        self._check_in_range(day)
        i = bisect_left(self._dates, day) - 1
        if i < 0:
            raise CalendarError(
                f"no {self.name} session before {day.isoformat()}: "
                f"the calendar starts {self.first_day.isoformat()}"
            )
        return self._sessions[i]

    def describe(self, ts: datetime) -> str:
        """The market's state at `ts` for a status bar, e.g. 'open, closes 16:00 ET in 2h05m'."""
        local = _to_exchange_time(ts)
        session = self.session_at(local)
        if session is not None:
            early = " (early close)" if session.early_close else ""
            return (
                f"open, closes {session.close:%H:%M} ET{early} "
                f"in {format_duration(session.close - local)}"
            )
        today = self.session(local.date())
        if today is None:
            state = "closed (weekend)" if local.weekday() >= 5 else "closed (holiday)"
        else:
            state = "closed"
        try:
            opens = self.next_open(local)
        except CalendarError:
            return f"{state}, no session left in the calendar"
        when = f"{opens:%H:%M}" if opens.date() == local.date() else f"{opens:%a %H:%M}"
        return f"{state}, opens {when} ET in {format_duration(opens - local)}"


class Clock(Protocol):
    def now(self) -> datetime: ...

    def advance_to(self, ts: datetime) -> None:
        """The data says it is now `ts`: a sim clock moves there (never back); a wall clock,
        which knows better, stays."""


class WallClock:
    """The real time, in exchange time."""

    def now(self) -> datetime:
        return datetime.now(EXCHANGE_TZ)

    def advance_to(self, ts: datetime) -> None:
        pass


class SimClock:
    """The data's clock in sim/replay: moves forward only, as bars arrive."""

    def __init__(self, start: datetime) -> None:
        self._now = _to_exchange_time(start)

    def now(self) -> datetime:
        return self._now

    def set(self, ts: datetime) -> None:
        """Move the clock to `ts`; refuses to go backwards."""
        local = _to_exchange_time(ts)
        if local < self._now:
            raise CalendarError(
                f"sim clock cannot go backwards: {local.isoformat()} < {self._now.isoformat()}"
            )
        self._now = local

    def advance_to(self, ts: datetime) -> None:
        if ts > self._now:
            # Bars come in exchange time already (once a minute in a backtest): that zone's time
            # is its own exchange time, as astimezone would return it.
            self._now = ts if ts.tzinfo is EXCHANGE_TZ else _to_exchange_time(ts)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta` of elapsed time (not wall time across DST)."""
        self.set(self._now.astimezone(UTC) + delta)
