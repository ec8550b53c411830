"""DayTrader engine: data, indicators, strategy, risk, orders, brokers and positions; no UI."""

__version__ = "0.1.0"
