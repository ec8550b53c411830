"""Order intents -> idempotent client order ids -> risk -> broker, with lookup before any retry.

The same intent within a minute always gets the same client order id, so a double key press, a
retried request or a restarted process can never turn one decision into two orders: the manager
answers repeats from its records, and the broker refuses a reused id, which we count as the
first send having landed.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from daytrader.broker import (
    Broker,
    BrokerError,
    BrokerUnavailable,
    DuplicateClientOrderId,
    is_in_process,
)
from daytrader.models import Order, OrderIntent, OrderRequest, RiskDecision, quick_init

log = logging.getLogger(__name__)

CLIENT_ID_PREFIX = "dt"
T = TypeVar("T")

# SHA-256 as Python's own implementation computes it (the same digest as OpenSSL's): an id per
# order, and setting up an OpenSSL digest costs several times the hashing of a short key.
try:
    from _sha2 import sha256 as _sha256  # Python 3.12 and later
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # Python 3.11
    except ImportError:  # a build without them
        _sha256 = hashlib.sha256


def client_order_id(intent: OrderIntent, prefix: str = CLIENT_ID_PREFIX) -> str:
    """hash(symbol, side, qty, price, timestamp minute) plus the strategy: the seed's formula."""
    if intent.ts is None:
        raise ValueError("an order intent needs a timestamp for its client order id")
    price, ts = intent.limit_price or intent.stop_price or intent.ref_price, intent.ts
    key = "|".join((intent.symbol, str(intent.side), str(intent.qty),
                    "" if price is None else plain_decimal(price), _utc_minute(ts),
                    intent.strategy))
    digest = _sha256(key.encode()).hexdigest()[:20]
    return f"{prefix}-{intent.strategy[:12]}-{digest}"


def _utc_minute(ts: datetime) -> str:
    """The minute of `ts` in UTC as "%Y%m%d%H%M" (`fold` counts: the hour repeated when DST
    ends is two different minutes). Most orders come inside a UTC day that is also their local
    day: then it is that day's text (kept) and the minute's "%H%M" from a table, with no
    conversion; otherwise worked out in full. The offset is read as whole seconds: timedelta
    arithmetic (`offset // minute`) costs more than the rest together."""
    offset = ts.utcoffset()
    if offset is None:  # naive: this machine's local time
        return _utc_text(ts.astimezone(UTC))
    seconds = offset.days * 86400 + offset.seconds
    if seconds % 60 or offset.microseconds:  # an old local mean time's seconds
        return _utc_text(ts.astimezone(UTC))
    minute = ts.hour * 60 + ts.minute - seconds // 60
    if not 0 <= minute < 1440:
        return _utc_text(ts.astimezone(UTC))
    return _day_text(ts.year, ts.month, ts.day) + _HHMM[minute]


_HHMM = [f"{m // 60:02d}{m % 60:02d}" for m in range(1440)]


@functools.lru_cache(maxsize=8)
def _day_text(year: int, month: int, day: int) -> str:
    return f"{year:04d}{month:02d}{day:02d}"


def _utc_text(utc: datetime) -> str:
    return _day_text(utc.year, utc.month, utc.day) + _HHMM[utc.hour * 60 + utc.minute]


def plain_decimal(d: Decimal) -> str:
    """`f"{d:f}"` (no exponent), by the much cheaper str() when that has no exponent either."""
    text = str(d)
    return f"{d:f}" if "E" in text else text


