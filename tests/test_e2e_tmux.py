"""End to end: `python app.py` in a real terminal (tmux), keys sent, the screen read back, and the
terminal restored after quitting."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def tmux_installed():
    """CI installs tmux (.ci/run); elsewhere a missing tmux skips with the reason."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is needed for the end-to-end test: apt-get install tmux")
        pytest.skip("tmux is not installed (apt-get install tmux)")


class Tmux:
    def __init__(self, tmp_path: Path) -> None:
        self.session = f"dt-{uuid.uuid4().hex[:8]}"
        self.socket = str(tmp_path / "tmux.sock")

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True, capture_output=True,
                              text=True, timeout=10).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.session)

    def wait_for(self, marker: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if marker in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{marker!r} never appeared; the screen was:\n{screen}")
            time.sleep(0.1)

    def wait_for_match(self, pattern: str, timeout: float = 20.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            found = re.search(pattern, screen)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never matched; the screen was:\n{screen}")
            time.sleep(0.1)

    def wait_gone(self, marker: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while marker in self.screen():
            assert time.monotonic() < deadline, f"{marker!r} stayed on the screen"
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)


def start_tmux(tmp_path: Path, width: int, height: int) -> Tmux:
    t = Tmux(tmp_path)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color",
           "HOME": str(tmp_path), "LANG": "C.UTF-8", "PS1": "$ "}
    env_args = [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
    t("-f", "/dev/null", "new-session", "-d", "-s", t.session, "-x", str(width), "-y",
      str(height), *env_args, "bash", "--norc", "--noprofile")
    t("set-option", "-s", "escape-time", "10")
    return t


@pytest.fixture
def tmux(tmp_path):
    t = start_tmux(tmp_path, 100, 32)
    yield t
    subprocess.run(["tmux", "-S", t.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def tmux_120x40(tmp_path):
    t = start_tmux(tmp_path, 120, 40)
    yield t
    subprocess.run(["tmux", "-S", t.socket, "kill-server"], capture_output=True, timeout=10)


def quit_app(tmux: Tmux) -> str:
    """q (and y when the quit warning asks); returns the screen after the app exited."""
    tmux.keys("q")
    done = re.compile(r"EXIT=\[\d+\]")
    deadline = time.monotonic() + 20
    while not done.search(screen := tmux.screen()):
        assert time.monotonic() < deadline, f"the app did not exit:\n{screen}"
        if "Quit anyway?" in screen:  # positions are open: the warning asks first
            assert "This is the sim" in screen
            tmux.keys("y")
            time.sleep(0.3)
        time.sleep(0.1)
    return screen


def test_python_app_py_starts_takes_keys_and_restores_the_terminal(tmux, tmp_path):
    # The console as a user starts it, from an empty directory (its journal goes there).
    tmux.keys(f"cd {tmp_path} && {sys.executable} {ROOT / 'app.py'}; echo EXIT=[$?]", "Enter")
    first = tmux.wait_for("ENABLED", timeout=30)
    assert "SIM" in first and "Positions" in first and "Orders" in first
    assert tmux("display-message", "-p", "-t", tmux.session, "#{alternate_on}").strip() == "1"
    tmux.keys("d")
    tmux.wait_for("DISABLED")
    tmux.keys("?")
    tmux.wait_for("DayTrader keys")
    tmux.keys("Escape")
    tmux.wait_gone("DayTrader keys")  # a key right after Esc would read as alt+key
    tmux.keys("e")
    tmux.wait_for("ENABLED")
    screen = quit_app(tmux)
    assert "EXIT=[0]" in screen
    assert "Traceback" not in screen
    # The terminal is back: main screen, cursor shown, no mouse reporting left on.
    state = tmux("display-message", "-p", "-t", tmux.session,
                 "#{alternate_on} #{cursor_flag} #{mouse_any_flag} #{mouse_sgr_flag}").split()
    assert state == ["0", "1", "0", "0"], state


def test_open_a_symbol_send_an_order_with_an_edited_stop_and_see_it_at_the_broker(
        tmux_120x40, tmp_path):
    """The trader's loop: the watchlist, Enter on a symbol (its candles), b for the ticket, the
    strategy's stop edited by hand, Enter; the bracket's stop-loss is then at the sim broker at
    that price (asked with `ctl orders` from another shell) and on the symbol's screen."""
    tmux = tmux_120x40
    # A bar every 10 s: the order's legs stay working while the test looks at them.
    tmux.keys(f"cd {tmp_path} && {sys.executable} {ROOT / 'app.py'} --speed 6; echo EXIT=[$?]",
              "Enter")
    tmux.wait_for("Watchlist", timeout=30)
    tmux.wait_for("ENABLED")
    tmux.keys("Down", "Down", "Down")  # AAPL, AMZN, META, MSFT: the watchlist sorts by symbol
    tmux.keys("Enter")
    tmux.wait_for("MSFT · ", timeout=15)  # the chart's title: "MSFT · 1-minute candles"
    tmux.wait_for("MSFT orders")
    tmux.keys("b")
    tmux.wait_for("from the strategy", timeout=15)  # pre-filled: size and bracket
    suggested = tmux.wait_for_match(r"Stop-loss\s+(\d+\.\d+)")
    edited = f"{float(suggested.group(1)) - 0.25:.2f}"
    tmux.keys("Tab", "Tab", "Tab", "Tab", "Tab")  # symbol -> side, qty, type, price, stop-loss
    tmux.keys(edited)  # the stop-loss's text is selected on focus: typing replaces it
    tmux.wait_for(f"Stop-loss    {edited}")
    tmux.wait_for("would be SENT")
    tmux.keys("Enter")
    tmux.wait_gone("Order ticket")
    # At the broker: the sim exchange's orders, through the control API from another shell.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    deadline = time.monotonic() + 20
    while True:
        ctl = subprocess.run([sys.executable, str(ROOT / "app.py"), "ctl", "orders", "--json"],
                             capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
        assert ctl.returncode == 0, ctl.stdout + ctl.stderr
        legs = [o for o in json.loads(ctl.stdout)
                if o["symbol"] == "MSFT" and o["role"] == "stop_loss"
                and o["stop_price"] == edited]
        if legs:
            break
        assert time.monotonic() < deadline, f"no MSFT stop-loss at {edited}: {ctl.stdout}"
        time.sleep(0.5)
    tmux.wait_for_match(rf"stp SL\s+{re.escape(edited)}")  # and in the symbol's orders
    screen = quit_app(tmux)
    # What the process wrote after the terminal was restored: nothing went wrong on the way out.
    assert "EXIT=[0]" in screen and "Traceback" not in screen
    assert "Task was destroyed" not in screen and "ERROR" not in screen
