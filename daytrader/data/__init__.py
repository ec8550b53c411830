"""Market data sources: seeded synthetic minute bars and validated replay files."""

from daytrader.data.replay import ReplayData, ReplayError, bars_by_minute, load_bars
from daytrader.data.synthetic import DEFAULT_START_PRICES, synthetic_bars, synthetic_frame

__all__ = [
    "DEFAULT_START_PRICES",
    "ReplayData",
    "ReplayError",
    "bars_by_minute",
    "load_bars",
    "synthetic_bars",
    "synthetic_frame",
]
