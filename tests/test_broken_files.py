"""66 broken or odd replay files through both `--replay` and `backtest --data`: no traceback,
ever. A file that cannot be read stops with exit 2 naming it; bad rows are counted by reason and
the run goes on; replay and backtest accept and refuse the same rows."""

from __future__ import annotations

import json

import pytest
from broken_files import CASES

from daytrader import cli


def test_there_are_66_cases():
    assert len(CASES) == 66 and len({c.name for c in CASES}) == 66


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    for name in ("SYMBOLS", "API_PORT", "SUPABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)  # an exception here is the traceback this test exists to catch
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_broken_file_is_refused_by_name_or_counted_and_run(folder, capsys, case):
    path = folder / f"bars{case.suffix}"
    case.write(path)
    replay = run(["--headless", "--replay", path.name, "--speed", "max", "--quiet", "--json",
                  "--no-api"], capsys)
    backtest = run(["backtest", "--data", path.name, "--no-plot", "--json", "--out", "out"],
                   capsys)
    for what, (code, out, err) in (("replay", replay), ("backtest", backtest)):
        assert "Traceback" not in out + err, (what, err)
        if case.outcome == "refused":
            assert code == 2, (what, code, err[-500:])
            assert err.startswith("error: ") and path.name in err, (what, err[-500:])
            assert case.reason in err, (what, err[-500:])
        else:
            assert code == 0, (what, err[-1000:])
            report = json.loads(out)
            counted = report["bad_bars"]
            if case.reason:
                assert counted.get(case.reason, 0) >= 1, (what, counted)
    if case.outcome == "runs":  # the same rows rejected, for the same reasons, by both
        assert json.loads(replay[1])["bad_bars"] == json.loads(backtest[1])["bad_bars"]


def test_a_replay_trades_the_files_symbols_unless_symbols_are_given(folder, capsys, monkeypatch):
    from broken_files import csv_text, good_rows

    (folder / "own.csv").write_text(csv_text(rows=good_rows(symbols=("XYZ", "QQQ"))))
    args = ["--headless", "--replay", "own.csv", "--speed", "max", "--quiet", "--json", "--no-api"]
    code, out, _ = run(args, capsys)
    assert code == 0 and json.loads(out)["symbols"] == ["QQQ", "XYZ"]
    code, out, _ = run([*args, "--symbols", "XYZ"], capsys)
    assert code == 0 and json.loads(out)["symbols"] == ["XYZ"]
    assert json.loads(out)["bad_bars"] == {"other_symbol": 30}
    monkeypatch.setenv("SYMBOLS", "AAPL")
    code, _, err = run(args, capsys)
    assert code == 2
    assert "own.csv: no valid bars for AAPL (rejected: other_symbol 60)" in err
    # backtest: every symbol of the file unless --symbols (as its help says)
    code, out, _ = run(["backtest", "--data", "own.csv", "--json", "--no-plot", "--out", "o"],
                       capsys)
    assert code == 0 and json.loads(out)["bars"] == 60
