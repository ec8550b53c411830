"""Text fields that never swallow the emergency-stop key: `!` stops trading from any field."""

from __future__ import annotations

from textual.widgets import Input

EMERGENCY_CHARACTER = "!"


class FieldInput(Input):
    """An Input that leaves `!` to the app's priority binding (no symbol, qty or price has one)."""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if character == EMERGENCY_CHARACTER:
            return False
        return super().check_consume_key(key, character)
