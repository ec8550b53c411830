"""Schemathesis against the running control API (uvicorn on TCP with a token, the engine's own
loop, a real journal): every endpoint with generated input, valid and invalid by the schema,
a bounded number of examples each. No answer may be a server error or a non-JSON error, and the
journal must hold exactly the records the engine handed it after every case."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from decimal import Decimal

import pytest
import schemathesis
from conftest import at, flat_bars, make_engine
from hypothesis import HealthCheck, settings

from daytrader.api import ApiServer
from daytrader.clock import MarketCalendar
from daytrader.config import Secret
from daytrader.orders import SubmitStatus
from daytrader.store.journal import Journal

TOKEN = "fuzz-token"
SENT = (SubmitStatus.SUBMITTED, SubmitStatus.BROKER_REJECTED, SubmitStatus.UNKNOWN)


class RunningApi:
    """An engine with a journal and the control API on a loop of its own thread."""

    def __init__(self, tmp_path) -> None:
        from pg_server import free_port

        self.port = free_port()
        self.engine = make_engine(MarketCalendar(), starting_cash=Decimal("100000"))
        self.engine.settings = self.engine.settings.with_overrides(
            data_dir=tmp_path, api_socket_enabled=False, api_port=self.port,
            api_token=Secret(TOKEN))
        self.journal = Journal(tmp_path / "journal.sqlite", flush_interval=60)
        self.journal.start_session("sim", "fuzz", "schemathesis", self.engine.settings.symbols)
        self.engine.journal = self.journal
        self.control_events = 0
        self.answers: list[tuple[str, str, int]] = []  # method, path template, status
        self.engine.listeners.append(self._count)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _count(self, event) -> None:
        if "source" in event.data:
            self.control_events += 1

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            await self.engine.on_minute(flat_bars(at("09:30"), AAA=100, BBB=50, CCC=20))
            self.server = await ApiServer(self.engine, self.engine.settings).start()
            self.ready.set()
            self.stopped = asyncio.Event()
            await self.stopped.wait()
            await self.server.stop()

        self.loop.run_until_complete(main())

    def start(self) -> RunningApi:
        self.thread.start()
        assert self.ready.wait(30)
        return self

    def call(self, fn):
        """Runs `fn` on the engine's loop (the journal is the engine's) and returns its result."""
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)
        self.journal.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def running_api(tmp_path_factory):
    api = RunningApi(tmp_path_factory.mktemp("fuzz")).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def api_schema(running_api):
    return schemathesis.openapi.from_url(f"{running_api.url}/openapi.json",
                                         headers={"Authorization": f"Bearer {TOKEN}"})


schema = schemathesis.pytest.from_fixture("api_schema")


def journal_counts(api: RunningApi) -> tuple[int, set[str], int, int]:
    api.call(api.journal.commit)
    with sqlite3.connect(api.journal.path) as conn:
        actions = conn.execute("SELECT count(*) FROM control_actions").fetchone()[0]
        intents = {r[0] for r in conn.execute("SELECT client_order_id FROM intents")}
        aside = conn.execute("SELECT count(*) FROM set_aside").fetchone()[0]
    return actions, intents, aside, api.journal.write_errors


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error_or_loses_a_record(case, running_api):
    api = running_api
    response = case.call(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=30)
    api.answers.append((case.method, case.path, response.status_code))
    assert response.status_code < 500 or (case.path == "/health" and response.status_code == 503)
    if response.status_code >= 400 and case.path not in ("/docs", "/redoc"):
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error") or body.get("status"), str)
    actions, intents, aside, errors = journal_counts(api)
    assert (aside, errors) == (0, 0)
    assert actions == api.control_events  # every control action the engine took, journaled
    sent = api.call(lambda: {r.client_order_id for r in api.engine.submitted if r.status in SENT})
    assert intents == sent  # every order sent was journaled first; nothing else was


def test_the_fuzzing_reached_every_endpoint_with_good_and_bad_input(running_api, api_schema):
    operations = {(op.method.upper(), op.path) for op in (
        result.ok() for result in api_schema.get_all_operations())}
    reached = {(m.upper(), p) for m, p, _ in running_api.answers}
    assert reached >= operations and len(operations) >= 13  # (and methods the API has not)
    statuses = [s for _, _, s in running_api.answers]
    submits = [s for m, p, s in running_api.answers if p == "/orders/submit"]
    assert len(statuses) >= 150 and not [s for s in statuses if s >= 500 and s != 503]
    assert any(s == 200 for s in submits) and any(s == 422 for s in submits), submits
