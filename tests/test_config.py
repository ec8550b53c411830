"""Settings: loading `.env` and the environment, defaults, start-up validation, masked secrets."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daytrader import config
from daytrader.config import Settings, SettingsError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "PKzQ-very-secret-7731-do-not-print"


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def settings_error(environ: dict[str, str]) -> str:
    """The message start-up stops with for these variables."""
    with pytest.raises(SettingsError) as info:
        load_settings(None, environ=environ)
    return str(info.value)


# --- loading -------------------------------------------------------------------------------------


def test_settings_load_from_a_dotenv_file(tmp_path):
    env = write_env(tmp_path, """\
# my day-trading setup
TRADING_MODE=sim
SYMBOLS=spy, qqq,IWM
STARTING_CASH=25000.50
MAX_POSITIONS=3
RISK_PER_TRADE_PCT=0.5
MAX_DAILY_LOSS_PCT="2.5"
ALLOW_SHORTS=yes
TRADING_ENABLED_AT_START=off
SIM_SPEED=max
EMA_FAST=5
EMA_SLOW=13
""")
    s = load_settings(env, environ={})
    assert s.mode == "sim"
    assert s.symbols == ("SPY", "QQQ", "IWM")
    assert s.starting_cash == Decimal("25000.50")
    assert (s.max_positions, s.risk_per_trade_pct, s.max_daily_loss_pct) == (3, 0.5, 2.5)
    assert s.allow_shorts is True
    assert s.trading_enabled_at_start is False
    assert s.sim_speed == 0.0
    assert (s.ema_fast, s.ema_slow) == (5, 13)
    assert s.atr_period == 14  # not in the file: default


def test_the_environment_overrides_the_dotenv_file(tmp_path):
    env = write_env(tmp_path, "MAX_POSITIONS=3\nSYMBOLS=SPY\n")
    s = load_settings(env, environ={"MAX_POSITIONS": "7"})
    assert s.max_positions == 7
    assert s.symbols == ("SPY",)


def test_a_bad_value_in_the_dotenv_file_stops_start_up_naming_the_variable(tmp_path):
    env = write_env(tmp_path, "MAX_POSITIONS=five\n")
    with pytest.raises(SettingsError, match=r"^MAX_POSITIONS: expected a whole number, got 'five'$"):
        load_settings(env, environ={})


def test_nothing_set_gives_the_seed_defaults(tmp_path):
    s = load_settings(tmp_path / "no-such.env", environ={})
    assert s == Settings() == load_settings(None, environ={})
    assert s.mode == "sim"
    assert s.symbols == ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META")
    assert (s.max_daily_loss_pct, s.max_positions, s.risk_per_trade_pct) == (5.0, 5, 1.0)
    assert (s.cooldown_after_stops, s.cooldown_minutes) == (3, 60)
    assert (s.ema_fast, s.ema_slow, s.atr_period) == (9, 21, 14)
    assert (s.stop_atr_mult, s.take_profit_atr_mult) == (2.0, 4.0)
    assert s.starting_cash == Decimal("100000")
    assert not s.alpaca_api_key and not s.alpaca_secret_key


def test_an_empty_value_means_the_default(tmp_path):
    env = write_env(tmp_path, "MAX_POSITIONS=\nSYMBOLS=  \n")
    assert load_settings(env, environ={}) == Settings()


def test_unknown_variables_are_ignored():
    assert load_settings(None, environ={"PATH": "/usr/bin", "HOME": "/root"}) == Settings()


# --- every bad setting stops start-up, naming the variable ---------------------------------------

BAD_SETTINGS = [
    ("MAX_POSITIONS", "five", "MAX_POSITIONS: expected a whole number, got 'five'"),
    ("MAX_POSITIONS", "2.5", "MAX_POSITIONS: expected a whole number, got '2.5'"),
    ("MAX_POSITIONS", "0", "MAX_POSITIONS: must be at least 1, got 0"),
    ("MAX_POSITIONS", "-3", "MAX_POSITIONS: must be at least 1, got -3"),
    ("MAX_DAILY_LOSS_PCT", "five", "MAX_DAILY_LOSS_PCT: expected a number, got 'five'"),
    ("MAX_DAILY_LOSS_PCT", "0", "MAX_DAILY_LOSS_PCT: must be between 0 and 100"),
    ("MAX_DAILY_LOSS_PCT", "-5", "MAX_DAILY_LOSS_PCT: must be between 0 and 100"),
    ("MAX_DAILY_LOSS_PCT", "100", "MAX_DAILY_LOSS_PCT: must be between 0 and 100"),
    ("MAX_DAILY_LOSS_PCT", "nan", "MAX_DAILY_LOSS_PCT: expected a finite number, got 'nan'"),
    ("RISK_PER_TRADE_PCT", "1%", "RISK_PER_TRADE_PCT: expected a number, got '1%'"),
    ("RISK_PER_TRADE_PCT", "0", "RISK_PER_TRADE_PCT: must be above 0 and at most 100"),
    ("RISK_PER_TRADE_PCT", "-1", "RISK_PER_TRADE_PCT: must be above 0 and at most 100"),
    ("RISK_PER_TRADE_PCT", "inf", "RISK_PER_TRADE_PCT: expected a finite number, got 'inf'"),
    ("STARTING_CASH", "lots", "STARTING_CASH: expected an amount, got 'lots'"),
    ("STARTING_CASH", "0", "STARTING_CASH: must be a positive amount up to 1,000,000,000, got 0"),
    ("STARTING_CASH", "-100", "STARTING_CASH: must be a positive amount up to 1,000,000,000"),
    ("STARTING_CASH", "1e30", "STARTING_CASH: must be a positive amount up to 1,000,000,000, "
                              "got 1E+30"),
    ("API_TOKEN", "tøken", "API_TOKEN: expected printable ASCII characters without spaces"),
    ("SYMBOLS", "AAPL,a\x00b", "SYMBOLS: not a ticker symbol: 'A\\x00B'"),
    ("STARTING_CASH", "Infinity", "STARTING_CASH: expected a finite amount, got 'Infinity'"),
    ("COOLDOWN_AFTER_STOPS", "0", "COOLDOWN_AFTER_STOPS: must be at least 1, got 0"),
    ("COOLDOWN_MINUTES", "-1", "COOLDOWN_MINUTES: must not be negative, got -1"),
    ("COOLDOWN_MINUTES", "an hour", "COOLDOWN_MINUTES: expected a whole number, got 'an hour'"),
    ("EMA_FAST", "0", "EMA_FAST: must be a period between 1 and 1000, got 0"),
    ("EMA_SLOW", "-21", "EMA_SLOW: must be a period between 1 and 1000, got -21"),
    ("ATR_PERIOD", "0", "ATR_PERIOD: must be a period between 1 and 1000, got 0"),
    ("STOP_ATR_MULT", "0", "STOP_ATR_MULT: must be positive, got 0.0"),
    ("TAKE_PROFIT_ATR_MULT", "-4", "TAKE_PROFIT_ATR_MULT: must be positive, got -4.0"),
    ("FLATTEN_MINUTES_BEFORE_CLOSE", "-1", "FLATTEN_MINUTES_BEFORE_CLOSE: must be between 0 and 120"),
    ("SIM_SEED", "abc", "SIM_SEED: expected a whole number, got 'abc'"),
    ("SIM_SEED", "-1", "SIM_SEED: must not be negative, got -1"),
    ("SIM_SPEED", "fast", "SIM_SPEED: expected a number, got 'fast'"),
    ("SIM_SPEED", "-1", "SIM_SPEED: must be 0/max or positive, got -1.0"),
    ("SIM_SLIPPAGE_BPS", "-1", "SIM_SLIPPAGE_BPS: must be between 0 and 1000 basis points"),
    ("SIM_COMMISSION_PER_SHARE", "-0.01", "SIM_COMMISSION_PER_SHARE: must not be negative, got -0.01"),
    ("SIM_BUYING_POWER_MULTIPLIER", "0.5", "SIM_BUYING_POWER_MULTIPLIER: must be between 1 and 4"),
    ("SIM_BUYING_POWER_MULTIPLIER", "5", "SIM_BUYING_POWER_MULTIPLIER: must be between 1 and 4"),
    ("TRADING_MODE", "yolo", "TRADING_MODE: must be one of sim, paper, live, backtest, got 'yolo'"),
    ("SYMBOLS", "AAPL,12X", "SYMBOLS: not a ticker symbol: 12X"),
    ("SYMBOLS", "AAPL, BRK B, $SPY", "SYMBOLS: not a ticker symbol: BRK B, $SPY"),
    ("SYMBOLS", ",", "SYMBOLS: at least one symbol is needed"),
    ("SYMBOLS", "AAPL,MSFT,aapl", "SYMBOLS: a symbol is listed twice"),
    ("ALLOW_SHORTS", "maybe", "ALLOW_SHORTS: expected true or false, got 'maybe'"),
    ("TRADING_ENABLED_AT_START", "2", "TRADING_ENABLED_AT_START: expected true or false, got '2'"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, got 'VERBOSE'"),
    ("SUPABASE_URL", "db.example.com", "SUPABASE_URL: must start with http:// or https://"),
]


@pytest.mark.parametrize(("name", "raw", "message"), BAD_SETTINGS,
                         ids=[f"{n}={r}" for n, r, _ in BAD_SETTINGS])
def test_a_bad_setting_stops_start_up_with_a_message_naming_the_variable(name, raw, message):
    error = settings_error({name: raw})
    assert error.startswith(f"{name}: ")
    assert error.startswith(message)


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize(("fast", "slow"), [("21", "21"), ("30", "21")])
def test_the_fast_ema_must_be_shorter_than_the_slow_one(fast, slow):
    error = settings_error({"EMA_FAST": fast, "EMA_SLOW": slow})
    assert error == f"EMA_FAST: the fast EMA ({fast}) must be shorter than EMA_SLOW ({slow})"


def test_a_slow_ema_set_below_the_default_fast_one_names_both_variables():
    error = settings_error({"EMA_SLOW": "5"})
    assert error.startswith("EMA_FAST: ")
    assert "EMA_SLOW (5)" in error


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_broker_modes_need_both_alpaca_keys(mode):
    assert settings_error({"TRADING_MODE": mode}) == f"ALPACA_API_KEY: required in {mode} mode"
    assert settings_error({"TRADING_MODE": mode, "ALPACA_API_KEY": SECRET}) == (
        f"ALPACA_SECRET_KEY: required in {mode} mode")
    s = load_settings(None, environ={"TRADING_MODE": mode.upper(), "ALPACA_API_KEY": "k",
                                     "ALPACA_SECRET_KEY": "s"})
    assert s.mode == mode


def test_overrides_are_validated_like_the_environment():
    with pytest.raises(SettingsError, match=r"^MAX_POSITIONS: must be at least 1, got 0$"):
        Settings().with_overrides(max_positions=0)
    assert Settings().with_overrides(max_positions=2).max_positions == 2


NUMERIC_SETTINGS = [
    "STARTING_CASH", "MAX_DAILY_LOSS_PCT", "MAX_POSITIONS", "RISK_PER_TRADE_PCT",
    "COOLDOWN_AFTER_STOPS", "COOLDOWN_MINUTES", "EMA_FAST", "EMA_SLOW", "ATR_PERIOD",
    "STOP_ATR_MULT", "TAKE_PROFIT_ATR_MULT", "FLATTEN_MINUTES_BEFORE_CLOSE", "SIM_SEED",
    "SIM_SPEED", "SIM_SLIPPAGE_BPS", "SIM_COMMISSION_PER_SHARE", "SIM_BUYING_POWER_MULTIPLIER",
]

number_like_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789.-+eE_ naNIfity", max_size=12),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(NUMERIC_SETTINGS), raw=number_like_text)
def test_any_text_in_a_numeric_setting_gives_settings_or_an_error_naming_it(name, raw):
    try:
        s = load_settings(None, environ={name: raw})
    except SettingsError as error:
        message = str(error)
        # EMA_SLOW below the default fast period is reported on EMA_FAST, naming EMA_SLOW too.
        assert message.startswith(f"{name}: ") or (name == "EMA_SLOW" and "EMA_SLOW" in message)
    else:
        assert isinstance(s, Settings)
        assert s.ema_fast < s.ema_slow
        assert s.max_positions >= 1
        assert 0 < s.risk_per_trade_pct <= 100
        assert 0 < s.max_daily_loss_pct < 100


# --- secrets -------------------------------------------------------------------------------------

SECRET_NAMES = ["ALPACA_API_KEY", "ALPACA_SECRET_KEY", "SUPABASE_KEY", "SUPABASE_SERVICE_KEY"]


@pytest.fixture
def with_secrets(tmp_path) -> Settings:
    env = write_env(tmp_path, "".join(f"{name}={SECRET}-{name}\n" for name in SECRET_NAMES))
    return load_settings(env, environ={"TRADING_MODE": "paper",
                                       "SUPABASE_URL": "https://x.supabase.co"})


def test_secrets_never_show_in_repr_str_or_describe(with_secrets):
    s = with_secrets
    described = config.describe(s)
    for text in (repr(s), str(s), str(described), *described.values()):
        assert SECRET not in text
    assert described["ALPACA_API_KEY"] == "Secret('**********')"
    assert described["SUPABASE_URL"] == "https://x.supabase.co"


def test_reveal_returns_the_secret_values(with_secrets):
    s = with_secrets
    assert s.alpaca_api_key.reveal() == f"{SECRET}-ALPACA_API_KEY"
    assert s.alpaca_secret_key.reveal() == f"{SECRET}-ALPACA_SECRET_KEY"
    assert s.supabase_key.reveal() == f"{SECRET}-SUPABASE_KEY"
    assert s.supabase_service_key.reveal() == f"{SECRET}-SUPABASE_SERVICE_KEY"


def test_an_unset_secret_shows_as_empty_not_masked():
    assert config.describe(Settings())["ALPACA_API_KEY"] == "Secret('')"


def test_describe_lists_every_setting_by_its_variable_name():
    assert set(config.describe(Settings())) == set(config.ENV_NAMES)


# --- .env.example --------------------------------------------------------------------------------

EXAMPLE = REPO_ROOT / ".env.example"
needs_example = pytest.mark.skipif(not EXAMPLE.is_file(),
                                   reason=f"{EXAMPLE} is not written yet (another person owns it)")


@needs_example
def test_env_example_lists_every_setting():
    listed = set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)\s*=", EXAMPLE.read_text(), flags=re.MULTILINE))
    missing = [name for name in config.ENV_NAMES if name not in listed]
    assert not missing, f".env.example does not mention {', '.join(missing)}"


@needs_example
def test_a_copy_of_env_example_is_a_valid_configuration(tmp_path):
    env = tmp_path / ".env"
    env.write_text(EXAMPLE.read_text())
    assert isinstance(load_settings(env, environ={}), Settings)
