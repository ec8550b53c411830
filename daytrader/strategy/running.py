"""The strategies of a run: which one trades each symbol, which are enabled, and a wall around
each, so that an exception inside one strategy disables that strategy alone.

The engine asks here for every decision and every reading; nothing else calls a strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from daytrader.models import Bar, Side, Signal
from daytrader.strategy import NextSignal, Strategy
from daytrader.strategy.params import as_dict


@dataclass(frozen=True, slots=True)
class StrategyState:
    """One strategy as the console, the API and `ctl` show it."""

    name: str
    symbols: tuple[str, ...]
    enabled: bool
    params: dict[str, Any]
    error: str = ""  # why it was disabled, when it failed


Failure = Callable[[str, str, BaseException], None]  # (strategy name, what it was doing, error)


class RunningStrategies:
    def __init__(self, by_symbol: Mapping[str, Strategy], on_failure: Failure | None = None) -> None:
        self.by_symbol: dict[str, Strategy] = dict(by_symbol)
        self.by_name: dict[str, Strategy] = {}
        for strategy in self.by_symbol.values():
            self.by_name.setdefault(strategy.name, strategy)
        self.enabled: dict[str, bool] = dict.fromkeys(self.by_name, True)
        self.errors: dict[str, str] = {}
        self.on_failure = on_failure
        self._deciding: dict[str, Strategy] = {}  # symbol -> its strategy, while it decides
        self._refresh()

    def _refresh(self) -> None:
        """Which symbols' strategies decide now (enabled and not failed): one lookup per bar."""
        self._deciding = {symbol: s for symbol, s in self.by_symbol.items()
                          if self.enabled[s.name] and s.name not in self.errors}
        # One strategy deciding every symbol that decides, and able to decide a minute at once:
        # its minutes go to it whole (see on_bars).
        deciding = {id(s): s for s in self._deciding.values()}
        sole = next(iter(deciding.values())) if len(deciding) == 1 else None
        self._sole: Strategy | None = sole if callable(getattr(sole, "on_bars", None)) else None

    @property
    def names(self) -> list[str]:
        return list(self.by_name)

    def of(self, symbol: str) -> Strategy | None:
        return self.by_symbol.get(symbol)

    def name_of(self, symbol: str) -> str:
        strategy = self.by_symbol.get(symbol)
        return strategy.name if strategy is not None else "manual"

    def symbols_of(self, name: str) -> tuple[str, ...]:
        return tuple(s for s, x in self.by_symbol.items() if x.name == name)

    def set_enabled(self, name: str, enabled: bool) -> None:
        if name not in self.by_name:
            raise KeyError(name)
        self.enabled[name] = enabled
        if enabled:
            self.errors.pop(name, None)
        self._refresh()

    def _failed(self, strategy: Strategy, doing: str, exc: BaseException) -> None:
        self.enabled[strategy.name] = False
        self.errors[strategy.name] = f"{doing}: {type(exc).__name__}: {exc}"
        self._refresh()
        if self.on_failure is not None:
            self.on_failure(strategy.name, doing, exc)

    # -- the calls, each behind the wall --------------------------------------------------------------
    def warm_up(self, bar: Bar, deciding: bool = False) -> None:
        """Keeps the symbol's strategy's indicators current. `deciding`: the bar came for a
        decision (to a disabled strategy, which decides nothing)."""
        strategy = self.by_symbol.get(bar.symbol)
        if strategy is None or strategy.name in self.errors:
            return
        try:
            strategy.warm_up(bar)
        except Exception as exc:
            doing = f"bar of {bar.symbol} at {bar.ts:%H:%M}" if deciding else f"warm-up on {bar.symbol}"
            self._failed(strategy, doing, exc)

    def on_bar(self, bar: Bar, position_qty: int) -> Signal | None:
        """The symbol's strategy's decision (see on_bars)."""
        for signal in self.on_bars((bar,), {bar.symbol: position_qty}):
            return signal
        return None

    def on_bars(self, bars: Sequence[Bar], positions: Mapping[str, int]) -> Iterator[Signal]:
        """Each bar's decision by its symbol's strategy, in turn, as they are asked for: a
        caller acts on a signal before the next bar is decided (its position is read then from
        `positions`, symbol -> signed shares, a live view: absent is flat).
        A disabled strategy keeps its indicators current (so enabling it again needs no
        warm-up) but decides nothing; a failing one is disabled."""
        sole = self._sole
        if sole is not None:
            deciding = self._deciding
            for bar in bars:
                if bar.symbol not in deciding:
                    break  # a bar no strategy decides: bar by bar
            else:
                yield from self._minute_of(sole, bars, positions)
                return
        for bar in bars:
            strategy = self._deciding.get(bar.symbol)
            if strategy is None:  # no strategy, a failed one, or a disabled one (kept warm)
                self.warm_up(bar, deciding=True)
                continue
            try:
                signal = strategy.on_bar(bar, positions.get(bar.symbol, 0))
            except Exception as exc:
                self._failed(strategy, f"bar of {bar.symbol} at {bar.ts:%H:%M}", exc)
                continue
            if signal is None:
                continue
            if not isinstance(signal, Signal) or signal.symbol != bar.symbol:
                self._failed(strategy, f"bar of {bar.symbol} at {bar.ts:%H:%M}",
                             TypeError(f"on_bar returned {signal!r:.120}, not a Signal for "
                                       f"{bar.symbol}"))
                continue
            yield signal

    def _minute_of(self, strategy: Strategy, bars: Sequence[Bar], positions: Mapping[str, int]
                   ) -> Iterator[Signal]:
        """A minute decided by the one strategy deciding all its symbols, in one call of its
        `on_bars` (the same decisions as `on_bar` bar by bar, without a call per bar), behind
        the same wall. Disabled while the minute is acted on (from the console, say), it
        finishes the minute with its signals dropped, its indicators moving as a warm-up's."""
        try:
            for signal in strategy.on_bars(bars, positions):  # type: ignore[attr-defined]
                if not isinstance(signal, Signal) or all(b.symbol != signal.symbol for b in bars):
                    self._failed(strategy, f"bars at {bars[0].ts:%H:%M}", TypeError(
                        f"on_bars yielded {signal!r:.120}, not a Signal for one of its bars"))
                    return
                if self._deciding.get(signal.symbol) is strategy:
                    yield signal
        except Exception as exc:
            self._failed(strategy, f"bars at {bars[0].ts:%H:%M}", exc)

    def _ask(self, symbol: str, method: str, default: Any, *args: Any) -> Any:
        strategy = self.by_symbol.get(symbol)
        if strategy is None or strategy.name in self.errors or not hasattr(strategy, method):
            return default
        try:
            return getattr(strategy, method)(*args)
        except Exception as exc:
            self._failed(strategy, f"{method} of {symbol}", exc)
            return default

    def bracket(self, symbol: str, side: Side, price: Decimal
                ) -> tuple[Decimal | None, Decimal | None]:
        return self._ask(symbol, "bracket", (None, None), symbol, side, price)

    def indicator_values(self, symbol: str) -> dict[str, float | None]:
        return self._ask(symbol, "indicator_values", {}, symbol)

    def chart_lines(self, symbol: str) -> tuple[str, ...]:
        return self._ask(symbol, "chart_lines", ())

    def next_signal(self, symbol: str, position_qty: int) -> NextSignal | None:
        return self._ask(symbol, "next_signal", None, symbol, position_qty)

    def states(self) -> tuple[StrategyState, ...]:
        out = []
        for name, strategy in self.by_name.items():
            params = getattr(strategy, "params", None)
            shown = as_dict(params) if params is not None and hasattr(
                params, "__dataclass_fields__") else {}
            out.append(StrategyState(name, self.symbols_of(name), self.enabled[name], shown,
                                     self.errors.get(name, "")))
        return tuple(out)
