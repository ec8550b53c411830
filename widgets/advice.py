"""How the advisor's opinion on an entry reads in a table cell: verdict and confidence, toned."""

from __future__ import annotations

from daytrader.advisor.opinion import Opinion

ADVICE_WIDTH = 11
_TONE = {"agree": "positive", "caution": "warning", "veto": "negative"}


def advice_cell(opinion: Opinion | None) -> str | tuple[str, str]:
    """"agree .80", "caution .60", "VETO .90" (a veto shouts), "skipped", or "" (not asked)."""
    if opinion is None:
        return ""
    if opinion.verdict is None:
        return ("skipped", "muted")
    word = opinion.verdict.upper() if opinion.verdict == "veto" else opinion.verdict
    confidence = f"{opinion.confidence:.2f}".lstrip("0") if opinion.confidence < 1 else "1.0"
    return (f"{word} {confidence}", _TONE[opinion.verdict])
