"""A local OpenAI-compatible chat server for tests: the real `openai` client talks to it over HTTP.

It speaks the Chat Completions API (`POST /v1/chat/completions`, `GET /v1/models`) with
OpenAI's shapes and error bodies, records every request it receives (so a test can assert on
what was sent), and answers from a script: a verdict, raw content, an HTTP status (429, 500), a
body that is not JSON, a delay, or an answer held until the test releases it. It runs on its own
thread and event loop at 127.0.0.1 on a free port; nothing here reaches the internet.

As a script it serves the benchmarks from a process of its own:
    python tests/fake_llm.py --latency 0.3      (prints its base URL, then serves until killed)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # dropped clients are expected

ERRORS = {
    429: {"message": "Rate limit reached for requests", "type": "requests",
          "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error while processing your request.",
          "type": "server_error", "code": None},
    401: {"message": "Incorrect API key provided.", "type": "invalid_request_error",
          "code": "invalid_api_key"},
}


def verdict(word: str, confidence: float, *reasons: str) -> str:
    """The content of an answer in the advisor's shape."""
    return json.dumps({"verdict": word, "confidence": confidence, "reasons": list(reasons)})


@dataclass
class Reply:
    content: str | None = None  # the assistant message's content
    status: int = 200
    latency: float = 0.0  # seconds before answering
    body: str | None = None  # a raw body instead of a completion (e.g. not JSON at all)
    usage: tuple[int, int] = (180, 40)  # prompt and completion tokens
    hold: threading.Event | None = None  # answer only once the test sets it


class FakeLLM:
    def __init__(self, default: Reply | Callable[[dict], Reply] | None = None,
                 port: int = 0) -> None:
        self.default = default or Reply(verdict("agree", 0.8, "trend and volume agree"))
        self.queue: list[Reply] = []
        self.requests: list[dict[str, Any]] = []  # every JSON body received, in order
        self.headers: list[dict[str, str]] = []
        self.port = port
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="fake-llm")

    # -- what tests use --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply | str) -> FakeLLM:
        """The next answers, in order (a string is an answer's content); then the default."""
        with self._lock:
            self.queue.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    def sent_text(self) -> str:
        """Everything the server received, as text: for asserting what never left the client."""
        return "\n".join(json.dumps(r) for r in self.requests)

    def user_contents(self) -> list[dict]:
        """The user message of each request, parsed (the prompts the advisor built)."""
        out = []
        for body in self.requests:
            user = next(m["content"] for m in body["messages"] if m["role"] == "user")
            out.append(json.loads(user))
        return out

    # -- life ------------------------------------------------------------------------------------
    def start(self) -> FakeLLM:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp's only door
        self._started.set()
        loop.run_forever()
        loop.close()

    # -- the API ---------------------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": "fake-model", "object": "model", "created": 0, "owned_by": "tests"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            reply = self.queue.pop(0) if self.queue else None
        if reply is None:
            reply = self.default(body) if callable(self.default) else self.default
        if reply.latency:
            await asyncio.sleep(reply.latency)
        while reply.hold is not None and not reply.hold.is_set():
            await asyncio.sleep(0.005)
        if reply.status != 200:
            error = ERRORS.get(reply.status, {"message": f"HTTP {reply.status}", "type": "error",
                                              "code": None})
            return web.json_response({"error": error}, status=reply.status)
        if reply.body is not None:
            return web.Response(text=reply.body, content_type="application/json")
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                      "total_tokens": sum(reply.usage)}})


def mixed_verdicts(latency: float) -> Callable[[dict], Reply]:
    """A deterministic mix for benchmarks: most entries agreed, some cautioned, some vetoed."""

    def decide(body: dict) -> Reply:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        pick = hashlib.sha256(user.encode()).digest()[0] % 10
        word = "veto" if pick < 2 else "caution" if pick < 4 else "agree"
        return Reply(verdict(word, 0.9 if word == "veto" else 0.6, "benchmark answer"),
                     latency=latency)

    return decide


def main() -> None:
    p = argparse.ArgumentParser(description="a local OpenAI-compatible chat server")
    p.add_argument("--latency", type=float, default=0.3, help="seconds before each answer")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    server = FakeLLM(mixed_verdicts(args.latency), port=args.port).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
