"""Typed strategy parameters: a frozen dataclass per strategy whose fields carry their sweep
bounds, read from text (settings, `--param name=value`) with a clear error naming the field."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

P = TypeVar("P")


class StrategyError(ValueError):
    """A strategy that cannot be found, built or assigned; the message says which and why."""


def param(default: Any, low: float | None = None, high: float | None = None,
          step: float | None = None, help: str = "") -> Any:
    """A parameter field: its default, the range a value must be in (and a sweep walks), and
    what it means. Booleans need no range."""
    return field(default=default, metadata={"low": low, "high": high, "step": step, "help": help})


@dataclass(frozen=True, slots=True)
class ParamInfo:
    name: str
    kind: str  # "int", "float", "bool"
    default: Any
    low: float | None
    high: float | None
    step: float | None
    help: str


def describe(params_type: type) -> list[ParamInfo]:
    """Each parameter of a strategy's params dataclass, for --help, the console and the API."""
    out = []
    for f in dataclasses.fields(params_type):
        kind = {bool: "bool", int: "int", float: "float"}.get(type(f.default), "str")
        meta = f.metadata
        out.append(ParamInfo(f.name, kind, f.default, meta.get("low"), meta.get("high"),
                             meta.get("step"), meta.get("help", "")))
    return out


def _expects(info: ParamInfo) -> str:
    if info.kind == "bool":
        return "true or false"
    what = "a whole number" if info.kind == "int" else "a number"
    if info.low is not None and info.high is not None:
        return f"{what} from {info.low:g} to {info.high:g}"
    return what


def parse_value(info: ParamInfo, raw: Any, owner: str) -> Any:
    """One value, from text or a number, checked against the parameter's type and range."""
    text = str(raw).strip()
    bad = StrategyError(f"{owner}: parameter {info.name}: expected {_expects(info)}, got {text!r}")
    if len(text) > 40:
        raise bad
    if info.kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise bad
    try:
        number = float(text)
    except ValueError:
        raise bad from None
    if not math.isfinite(number):
        raise bad
    if info.kind == "int":
        if number != int(number):
            raise bad
        number = int(number)
    if (info.low is not None and number < info.low) or (info.high is not None and number > info.high):
        raise bad
    return number


def build_params(params_type: type[P], values: Mapping[str, Any], owner: str,
                 base: P | None = None) -> P:
    """The params dataclass with `values` (names as in the dataclass) over `base` (or the
    dataclass's defaults)."""
    infos = {i.name: i for i in describe(params_type)}
    unknown = sorted(set(values) - set(infos))
    if unknown:
        raise StrategyError(f"{owner}: unknown parameter {', '.join(unknown)}; known: "
                            f"{', '.join(infos) or 'none'}")
    parsed = {name: parse_value(infos[name], raw, owner) for name, raw in values.items()}
    try:
        if base is not None:
            return dataclasses.replace(base, **parsed)
        return params_type(**parsed)
    except ValueError as exc:  # a check across fields in the dataclass's __post_init__
        raise StrategyError(f"{owner}: {exc}") from None


def as_dict(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
