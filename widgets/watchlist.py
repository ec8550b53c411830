"""Watchlist pane: every symbol of the universe with its last price, change since the open,
volume, the strategy's indicators and how far its next signal is, the position and its P&L.
`o` changes the sort, `O` reverses it; Enter opens the symbol's screen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from textual.binding import Binding

from daytrader.engine import EngineSnapshot
from daytrader.market import Quote
from daytrader.models import Position
from widgets.formatting import compact_number, money, pct, price, tone
from widgets.live_table import Cell, Column, Row
from widgets.symbol_table import SymbolTable

# What the strategy would do at its next signal, in a word a trader reads at a glance.
ACTIONS = {"enter_long": "buy", "enter_short": "short", "exit": "exit"}
NEAR_SIGNAL_PCT = 0.10  # within this many percent of its trigger a row is marked as close


@dataclass(frozen=True, slots=True)
class Sort:
    key: str
    label: str
    value: Callable[[Quote, Position | None, Decimal], float | str]


def _distance(q: Quote, p: Position | None, r: Decimal) -> float:
    d = q.signal_distance_pct
    return abs(d) if d is not None else float("inf")


SORTS = (
    Sort("symbol", "symbol", lambda q, p, r: q.symbol),
    Sort("signal", "distance to signal", _distance),
    Sort("change", "change %", lambda q, p, r: q.change_pct if q.change_pct is not None else 0.0),
    Sort("volume", "volume", lambda q, p, r: q.volume),
    Sort("pnl", "P&L", lambda q, p, r: float(r + (p.unrealized_pnl if p else 0))),
)


def signal_text(q: Quote) -> tuple[Cell, Cell]:
    """The next signal ("buy ↑ 241.35") and the distance to it in percent."""
    nxt = q.next_signal
    if nxt is None:
        return ("warming up", "muted"), ""
    if nxt.trigger is None:
        return (ACTIONS.get(nxt.action, nxt.action or "-"), "muted"), ""
    arrow = "↑" if nxt.above else "↓"
    # With nothing to do at the cross (flat, shorts off) it still shows where the cross is.
    what = f"{ACTIONS.get(nxt.action, nxt.action) if nxt.action else 'cross'} {arrow} " \
           f"{price(nxt.trigger)}"
    distance = q.signal_distance_pct
    if distance is None:
        return what, ""
    near = abs(distance) <= NEAR_SIGNAL_PCT
    return ((what, "warning") if near and nxt.action else (what, "" if nxt.action else "muted"),
            (pct(distance), "warning" if near else ""))


def watchlist_columns(indicators: tuple[str, ...]) -> tuple[Column, ...]:
    """The most telling columns first, so a narrow terminal cuts the least useful ones."""
    return (
        Column("symbol", "Symbol", 6),
        Column("last", "Last", 9, "right"),
        Column("chg-pct", "Chg %", 7, "right"),
        Column("signal", "Next signal", 14),
        Column("dist", "To sig", 7, "right"),
        Column("pos", "Pos", 5, "right"),  # shares held: +82, -40
        Column("upnl", "Unrl $", 10, "right"),
        Column("rpnl", "Real $", 10, "right"),
        Column("chg", "Chg $", 7, "right"),
        Column("volume", "Volume", 6, "right"),
        *(Column(f"ind-{name}", name, 8, "right") for name in indicators),
    )


def watchlist_row(q: Quote, position: Position | None, realized: Decimal,
                  indicators: tuple[str, ...] | None = None) -> Row:
    """One symbol's row; `indicators`: the indicator columns, by name (symbols traded by other
    strategies have other indicators: a name a symbol lacks is blank)."""
    names = tuple(q.indicators) if indicators is None else indicators
    signal, distance = signal_text(q)
    change_tone = tone(q.change) if q.change is not None else "muted"
    unrealized = position.unrealized_pnl if position is not None else None
    return q.symbol, (
        q.symbol,
        price(q.last),
        (pct(q.change_pct), change_tone) if q.change_pct is not None else ("-", "muted"),
        signal,
        distance,
        f"{position.qty:+d}" if position is not None else "",
        (money(unrealized, signed=True), tone(unrealized)) if unrealized is not None else "",
        (money(realized, signed=True), tone(realized)) if realized else "",
        (f"{q.change:+,.2f}", change_tone) if q.change is not None else ("-", "muted"),
        compact_number(q.volume) if q.bars else ("-", "muted"),
        *(price(v) if (v := q.indicators.get(name)) is not None
          else ("-", "muted") if name in q.indicators else "" for name in names),
    )


class WatchlistTable(SymbolTable):
    """One row per symbol; the cursor stays on its symbol whatever the sort."""

    BINDINGS = [
        Binding("o", "next_sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(watchlist_columns(()), empty_text="no symbols yet", fixed=1, id=id,
                         classes=classes)
        self.border_title = "Watchlist"
        self.sort = SORTS[0]
        self.descending = False
        self._indicators: tuple[str, ...] = ()
        # symbol -> (what its row was made from, the row): a row is made again only when its
        # quote, position or realized P&L changed (a hundred symbols, a few of them moving).
        self._made: dict[str, tuple[tuple, Row]] = {}
        self._snapshot: EngineSnapshot | None = None
        self._title()

    def _title(self) -> None:
        direction = "↓" if self.descending else "↑"
        self.border_subtitle = f"sort: {self.sort.label} {direction} · o: sort · Enter: open"

    def show(self, snapshot: EngineSnapshot) -> None:
        self._snapshot = snapshot
        # The strategies' indicators become the last columns, every name once.
        names = tuple(dict.fromkeys(n for q in snapshot.quotes for n in q.indicators))
        if names != self._indicators:
            self._indicators = names
            self._made.clear()
            self.set_columns(watchlist_columns(names))
        positions = {p.symbol: p for p in snapshot.positions}
        realized = snapshot.realized_by_symbol
        zero = Decimal(0)
        rows = [(q, positions.get(q.symbol), realized.get(q.symbol, zero)) for q in snapshot.quotes]
        key = self.sort.value
        rows.sort(key=lambda r: key(*r), reverse=self.descending)
        made = []
        for quote, position, real in rows:
            cached = self._made.get(quote.symbol)
            if cached is None or cached[0] != (quote, position, real):
                cached = self._made[quote.symbol] = ((quote, position, real),
                                                     watchlist_row(quote, position, real, names))
            made.append(cached[1])
        self.set_rows(made)

    def action_next_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        # Distance and symbol read best nearest/first; changes and P&L biggest first.
        self.descending = self.sort.key in ("change", "volume", "pnl")
        self._resort()

    def action_reverse_sort(self) -> None:
        self.descending = not self.descending
        self._resort()

    def _resort(self) -> None:
        self._title()
        if self._snapshot is not None:
            self.show(self._snapshot)
