"""How counts and money read in messages: "1 position", "2 positions", never "1 positions";
tallies by name as "stop_cooldown 3, buying_power 1", never a Python dict; "-$1,234.50"."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

IRREGULAR = {"is": "are", "was": "were", "has": "have"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`count` and the noun in the right number: plural(1, "close") -> "1 close"."""
    if count == 1:
        return f"1 {noun}"
    return f"{count:,} {many or IRREGULAR.get(noun) or _plural(noun)}"


def agree(count: int, verb: str) -> str:
    """The verb that goes with `count` things: agree(1, "was") -> "was", agree(3, "was") -> "were"."""
    return verb if count == 1 else IRREGULAR.get(verb, verb)


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def counts(tally: Mapping[str, int], empty: str = "none") -> str:
    """A tally by name, largest first: "stop_cooldown 3, buying_power 1"; `empty` when none."""
    items = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {count:,}" for name, count in items) or empty


def money(value: Decimal | float | None, signed: bool = False) -> str:
    """Dollars with cents and separators, "-$1,234.50" ("+$12.00" when `signed`); "-" for None."""
    if value is None:
        return "-"
    v = float(value)
    sign = ("+" if v > 0 else "-" if v < 0 else " ") if signed else ("-" if v < 0 else "")
    return f"{sign}${abs(v):,.2f}"
