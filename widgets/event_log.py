"""Event log: orders, fills, rejections with the failing check, breaker trips, control actions and
broker errors; filter by level (`l`) and search (`/`)."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, RichLog

from daytrader.clock import EXCHANGE_TZ
from daytrader.engine import EngineSnapshot
from daytrader.models import LogEvent
from widgets.inputs import FieldInput

LEVELS = ("all", "warning", "error")  # the minimum level shown
_RANK = {"debug": 0, "info": 1, "warning": 2, "error": 3}
_MARK = {"warning": "!", "error": "X"}


def format_event(event: LogEvent) -> str:
    return (f"{event.ts.astimezone(EXCHANGE_TZ):%H:%M} {_MARK.get(event.level, ' ')} "
            f"{event.kind:<7} {event.message}")


def passes(event: LogEvent, level: str, search: str) -> bool:
    if level != "all" and _RANK.get(event.level, 1) < _RANK[level]:
        return False
    return not search or search.lower() in format_event(event).lower()


class LogLines(RichLog):
    """The log's lines. A RichLog wraps a line once, at the width it has when written; when the
    width changes (the terminal, or the layout settling at start) the lines are wrapped again,
    and the newest line stays in view whatever the size."""

    class WidthChanged(Message):
        pass

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.wrapped_at = 0

    def write_event(self, line: Text) -> None:
        """Wraps at the pane's width: RichLog would measure the line against the terminal's
        console, which is not the pane's width."""
        width = self.scrollable_content_region.width
        self.write(line, width=width if width > 0 and self.wrap else None)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width and event.size.width != self.wrapped_at:
            self.wrapped_at = event.size.width
            self.post_message(self.WidthChanged())
        elif self.auto_scroll:  # after the new size is laid out, so the end is the new end
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)


class EventLog(Vertical):
    """Keeps the last 1000 engine events; new ones are appended, a filter change rewrites."""

    COMPONENT_CLASSES = {"event-log--info", "event-log--warning", "event-log--error"}
    BINDINGS = [Binding("l", "cycle_level", "Log level")]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.events: deque[LogEvent] = deque(maxlen=1000)
        self.seen_seq = 0
        self.level = "all"
        self.search = ""
        self._title()

    def compose(self) -> ComposeResult:
        yield FieldInput(placeholder="search the log (/), Enter to keep, Esc to clear", id="log-search")
        # min_width 1: lines wrap at the pane's width (RichLog's default keeps them 78 wide).
        yield LogLines(id="log-lines", max_lines=1000, wrap=True, markup=False, auto_scroll=True,
                       min_width=1)

    def _title(self) -> None:
        self.border_title = "Events"
        shown = "all levels" if self.level == "all" else f"{self.level} and worse"
        search = f" · '{self.search}'" if self.search else ""
        self.border_subtitle = f"{shown}{search} · l: level · /: search"

    def _line(self, event: LogEvent) -> Text:
        style = self.get_component_rich_style(f"event-log--{event.level}", partial=True,
                                              default=None) if event.level in _MARK else None
        return Text(format_event(event), style=style or "")

    def show(self, snapshot: EngineSnapshot) -> None:
        if snapshot.event_seq == self.seen_seq:
            return
        fresh = [e for e in snapshot.events if e.seq > self.seen_seq]
        self.seen_seq = snapshot.event_seq
        self.events.extend(fresh)
        log = self.query_one(RichLog)
        for event in fresh:
            if passes(event, self.level, self.search):
                log.write_event(self._line(event))

    def visible_lines(self) -> list[str]:
        return [format_event(e) for e in self.events if passes(e, self.level, self.search)]

    def _rewrite(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        for event in self.events:
            if passes(event, self.level, self.search):
                log.write_event(self._line(event))
        self._title()

    @on(LogLines.WidthChanged)
    def _rewrap(self) -> None:
        self._rewrite()

    def action_cycle_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self._rewrite()

    def action_search(self) -> None:
        self.query_one("#log-search", Input).focus()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self._rewrite()

    @on(Input.Submitted, "#log-search")
    def _search_done(self, event: Input.Submitted) -> None:
        self.query_one(RichLog).focus()

    def on_key(self, event) -> None:
        search = self.query_one("#log-search", Input)
        if event.key == "escape" and search.has_focus:
            search.value = ""
            self.query_one(RichLog).focus()
            event.stop()
