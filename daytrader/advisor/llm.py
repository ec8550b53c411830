"""The one chat client for every model call: any OpenAI-compatible server, through `openai`.

A hosted model or a local server (Ollama, llama.cpp's server, vLLM) alike: LLM_BASE_URL (ending
in /v1), LLM_MODEL, LLM_API_KEY. Each call has an overall deadline (no retries: the openai client
would retry twice, past any deadline) and takes one unit of an hourly budget shared by every
caller. Tokens and latency are counted; three failures in a row, or a spent budget, make the
advisor's health red, the way three failed broker calls make the broker's.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from daytrader.advisor.prompts import redact_text
from daytrader.clock import EXCHANGE_TZ
from daytrader.config import Secret, Settings
from daytrader.models import Health

log = logging.getLogger(__name__)
OPENAI_BASE_URL = "https://api.openai.com/v1"
UNHEALTHY_AFTER_FAILURES = 3


class LlmError(Exception):
    """A call that gave no usable answer. `kind`: timeout, rate_limited, server_error,
    http_error, unreachable, budget, bad_response."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class LlmReply:
    content: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float


class HourlyBudget:
    """At most `limit` calls in any 60 minutes (a sliding window)."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.calls: deque[float] = deque()

    def _trim(self) -> float:
        now = self.clock()
        while self.calls and now - self.calls[0] >= 3600:
            self.calls.popleft()
        return now

    def take(self) -> bool:
        now = self._trim()
        if len(self.calls) >= self.limit:
            return False
        self.calls.append(now)
        return True

    @property
    def left(self) -> int:
        self._trim()
        return self.limit - len(self.calls)


@dataclass
class LlmStats:
    calls: int = 0
    answered: int = 0
    failed: int = 0
    failures_in_a_row: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_error: str = ""
    last_answer_at: datetime | None = None

    def __post_init__(self) -> None:
        self.latencies: deque[float] = deque(maxlen=200)

    def as_dict(self) -> dict:
        lat = sorted(self.latencies)
        return {"calls": self.calls, "answered": self.answered, "failed": self.failed,
                "failures_in_a_row": self.failures_in_a_row, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "last_error": self.last_error,
                "latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
                "latency_ms_max": round(lat[-1], 1) if lat else None}


class ChatClient:
    def __init__(self, base_url: str, model: str, api_key: Secret, calls_per_hour: int,
                 *, max_tokens: int = 500, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url or OPENAI_BASE_URL
        self.model = model
        self._key = api_key
        self.max_tokens = max_tokens
        self.budget = HourlyBudget(calls_per_hour, clock)
        self.stats = LlmStats()
        self._client = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Imported here, when a run is built with a model, never on the engine's loop at the
        # first entry (importing openai takes a few hundred milliseconds).
        import openai

        self._openai_module = openai

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatClient | None:
        """The run's client, or None when no model is configured (LLM_MODEL empty)."""
        if not settings.llm_model:
            return None
        return cls(settings.llm_base_url, settings.llm_model, settings.llm_api_key,
                   settings.advisor_calls_per_hour)

    def prepare(self) -> None:
        """Builds the async openai client for the running loop (its connections belong to the
        loop); the run calls it before the first bar, so an entry does not pay for it."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A local server needs no key, but the client wants one; "none" is sent then.
            self._client = self._openai_module.AsyncOpenAI(
                base_url=self.base_url, api_key=self._key.reveal() or "none", max_retries=0)
            self._loop = loop

    async def warm(self, timeout: float = 2.0) -> str:
        """Before the first bar: the client is built and its connection opened by listing the
        server's models (no tokens, no budget), so the first entry pays for neither (the first
        request imports and connects: some 15 ms of the loop). Returns a problem worth showing,
        or ""."""
        self.prepare()
        try:
            async with asyncio.timeout(timeout):
                page = await self._client.models.list()
            names = [m.id for m in page.data]
        except Exception as exc:  # down, or a server without /models: entries still go ahead
            return (f"the model server at {self.base_url} did not answer at start "
                    f"({type(exc).__name__}); entries go ahead unadvised until it does")
        if names and self.model not in names:
            return (f"{self.model} is not among the models the server at {self.base_url} lists "
                    f"({', '.join(names[:5])}); check LLM_MODEL")
        return ""

    async def complete(self, messages: list[dict[str, str]], timeout: float) -> LlmReply:
        """The model's answer to `messages` within `timeout` seconds; LlmError otherwise."""
        if not self.budget.take():
            error = LlmError("budget", f"the budget of {self.budget.limit} model calls per hour "
                                       "is used up (ADVISOR_CALLS_PER_HOUR)")
            self._failed(error)
            raise error
        openai = self._openai_module
        self.prepare()
        self.stats.calls += 1
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.chat.completions.create(
                    model=self.model, messages=messages, temperature=0,
                    max_tokens=self.max_tokens, response_format={"type": "json_object"},
                    timeout=timeout)
        except TimeoutError:
            error = LlmError("timeout", f"no answer within {timeout:g}s")
        except openai.APITimeoutError:
            error = LlmError("timeout", f"no answer within {timeout:g}s")
        except openai.RateLimitError:
            error = LlmError("rate_limited", "the model server is rate limiting (HTTP 429)")
        except openai.InternalServerError as exc:
            error = LlmError("server_error", f"model server error (HTTP {exc.status_code})")
        except openai.APIStatusError as exc:
            error = LlmError("http_error", f"the model server refused the call (HTTP "
                                           f"{exc.status_code}: {_short(exc.message)})")
        except openai.APIConnectionError as exc:
            error = LlmError("unreachable", f"cannot reach the model server at {self.base_url} "
                                            f"({_short(str(exc.__cause__ or exc))})")
        except Exception as exc:  # a body that is not JSON, or not a completion
            error = LlmError("bad_response", f"not a chat completion ({type(exc).__name__}: "
                                             f"{_short(str(exc))})")
        else:
            latency = (time.perf_counter() - started) * 1000
            try:
                content = response.choices[0].message.content
            except (AttributeError, IndexError, TypeError):
                content = None
            if not isinstance(content, str):
                error = LlmError("bad_response", "the completion holds no message content")
            else:
                usage = getattr(response, "usage", None)
                reply = LlmReply(content, str(getattr(response, "model", "") or self.model),
                                 getattr(usage, "prompt_tokens", None),
                                 getattr(usage, "completion_tokens", None), latency)
                self._answered(reply)
                return reply
        error.message = redact_text(error.message, [self._key.reveal()])
        self._failed(error)
        raise error

    def _answered(self, reply: LlmReply) -> None:
        s = self.stats
        s.answered += 1
        s.failures_in_a_row = 0
        s.latencies.append(reply.latency_ms)
        s.prompt_tokens += reply.prompt_tokens or 0
        s.completion_tokens += reply.completion_tokens or 0
        s.last_answer_at = datetime.now(EXCHANGE_TZ)

    def _failed(self, error: LlmError) -> None:
        self.stats.failed += 1
        self.stats.failures_in_a_row += 1
        self.stats.last_error = error.message
        log.info("model call failed: %s", error.message)

    def record_failure(self, why: str) -> None:
        """A call its caller stopped waiting for (a deadline of its own) counts as failed."""
        self._failed(LlmError("timeout", why))

    def record_refused_answer(self, why: str) -> None:
        """An answer that came back but could not be used counts as a failure for health."""
        self.stats.failures_in_a_row += 1
        self.stats.last_error = f"answer refused: {why}"

    def health(self, mode: str) -> Health:
        s = self.stats
        lat = sorted(s.latencies)
        p50 = f", p50 {statistics.median(lat):.0f} ms" if lat else ""
        spent = self.budget.left <= 0
        ok = s.failures_in_a_row < UNHEALTHY_AFTER_FAILURES and not spent
        tail = ""
        if s.failures_in_a_row:
            tail = f"; {s.failures_in_a_row} failed in a row (last: {s.last_error})"
        detail = (f"{mode} · {self.model}: {s.answered}/{s.calls} answered{p50}, "
                  f"{s.prompt_tokens + s.completion_tokens} tokens, budget "
                  f"{self.budget.left}/{self.budget.limit} this hour{tail}")
        return Health("advisor", ok, detail, s.last_answer_at)

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except Exception as exc:  # a client bound to a loop that is gone
                log.debug("closing the model client: %s", exc)
            self._client = None


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
