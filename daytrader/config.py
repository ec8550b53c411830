"""Settings from the environment and `.env` (python-dotenv), validated at start-up; secrets masked."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from daytrader.symbols import is_symbol, normalize_symbol

MODES = ("sim", "paper", "live", "backtest")
ADVISOR_MODES = ("off", "advise", "veto")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the setting and what it should be."""


class Secret:
    """A secret value whose repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Settings:
    mode: str = "sim"
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META")
    starting_cash: Decimal = Decimal("100000")
    trading_enabled_at_start: bool = True
    # Risk limits (the seed's six checks, plus the stop-loss cooldown).
    max_daily_loss_pct: float = 5.0
    max_positions: int = 5
    risk_per_trade_pct: float = 1.0
    cooldown_after_stops: int = 3
    cooldown_minutes: int = 60
    # Strategy (seed: EMA(9)/EMA(21) crossover, stop 2xATR(14), take-profit 4xATR(14)).
    ema_fast: int = 9
    ema_slow: int = 21
    atr_period: int = 14
    stop_atr_mult: float = 2.0
    take_profit_atr_mult: float = 4.0
    allow_shorts: bool = False
    flatten_minutes_before_close: int = 5
    # Which strategy trades which symbols (daytrader/strategy/loader.py): STRATEGY for every
    # symbol not assigned in STRATEGY_SYMBOLS ("opening_range(minutes=30)=NVDA,TSLA; ...").
    strategy: str = "ema_cross"
    strategy_symbols: str = ""
    # Sim exchange.
    sim_seed: int = 42
    sim_speed: float = 60.0  # 0 means as fast as possible
    sim_slippage_bps: float = 1.0
    sim_commission_per_share: Decimal = Decimal("0")
    sim_buying_power_multiplier: Decimal = Decimal("1")
    # Operations.
    data_dir: Path = Path("data")
    log_level: str = "WARNING"
    # Broker and store credentials (used by paper/live and Supabase).
    alpaca_api_key: Secret = field(default_factory=lambda: Secret(""))
    alpaca_secret_key: Secret = field(default_factory=lambda: Secret(""))
    supabase_url: str = ""
    supabase_key: Secret = field(default_factory=lambda: Secret(""))
    supabase_service_key: Secret = field(default_factory=lambda: Secret(""))
    # Alpaca endpoints (empty: alpaca-py's paper or live hosts) and data feed.
    alpaca_base_url: str = ""  # trading REST without /v2, e.g. http://127.0.0.1:8080
    alpaca_data_url: str = ""  # market data REST without /v2
    alpaca_stream_url: str = ""  # trade_updates WebSocket, e.g. ws://127.0.0.1:8080/stream
    alpaca_data_stream_url: str = ""  # market data WebSocket, e.g. ws://127.0.0.1:8080/v2/iex
    alpaca_feed: str = "iex"
    alpaca_timeout: float = 10.0  # seconds for any one Alpaca request or stream authentication
    # Alpaca allows 200 trading REST requests per minute per account; every call shares this
    # budget (orders ahead of polling). 0 turns the budget off (a local test server).
    alpaca_requests_per_minute: int = 200
    # Live money: the most equity the engine sizes against in live mode (0: not set, which the
    # production checklist refuses).
    live_max_capital: Decimal = Decimal("0")
    alert_webhook_url: str = ""  # Slack/Discord-style incoming webhook for alerts
    alert_unhealthy_seconds: float = 60.0  # a component unhealthy this long raises an alert
    # Control API: a Unix socket in DATA_DIR/run (owner only); TCP only when API_PORT is set,
    # and then with API_TOKEN required on every request.
    api_socket_enabled: bool = True
    api_port: int = 0
    api_host: str = "127.0.0.1"
    api_token: Secret = field(default_factory=lambda: Secret(""))
    api_allow_remote: bool = False
    data_stale_minutes: float = 3.0  # no bar this long while the market is open: entries pause
    # LLM advisory (daytrader/advisor): a second opinion on entries, the daily debrief's
    # narrative and `ask`. The model advises; nothing it says can place, size or keep an order.
    advisor_mode: str = "off"  # off | advise (shown, journaled) | veto (one more risk check)
    advisor_timeout: float = 2.0  # seconds an entry waits for the opinion; then it goes ahead
    advisor_veto_confidence: float = 0.7  # veto mode refuses vetoes at least this confident
    advisor_calls_per_hour: int = 120  # every model call (entries, debrief, ask) shares it
    llm_base_url: str = ""  # an OpenAI-compatible API ending in /v1; empty: OpenAI's own
    llm_model: str = ""  # empty: no model (the debrief and ask keep to the journal's facts)
    llm_api_key: Secret = field(default_factory=lambda: Secret(""))
    llm_timeout: float = 30.0  # seconds for the debrief's narrative and for an answer to ask
    debrief_at_close: bool = True  # write DATA_DIR/reports/<date>.md after each session's close

    def with_overrides(self, **changes: Any) -> Settings:
        return validate(replace(self, **changes))


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SettingsError(f"{name}: expected a finite number, got {raw!r}")
    return value


def _decimal(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise SettingsError(f"{name}: expected an amount, got {raw!r}") from None
    if not value.is_finite():
        raise SettingsError(f"{name}: expected a finite amount, got {raw!r}")
    return value


def parse_symbols(name: str, raw: str) -> tuple[str, ...]:
    # Interned, as replayed bars' symbols are (daytrader/data/replay.py: frame_to_bars).
    symbols = tuple(sys.intern(normalize_symbol(s)) for s in raw.split(",") if s.strip())
    bad = [s for s in symbols if not is_symbol(s)]
    if bad:
        shown = ", ".join(b if b.isprintable() else repr(b) for b in bad[:5])
        raise SettingsError(f"{name}: not a ticker symbol: {shown} (expected 1-10 letters, "
                            "digits or dots, starting with a letter)")
    return symbols


def _speed(name: str, raw: str) -> float:
    return 0.0 if raw.strip().lower() == "max" else _float(name, raw)


# Environment variable -> (field, parser). The seed's credential names are kept as they were.
_ENV: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "TRADING_MODE": ("mode", lambda n, r: r.strip().lower()),
    "SYMBOLS": ("symbols", parse_symbols),
    "STARTING_CASH": ("starting_cash", _decimal),
    "TRADING_ENABLED_AT_START": ("trading_enabled_at_start", _bool),
    "MAX_DAILY_LOSS_PCT": ("max_daily_loss_pct", _float),
    "MAX_POSITIONS": ("max_positions", _int),
    "RISK_PER_TRADE_PCT": ("risk_per_trade_pct", _float),
    "COOLDOWN_AFTER_STOPS": ("cooldown_after_stops", _int),
    "COOLDOWN_MINUTES": ("cooldown_minutes", _int),
    "EMA_FAST": ("ema_fast", _int),
    "EMA_SLOW": ("ema_slow", _int),
    "ATR_PERIOD": ("atr_period", _int),
    "STOP_ATR_MULT": ("stop_atr_mult", _float),
    "TAKE_PROFIT_ATR_MULT": ("take_profit_atr_mult", _float),
    "ALLOW_SHORTS": ("allow_shorts", _bool),
    "STRATEGY": ("strategy", lambda n, r: r.strip()),
    "STRATEGY_SYMBOLS": ("strategy_symbols", lambda n, r: r.strip()),
    "FLATTEN_MINUTES_BEFORE_CLOSE": ("flatten_minutes_before_close", _int),
    "SIM_SEED": ("sim_seed", _int),
    "SIM_SPEED": ("sim_speed", _speed),
    "SIM_SLIPPAGE_BPS": ("sim_slippage_bps", _float),
    "SIM_COMMISSION_PER_SHARE": ("sim_commission_per_share", _decimal),
    "SIM_BUYING_POWER_MULTIPLIER": ("sim_buying_power_multiplier", _decimal),
    "DATA_DIR": ("data_dir", lambda n, r: Path(r.strip()).expanduser()),
    "LOG_LEVEL": ("log_level", lambda n, r: r.strip().upper()),
    "ALPACA_API_KEY": ("alpaca_api_key", lambda n, r: Secret(r.strip())),
    "ALPACA_SECRET_KEY": ("alpaca_secret_key", lambda n, r: Secret(r.strip())),
    "SUPABASE_URL": ("supabase_url", lambda n, r: r.strip()),
    "SUPABASE_KEY": ("supabase_key", lambda n, r: Secret(r.strip())),
    "SUPABASE_SERVICE_KEY": ("supabase_service_key", lambda n, r: Secret(r.strip())),
    "ALPACA_BASE_URL": ("alpaca_base_url", lambda n, r: r.strip().rstrip("/")),
    "ALPACA_DATA_URL": ("alpaca_data_url", lambda n, r: r.strip().rstrip("/")),
    "ALPACA_STREAM_URL": ("alpaca_stream_url", lambda n, r: r.strip()),
    "ALPACA_DATA_STREAM_URL": ("alpaca_data_stream_url", lambda n, r: r.strip()),
    "ALPACA_FEED": ("alpaca_feed", lambda n, r: r.strip().lower()),
    "ALPACA_TIMEOUT": ("alpaca_timeout", _float),
    "ALPACA_REQUESTS_PER_MINUTE": ("alpaca_requests_per_minute", _int),
    "LIVE_MAX_CAPITAL": ("live_max_capital", _decimal),
    "ALERT_WEBHOOK_URL": ("alert_webhook_url", lambda n, r: r.strip()),
    "ALERT_UNHEALTHY_SECONDS": ("alert_unhealthy_seconds", _float),
    "API_SOCKET": ("api_socket_enabled", _bool),
    "API_PORT": ("api_port", _int),
    "API_HOST": ("api_host", lambda n, r: r.strip()),
    "API_TOKEN": ("api_token", lambda n, r: Secret(r.strip())),
    "API_ALLOW_REMOTE": ("api_allow_remote", _bool),
    "DATA_STALE_MINUTES": ("data_stale_minutes", _float),
    "ADVISOR_MODE": ("advisor_mode", lambda n, r: r.strip().lower()),
    "ADVISOR_TIMEOUT": ("advisor_timeout", _float),
    "ADVISOR_VETO_CONFIDENCE": ("advisor_veto_confidence", _float),
    "ADVISOR_CALLS_PER_HOUR": ("advisor_calls_per_hour", _int),
    "LLM_BASE_URL": ("llm_base_url", lambda n, r: r.strip().rstrip("/")),
    "LLM_MODEL": ("llm_model", lambda n, r: r.strip()),
    "LLM_API_KEY": ("llm_api_key", lambda n, r: Secret(r.strip())),
    "LLM_TIMEOUT": ("llm_timeout", _float),
    "DEBRIEF_AT_CLOSE": ("debrief_at_close", _bool),
}
ENV_NAMES = tuple(_ENV)
_FIELD_TO_ENV = {field_name: env for env, (field_name, _) in _ENV.items()}


def env_name(field_name: str) -> str:
    """The environment variable that sets a field, for messages that tell the user what to fix."""
    return _FIELD_TO_ENV.get(field_name, field_name)


def _require(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise SettingsError(f"{env_name(field_name)}: {message}")


MAX_STARTING_CASH = Decimal("1000000000")  # a billion: beyond it sizes stop being share counts


def _finite_numbers(s: Settings) -> None:
    """Settings also come from options (`--capital nan`, `--slippage-bps inf`): every number is
    finite before any limit is compared with it."""
    for f in fields(s):
        value = getattr(s, f.name)
        if isinstance(value, bool):
            continue
        if isinstance(value, Decimal) and not value.is_finite() or (
                isinstance(value, float) and value != value or value in (float("inf"),
                                                                         float("-inf"))):
            _require(False, f.name, f"expected a finite number, got {value}")


def api_host_problem(s: Settings) -> str:
    """Why API_HOST cannot be served (empty when it can): an IP address or localhost, and a
    loopback one unless API_ALLOW_REMOTE is set."""
    import ipaddress

    host = s.api_host
    if host == "localhost":
        return ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return (f"expected an IP address to listen on (127.0.0.1, ::1, or with API_ALLOW_REMOTE="
                f"true another address of this machine), got {host!r}")
    if not address.is_loopback and not s.api_allow_remote:
        return (f"{host} is not a loopback address; set API_ALLOW_REMOTE=true to serve the API "
                "beyond this machine (the token is still required)")
    return ""


_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)*\.?")


def _supabase_url_problem(url: str) -> str:
    """Why SUPABASE_URL is not a project URL (empty when it is): a scheme, a host, an optional
    port, and no path (supabase-py adds /rest/v1 itself)."""
    from urllib.parse import urlsplit

    expected = "expected the project URL, e.g. https://<project>.supabase.co"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{exc}; {expected}"
    host = parts.hostname or ""
    if not host:
        return f"no host in {url!r}; {expected}"
    if not (_HOST.fullmatch(host) or _is_ip(host)):
        return f"{host!r} is not a host name; {expected}"
    if port == 0 or parts.username or parts.password or parts.query or parts.fragment:
        return f"{url!r} has more than a scheme, host and port; {expected}"
    if parts.path.rstrip("/").endswith("/rest/v1"):
        return f"give the project URL without /rest/v1 (supabase-py adds it); {expected}"
    if parts.path not in ("", "/"):
        return f"{url!r} has a path ({parts.path}); {expected}"
    return ""


def _llm_url_problem(url: str) -> str:
    """Why LLM_BASE_URL cannot be used (empty when it can): http(s), a host, no credentials in
    it (they would travel in logs and screens: LLM_API_KEY holds the key), and the API's base,
    not the chat endpoint (the client adds /chat/completions)."""
    from urllib.parse import urlsplit

    expected = "expected the API's base URL, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1"
    if not url.startswith(("http://", "https://")):
        return f"must start with http:// or https://; {expected}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        return f"{exc}; {expected}"
    if parts.username or parts.password:
        return "holds credentials (user:password@); put the key in LLM_API_KEY instead"
    if not parts.hostname:
        return f"no host in it; {expected}"
    if parts.query or parts.fragment:
        return f"has a query or fragment; {expected}"
    if parts.path.rstrip("/").endswith("/chat/completions"):
        return f"give the base URL without /chat/completions (the client adds it); {expected}"
    return ""


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def validate(s: Settings) -> Settings:
    """Checks every limit together; raises SettingsError naming the first bad setting."""
    _finite_numbers(s)
    _require(s.mode in MODES, "mode", f"must be one of {', '.join(MODES)}, got {s.mode!r}")
    _require(bool(s.symbols), "symbols", "at least one symbol is needed")
    _require(len(set(s.symbols)) == len(s.symbols), "symbols", "a symbol is listed twice")
    _require(0 < s.starting_cash <= MAX_STARTING_CASH, "starting_cash",
             f"must be a positive amount up to {MAX_STARTING_CASH:,}, got {s.starting_cash}")
    _require(0 < s.max_daily_loss_pct < 100, "max_daily_loss_pct",
             f"must be between 0 and 100 (percent), got {s.max_daily_loss_pct}")
    _require(s.max_positions >= 1, "max_positions", f"must be at least 1, got {s.max_positions}")
    _require(0 < s.risk_per_trade_pct <= 100, "risk_per_trade_pct",
             f"must be above 0 and at most 100 (percent), got {s.risk_per_trade_pct}")
    _require(s.cooldown_after_stops >= 1, "cooldown_after_stops",
             f"must be at least 1, got {s.cooldown_after_stops}")
    _require(s.cooldown_minutes >= 0, "cooldown_minutes",
             f"must not be negative, got {s.cooldown_minutes}")
    for name in ("ema_fast", "ema_slow", "atr_period"):
        value = getattr(s, name)
        _require(1 <= value <= 1000, name, f"must be a period between 1 and 1000, got {value}")
    _require(s.ema_fast < s.ema_slow, "ema_fast",
             f"the fast EMA ({s.ema_fast}) must be shorter than EMA_SLOW ({s.ema_slow})")
    _require(s.stop_atr_mult > 0, "stop_atr_mult", f"must be positive, got {s.stop_atr_mult}")
    _require(s.take_profit_atr_mult > 0, "take_profit_atr_mult",
             f"must be positive, got {s.take_profit_atr_mult}")
    _require(0 <= s.flatten_minutes_before_close <= 120, "flatten_minutes_before_close",
             f"must be between 0 and 120, got {s.flatten_minutes_before_close}")
    _require(s.sim_seed >= 0, "sim_seed", f"must not be negative, got {s.sim_seed}")
    _require(s.sim_speed >= 0, "sim_speed", f"must be 0/max or positive, got {s.sim_speed}")
    _require(0 <= s.sim_slippage_bps <= 1000, "sim_slippage_bps",
             f"must be between 0 and 1000 basis points, got {s.sim_slippage_bps}")
    _require(s.sim_commission_per_share >= 0, "sim_commission_per_share",
             f"must not be negative, got {s.sim_commission_per_share}")
    _require(1 <= s.sim_buying_power_multiplier <= 4, "sim_buying_power_multiplier",
             f"must be between 1 and 4, got {s.sim_buying_power_multiplier}")
    _require(s.log_level in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level",
             f"must be DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}")
    _require(s.live_max_capital >= 0, "live_max_capital",
             f"must not be negative, got {s.live_max_capital}")
    _require(0 <= s.api_port <= 65535, "api_port", f"must be a TCP port (0 = off), got {s.api_port}")
    _require(s.alert_unhealthy_seconds > 0, "alert_unhealthy_seconds",
             f"must be positive, got {s.alert_unhealthy_seconds}")
    if s.api_port:
        problem = api_host_problem(s)
        _require(not problem, "api_host", problem)
        _require(bool(s.api_token), "api_token", "required when API_PORT is set (the TCP API "
                 "always needs a bearer token)")
    token = s.api_token.reveal()
    _require(token.isascii() and token.isprintable() and " " not in token, "api_token",
             "expected printable ASCII characters without spaces (it is sent in an HTTP header)")
    if s.alert_webhook_url:
        _require(s.alert_webhook_url.startswith(("http://", "https://")), "alert_webhook_url",
                 "must start with http:// or https://")
    if s.supabase_url:
        _require(s.supabase_url.startswith(("http://", "https://")), "supabase_url",
                 "must start with http:// or https://")
        problem = _supabase_url_problem(s.supabase_url)
        _require(not problem, "supabase_url", problem)
        _require(bool(s.supabase_service_key or s.supabase_key), "supabase_service_key",
                 "required when SUPABASE_URL is set (the service role key: the replicator "
                 "writes with it)")
    for name in ("alpaca_base_url", "alpaca_data_url"):
        value = getattr(s, name)
        _require(not value or value.startswith(("http://", "https://")), name,
                 f"must start with http:// or https://, got {value!r}")
        _require(not value.endswith("/v2"), name, "give the host without /v2 (alpaca-py adds it)")
    for name in ("alpaca_stream_url", "alpaca_data_stream_url"):
        value = getattr(s, name)
        _require(not value or value.startswith(("ws://", "wss://")), name,
                 f"must start with ws:// or wss://, got {value!r}")
    _require(s.alpaca_feed in ("iex", "sip"), "alpaca_feed",
             f"must be iex (free) or sip (paid plan), got {s.alpaca_feed!r}")
    _require(0 < s.alpaca_timeout <= 120, "alpaca_timeout",
             f"must be between 0 and 120 seconds, got {s.alpaca_timeout}")
    _require(0 <= s.alpaca_requests_per_minute <= 10_000, "alpaca_requests_per_minute",
             f"must be between 0 (no budget) and 10000, got {s.alpaca_requests_per_minute}")
    _require(0 < s.data_stale_minutes <= 60, "data_stale_minutes",
             f"must be between 0 and 60 minutes, got {s.data_stale_minutes}")
    _require(s.advisor_mode in ADVISOR_MODES, "advisor_mode",
             f"must be one of {', '.join(ADVISOR_MODES)}, got {s.advisor_mode!r}")
    _require(0.05 <= s.advisor_timeout <= 30, "advisor_timeout",
             f"must be between 0.05 and 30 seconds, got {s.advisor_timeout}")
    _require(0 < s.advisor_veto_confidence <= 1, "advisor_veto_confidence",
             f"must be above 0 and at most 1, got {s.advisor_veto_confidence}")
    _require(1 <= s.advisor_calls_per_hour <= 100_000, "advisor_calls_per_hour",
             f"must be between 1 and 100000, got {s.advisor_calls_per_hour}")
    _require(1 <= s.llm_timeout <= 600, "llm_timeout",
             f"must be between 1 and 600 seconds, got {s.llm_timeout}")
    if s.llm_base_url:
        problem = _llm_url_problem(s.llm_base_url)
        _require(not problem, "llm_base_url", problem)
    if s.advisor_mode != "off":
        _require(bool(s.llm_model), "llm_model", f"required when ADVISOR_MODE={s.advisor_mode} "
                 "(the model to ask, e.g. gpt-4o-mini, or llama3.1 on a local server)")
    key = s.llm_api_key.reveal()
    _require(key.isascii() and key.isprintable() and " " not in key, "llm_api_key",
             "expected printable ASCII characters without spaces (it is sent in an HTTP header)")
    if s.mode == "live":
        for name in ("alpaca_base_url", "alpaca_data_url", "alpaca_stream_url",
                     "alpaca_data_stream_url", "llm_base_url"):
            value = getattr(s, name)
            local = any(h in value for h in ("//127.0.0.1", "//localhost", "//[::1]"))
            _require(not value or local or value.startswith(("https://", "wss://")), name,
                     "live mode needs an encrypted endpoint (https:// or wss://)")
    if s.mode in ("paper", "live"):
        _require(bool(s.alpaca_api_key), "alpaca_api_key", f"required in {s.mode} mode")
        _require(bool(s.alpaca_secret_key), "alpaca_secret_key", f"required in {s.mode} mode")
    if s.mode == "live":
        _require(not s.alpaca_api_key.reveal().startswith("PK"), "alpaca_api_key",
                 "looks like a paper key (PK...); live mode needs live keys")
    return s


def settings_from_mapping(values: Mapping[str, str | None]) -> Settings:
    """Settings from environment-style names; unknown names are ignored, empty values mean default."""
    changes: dict[str, Any] = {}
    for env, (field_name, parse) in _ENV.items():
        raw = values.get(env)
        if raw is None or raw.strip() == "":
            continue
        changes[field_name] = parse(env, raw)
    return validate(replace(Settings(), **changes))


def load_settings(env_file: str | Path | None = ".env",
                  environ: Mapping[str, str] | None = None) -> Settings:
    """The `.env` file, overridden by the process environment; a bad value raises SettingsError."""
    merged: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update(dotenv_values(env_file))
    merged.update(os.environ if environ is None else environ)
    return settings_from_mapping(merged)


def ensure_data_dir(path: Path) -> Path:
    """DATA_DIR, created when missing, owner-only (0700: it holds the journal and the API
    socket); SettingsError naming DATA_DIR when it cannot be."""
    if path.exists() and not path.is_dir():
        raise SettingsError(f"DATA_DIR: {path} is a file; expected a folder (or a path where "
                            "one can be created)")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise SettingsError(f"DATA_DIR: cannot create or use {path}: {exc.strerror or exc}; "
                            "expected a folder this user can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingsError(f"DATA_DIR: {path} is not writable by this user")
    return path


def setting_given(name: str, env_file: str | Path | None = ".env",
                  environ: Mapping[str, str] | None = None) -> bool:
    """Whether `name` is set (not empty) in the environment or the `.env` file, as opposed to
    left at its default (a replay trades its file's symbols unless SYMBOLS is given)."""
    environ = os.environ if environ is None else environ
    if (environ.get(name) or "").strip():
        return True
    if env_file is not None and Path(env_file).is_file():
        return bool((dotenv_values(env_file).get(name) or "").strip())
    return False


def api_socket_path(s: Settings) -> Path:
    """Where the control API's Unix socket lives: a folder of its own, owner-only."""
    return s.data_dir / "run" / "daytrader.sock"


def describe(s: Settings) -> dict[str, str]:
    """Every setting as text for logs and the console; secrets stay masked."""
    return {env_name(f.name): str(getattr(s, f.name)) for f in fields(s)}
