"""Finding strategies and giving them their symbols.

A strategy is named by a spec: a built-in name (`ema_cross`, `opening_range`,
`vwap_reversion`), an installed package's entry point in the `daytrader.strategies` group, a
module (`package.module:Class`) or a file (`path/to/file.py:Class`), each optionally with
parameters: `opening_range(minutes=30,target_r=3)`.

STRATEGY names the strategy of every symbol not claimed in STRATEGY_SYMBOLS, which assigns others
per symbol: `opening_range(minutes=30)=NVDA,TSLA; vwap_reversion=AAPL`. A symbol claimed twice,
or one that is not in SYMBOLS, is an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from daytrader.strategy.params import StrategyError, build_params

ENTRY_POINT_GROUP = "daytrader.strategies"
BUILTINS = {
    "ema_cross": "daytrader.strategy.ema_crossover:EmaCrossover",
    "opening_range": "daytrader.strategy.opening_range:OpeningRange",
    "vwap_reversion": "daytrader.strategy.vwap_reversion:VwapReversion",
}
_SPEC = re.compile(r"^\s*(?P<target>[^()]+?)\s*(?:\((?P<params>[^()]*)\))?\s*$")
REQUIRED = ("name", "warm_up", "on_bar")


@dataclass(frozen=True, slots=True)
class Spec:
    target: str  # a built-in name, an entry point's name, module:Class or file.py:Class
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.target}({inner})" if inner else self.target


def parse_spec(text: str) -> Spec:
    match = _SPEC.match(text or "")
    if match is None or not match["target"].strip():
        raise StrategyError(f"strategy {text!r}: expected NAME, module:Class or file.py:Class, "
                            "optionally with (param=value,...)")
    params: list[tuple[str, str]] = []
    for item in filter(None, (p.strip() for p in (match["params"] or "").split(","))):
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise StrategyError(f"strategy {text!r}: parameter {item!r} is not name=value")
        params.append((name.strip(), value.strip()))
    return Spec(match["target"].strip(), tuple(params))


def load_class(target: str) -> type:
    """The strategy class a target names."""
    if target in BUILTINS:
        target = BUILTINS[target]
    elif ":" not in target:
        found = entry_points(group=ENTRY_POINT_GROUP, name=target)
        if not found:
            known = sorted(set(BUILTINS) | {e.name for e in entry_points(group=ENTRY_POINT_GROUP)})
            raise StrategyError(f"unknown strategy {target!r}; known: {', '.join(known)} (or "
                                "module:Class, or path/to/file.py:Class)")
        return _checked(next(iter(found)).load(), target)
    where, _, name = target.rpartition(":")
    if where.endswith(".py"):
        path = Path(where).expanduser()
        if not path.is_file():
            raise StrategyError(f"strategy {target!r}: no such file {path}")
        module_name = f"daytrader_user_strategy_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise StrategyError(f"strategy {target!r}: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise StrategyError(f"strategy {target!r}: {path} failed to load: "
                                f"{type(exc).__name__}: {exc}") from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise StrategyError(f"strategy {target!r}: cannot import {where}: "
                                f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, name, None)
    if cls is None:
        raise StrategyError(f"strategy {target!r}: {where} has no {name}")
    return _checked(cls, target)


def _checked(cls: Any, target: str) -> type:
    missing = [m for m in REQUIRED if not hasattr(cls, m)]
    if not isinstance(cls, type) or missing:
        raise StrategyError(f"strategy {target!r} is not a strategy: it lacks "
                            f"{', '.join(missing) or 'a class'} (see docs/strategies.md)")
    return cls


def build(spec: Spec | str, settings: Any = None, extra: Mapping[str, Any] | None = None) -> Any:
    """An instance of the strategy `spec` names, with its parameters (the spec's, then
    `extra`'s) over its defaults (a strategy with `from_settings` takes those from settings)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    cls = load_class(spec.target)
    values: dict[str, Any] = dict(spec.params)
    values.update(extra or {})
    params_type = getattr(cls, "Params", None)
    if params_type is None:
        if values:
            raise StrategyError(f"strategy {spec.target!r} takes no parameters, got "
                                f"{', '.join(values)}")
        return cls()
    defaults = None
    if settings is not None and hasattr(params_type, "from_settings"):
        defaults = params_type.from_settings(settings)  # settings give the defaults
    return cls(build_params(params_type, values, f"strategy {spec.target}", defaults))


def parse_assignment(text: str) -> list[tuple[Spec, tuple[str, ...]]]:
    """STRATEGY_SYMBOLS: `spec=SYM,SYM; spec=SYM`."""
    out = []
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        depth, cut = 0, -1
        for i, ch in enumerate(part):  # the last "=" outside the parameters' parentheses
            depth += ch == "("
            depth -= ch == ")"
            if ch == "=" and depth == 0:
                cut = i
        if cut <= 0:
            raise StrategyError(f"STRATEGY_SYMBOLS: {part!r} is not strategy=SYMBOL,SYMBOL")
        symbols = tuple(s.strip().upper() for s in part[cut + 1:].split(",") if s.strip())
        if not symbols:
            raise StrategyError(f"STRATEGY_SYMBOLS: {part!r} names no symbols")
        out.append((parse_spec(part[:cut]), symbols))
    return out


def assign(settings: Any, default: str | None = None,
           extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """symbol -> strategy instance for every symbol in SYMBOLS (one instance per spec, shared
    by its symbols). `default` overrides STRATEGY; `extra` parameters go to the default one."""
    symbols = tuple(settings.symbols)
    claimed: dict[str, Any] = {}
    by_name: dict[str, Spec] = {}
    for spec, its_symbols in parse_assignment(getattr(settings, "strategy_symbols", "")):
        strategy = build(spec, settings)
        _unique(strategy, spec, by_name)
        for symbol in its_symbols:
            if symbol not in symbols:
                raise StrategyError(f"STRATEGY_SYMBOLS: {symbol} ({spec}) is not in SYMBOLS "
                                    f"({', '.join(symbols)})")
            if symbol in claimed:
                raise StrategyError(f"STRATEGY_SYMBOLS: {symbol} is claimed twice "
                                    f"({claimed[symbol].name} and {spec})")
            claimed[symbol] = strategy
    rest = [s for s in symbols if s not in claimed]
    if rest:
        try:
            spec = parse_spec(default or getattr(settings, "strategy", "") or "ema_cross")
            strategy = build(spec, settings, extra)
        except StrategyError as exc:
            raise StrategyError(f"STRATEGY: {exc}") from None
        _unique(strategy, spec, by_name)
        claimed.update(dict.fromkeys(rest, strategy))
    return {s: claimed[s] for s in symbols}


def _unique(strategy: Any, spec: Spec, seen: dict[str, Spec]) -> None:
    """Two different specs under one name would be indistinguishable in the journal."""
    name = strategy.name
    if name in seen and seen[name] != spec:
        raise StrategyError(f"two strategies named {name!r} ({seen[name]} and {spec}): give "
                            "one a different `name`, or assign both sets of symbols to one")
    seen[name] = spec