async def within(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """`await coro` with a timeout, armed only if it has to wait: a broker in this process
    answers in its first step, and a timer per order is a good part of what an order costs
    there. A wait is timed as with `asyncio.timeout` (from the moment it starts)."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        return done.value
    async with asyncio.timeout(timeout):
        return await _Resumed(coro, waiting_on)


class _Resumed:
    """The rest of a coroutine whose first step already ran and is waiting on `waiting_on`:
    awaiting it is awaiting the coroutine from there on (what `await` does after that step)."""

    __slots__ = ("coro", "waiting_on")

    def __init__(self, coro: Coroutine, waiting_on: Any) -> None:
        self.coro, self.waiting_on = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.waiting_on
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancel (the timeout's) goes to where it waits
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value


class SubmitStatus(StrEnum):
    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"  # the same intent was already sent: its first result is returned
    RISK_REJECTED = "risk_rejected"
    BROKER_REJECTED = "broker_rejected"
    UNKNOWN = "unknown"  # the broker could not be reached and the order could not be found
    NOT_SENT = "not_sent"  # approved, but it could not be journaled first, so it was not sent


@quick_init
@dataclass(frozen=True, slots=True)
class SubmitResult:
    status: SubmitStatus
    client_order_id: str
    intent: OrderIntent
    decision: RiskDecision | None = None
    order: Order | None = None
    error: str = ""
    error_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.order is not None

    @property
    def message(self) -> str:
        if self.status is SubmitStatus.RISK_REJECTED and self.decision is not None:
            failed = self.decision.failed
            return f"refused by {failed.name}: {failed.reason}" if failed else "refused"
        if self.error:
            return self.error
        if self.order is not None:  # the short id the console, the log and `ctl` show
            return f"{self.status.value} {self.order.short_id}"
        return f"{self.status.value} {self.client_order_id}"


class OrderManager:
    """Sends each intent at most once. Repeats of an intent in flight wait for the first send."""

    def __init__(self, broker: Broker, *, timeout: float = 10.0, attempts: int = 2) -> None:
        self.broker = broker
        self._in_process = is_in_process(broker)
        self.timeout = timeout
        self.attempts = attempts
        self.results: dict[str, SubmitResult] = {}
        self.intents: dict[str, OrderIntent] = {}
        self.prefix = CLIENT_ID_PREFIX
        # Called with (client order id, intent, decision) after approval and before the send
        # (the journal's write-ahead); if it raises, the order is not sent.
        self.before_send: Callable[[str, OrderIntent, RiskDecision], None] | None = None
        # Sends under way, by client order id: the future a repeat waits on, made by the first
        # repeat (most sends have none, and one per send is a good part of a send in process).
        self._inflight: dict[str, asyncio.Future[SubmitResult] | None] = {}

    def pending_symbols(self) -> set[str]:
        """Symbols with an entry being sent right now (they hold a position slot already)."""
        if not self._inflight:
            return set()
        return {self.intents[cid].symbol for cid in self._inflight
                if not self.intents[cid].reduce_only}

    async def submit(self, intent: OrderIntent,
                     check: Callable[[OrderIntent], RiskDecision]) -> SubmitResult:
        cid = client_order_id(intent, self.prefix)
        if cid in self.results:
            first = self.results[cid]
            return SubmitResult(SubmitStatus.DUPLICATE, cid, intent, first.decision, first.order,
                                f"same order already {first.status.value} this minute")
        if cid in self._inflight:
            waiting = self._inflight[cid]
            if waiting is None:
                waiting = self._inflight[cid] = asyncio.get_running_loop().create_future()
            first = await asyncio.shield(waiting)
            return SubmitResult(SubmitStatus.DUPLICATE, cid, intent, first.decision, first.order,
                                f"same order already {first.status.value} this minute")
        # From here to the first await runs without interruption: the check and the reservation
        # of the id are atomic on the event loop.
        decision = check(intent)
        if not decision.approved:
            result = SubmitResult.make(SubmitStatus.RISK_REJECTED, cid, intent, decision)
            return result  # not remembered: the same intent may pass once conditions change
        if self.before_send is not None:
            try:
                self.before_send(cid, intent, decision)
            except Exception as exc:
                log.error("%s not sent: %s", cid, exc)
                return SubmitResult(SubmitStatus.NOT_SENT, cid, intent, decision,
                                    error=f"not sent: {exc}")
        self._inflight[cid] = None
        self.intents[cid] = intent
        result: SubmitResult | None = None
        try:
            result = await self._send(cid, intent, decision)
        finally:
            if result is None:  # the send was interrupted: the outcome is unknown, the id stays
                result = SubmitResult(SubmitStatus.UNKNOWN, cid, intent, decision,
                                      error="submit interrupted")
            self.results[cid] = result
            waiting = self._inflight.pop(cid)
            if waiting is not None:
                waiting.set_result(result)
        return result

    async def _send(self, cid: str, intent: OrderIntent, decision: RiskDecision) -> SubmitResult:
        # By position, in OrderRequest's order (keywords cost a third more, on every order). The
        # position intent is a second guard at the broker: an exit can only close.
        request = OrderRequest.make(cid, intent.symbol, intent.side, intent.qty, intent.order_type,
                                    intent.limit_price, intent.stop_price, intent.stop_loss,
                                    intent.take_profit,
                                    f"{intent.side}_to_close" if intent.reduce_only else None)
        last_error: BrokerError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                sending = self.broker.submit_order(request)
                # A venue in this process answers in its first step (Broker.in_process): its
                # send needs no timer, nor the stepping that arms one only if it waits.
                order = await (sending if self._in_process else within(sending, self.timeout))
                return SubmitResult.make(SubmitStatus.SUBMITTED, cid, intent, decision, order)
            except DuplicateClientOrderId:
                # The broker has this id: an earlier send landed. Find it and carry on with it.
                order = await self._lookup(cid)
                if order is not None:
                    log.info("%s already at the broker as %s: first send landed", cid, order.id)
                    return SubmitResult(SubmitStatus.SUBMITTED, cid, intent, decision, order)
                return SubmitResult(SubmitStatus.UNKNOWN, cid, intent, decision,
                                    error="broker reports a duplicate id but cannot find it")
            except (BrokerUnavailable, TimeoutError) as exc:
                last_error = exc if isinstance(exc, BrokerError) else BrokerUnavailable(
                    f"no answer from the broker in {self.timeout:g}s")
                log.warning("submit %s attempt %d: %s; looking it up before any retry",
                            cid, attempt, last_error)
                order = await self._lookup(cid)
                if order is not None:
                    return SubmitResult(SubmitStatus.SUBMITTED, cid, intent, decision, order)
            except BrokerError as exc:
                return SubmitResult(SubmitStatus.BROKER_REJECTED, cid, intent, decision,
                                    error=str(exc), error_code=exc.code)
        assert last_error is not None
        return SubmitResult(SubmitStatus.UNKNOWN, cid, intent, decision, error=str(last_error),
                            error_code=last_error.code)

    def adopt(self, order: Order) -> None:
        """An order the broker has (found at start-up or by a sync): its client order id counts
        as sent, so the same intent is never submitted again, even after a restart."""
        cid = order.client_order_id
        known = self.results.get(cid)
        if cid in self._inflight or (known is not None and known.order is not None):
            return
        intent = self.intents.get(cid) or OrderIntent(
            order.symbol, order.side, order.qty, order.order_type, order.limit_price,
            order.stop_price, reason="found at the broker", strategy="broker",
            ts=order.submitted_at)
        self.results[cid] = SubmitResult(SubmitStatus.SUBMITTED, cid, intent,
                                         known.decision if known else None, order)

    async def resolve_unknown(self) -> list[SubmitResult]:
        """Sends whose outcome was unknown, looked up again by client order id: found means
        submitted; a definite "not found" means it never reached the broker (NOT_SENT; the intent
        is over and is not sent again). A lookup that fails leaves it unknown."""
        resolved = []
        for cid, result in list(self.results.items()):
            if result.status is not SubmitStatus.UNKNOWN or cid in self._inflight:
                continue
            try:
                order = await asyncio.wait_for(self.broker.get_order_by_client_id(cid),
                                               self.timeout)
            except (BrokerError, TimeoutError):
                continue
            if order is not None:
                new = replace(result, status=SubmitStatus.SUBMITTED, order=order, error="")
            else:
                new = replace(result, status=SubmitStatus.NOT_SENT,
                              error=f"never reached the broker ({result.error})")
            self.results[cid] = new
            resolved.append(new)
        return resolved

    async def _lookup(self, cid: str) -> Order | None:
        try:
            return await asyncio.wait_for(self.broker.get_order_by_client_id(cid), self.timeout)
        except (BrokerError, TimeoutError) as exc:
            log.warning("lookup of %s failed: %s", cid, exc)
            return None
