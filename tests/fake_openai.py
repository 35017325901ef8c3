"""A small, real OpenAI-compatible HTTP server for tests (stdlib only, 127.0.0.1).

    server = FakeOpenAIServer().start()       # or the `fake_openai` pytest fixture
    server.base_url                           # "http://127.0.0.1:<port>/v1"
    server.fail_next(429, times=1, retry_after=0)   # then succeed
    server.delay_next(2.0)                    # a slow answer (for timeouts)
    server.api_key = "sk-test"                # requests without it get 401
    server.stop()

`POST /v1/embeddings` answers deterministic unit vectors (`fake_embedding(text, dim)`),
as floats or base64 as asked. `POST /v1/chat/completions` answers `server.chat_reply` (a
string, or a function of the request), as one JSON answer or, with `"stream": true`, as
server-sent events of `chat_piece_chars` characters each, written and flushed one by one
(chunked transfer) and ended by `data: [DONE]`. Failures, delays and quirks are injected
per server; every request is recorded in `server.requests`. Other routes are added with
`server.route(...)`.

Run `python tests/fake_openai.py --port 8000` to try it by hand.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

DEFAULT_DIM = 16


def fake_embedding(text: str, dim: int = DEFAULT_DIM) -> np.ndarray:
    """The unit vector the fake server returns for `text` (float32, deterministic)."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.float32(np.linalg.norm(vector))


@dataclass
class FakeRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: When set, the answer is server-sent events: one `data: <event>` per item, each
    #: written and flushed on its own.
    events: list[str] | None = None


Handler = Callable[["FakeOpenAIServer", FakeRequest], FakeResponse]


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    body: Any


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 with failure injection.

    Knobs (set any time, thread-safe enough for tests):
      api_key        required Bearer key, or None for none
      dim            vector length when the request has no `dimensions`
      max_inputs     answer 400 when a request has more inputs than this
      shuffle        return `data` in a random order (clients must sort by index)
      base64         False: refuse encoding_format=base64 with 400 (as some servers do)
      ignore_format  answer floats even when base64 was asked
      support_dimensions  False: ignore `dimensions` (as Ollama does)
      chat_reply     the chat answer: a string or `f(request) -> str`
      chat_piece_chars  characters per streamed chunk
      chat_ignore_stream  answer JSON even when a stream was asked (as some servers do)
      chat_stream_error  when set, a streamed answer sends this error event midway
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.api_key: str | None = None
        self.dim = DEFAULT_DIM
        self.max_inputs: int | None = None
        self.shuffle = False
        self.base64 = True
        self.ignore_format = False
        self.support_dimensions = True
        self.chat_reply: str | Callable[[FakeRequest], str] = "A fake answer citing [1]."
        self.chat_piece_chars = 4
        self.chat_ignore_stream = False
        self.chat_stream_error: str | None = None
        self.requests: list[FakeRequest] = []
        self._failures: deque[_Failure] = deque()
        self._delays: deque[float] = deque()
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/embeddings"): _embeddings,
            ("POST", "/v1/chat/completions"): _chat,
            ("GET", "/v1/models"): _models,
            ("GET", "/health"): lambda server, request: FakeResponse(200, {"status": "ok"}),
        }
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        handler = _make_handler(self)
        httpd = _QuietServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    # -- behaviour --------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `method path` with `handler(server, request) -> FakeResponse`."""
        self._routes[(method.upper(), path)] = handler

    def fail_next(
        self, status: int, *, times: int = 1, retry_after: float | None = None, body: Any = None
    ) -> None:
        """The next `times` requests answer `status` (with Retry-After if given)."""
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, retry_after, body))

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests wait `seconds` before answering."""
        with self._lock:
            self._delays.extend([seconds] * times)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()
            self.requests.clear()

    def embedding_requests(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.path == "/v1/embeddings"]

    def chat_requests(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    # -- dispatch (called from the handler threads) -------------------------------------

    def _dispatch(self, request: FakeRequest) -> FakeResponse:
        with self._lock:
            self.requests.append(request)
            delay = self._delays.popleft() if self._delays else 0.0
            failure = self._failures.popleft() if self._failures else None
        if delay:
            time.sleep(delay)
        if failure is not None:
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = f"{failure.retry_after:g}"
            body = failure.body
            if body is None:
                body = _error_body(f"injected failure {failure.status}", "server_error")
            return FakeResponse(failure.status, body, headers)
        if (
            self.api_key is not None
            and request.path.startswith("/v1/")
            and request.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            return FakeResponse(401, _error_body("Incorrect API key provided.", "invalid_api_key"))
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return FakeResponse(404, _error_body(f"no route {request.method} {request.path}"))
        return handler(self, request)


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (timeout tests) are expected: no traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _error_body(message: str, code: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code}}


def _embeddings(server: FakeOpenAIServer, request: FakeRequest) -> FakeResponse:
    body = request.body
    if not isinstance(body, dict) or "input" not in body or "model" not in body:
        return FakeResponse(400, _error_body("'model' and 'input' are required"))
    inputs = body["input"]
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(t, str) and t for t in inputs):
        return FakeResponse(400, _error_body("'input' must be a non-empty string or list"))
    if server.max_inputs is not None and len(inputs) > server.max_inputs:
        return FakeResponse(
            400, _error_body(f"batch size {len(inputs)} is over the limit of {server.max_inputs}")
        )
    fmt = body.get("encoding_format", "float")
    if fmt == "base64" and not server.base64:
        return FakeResponse(400, _error_body("encoding_format 'base64' is not supported"))
    dim = server.dim
    if body.get("dimensions") is not None and server.support_dimensions:
        dim = int(body["dimensions"])
    data = []
    for index, text in enumerate(inputs):
        vector = fake_embedding(text, dim)
        embedding: Any
        if fmt == "base64" and not server.ignore_format:
            embedding = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            embedding = [float(x) for x in vector]
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    if server.shuffle:
        random.shuffle(data)
    tokens = sum(len(t.split()) for t in inputs)
    return FakeResponse(
        200,
        {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


def _chat(server: FakeOpenAIServer, request: FakeRequest) -> FakeResponse:
    body = request.body
    if not isinstance(body, dict) or "model" not in body or "messages" not in body:
        return FakeResponse(400, _error_body("'model' and 'messages' are required"))
    messages = body["messages"]
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    ):
        return FakeResponse(400, _error_body("'messages' must be a list of {role, content}"))
    reply = server.chat_reply(request) if callable(server.chat_reply) else server.chat_reply
    base = {"id": "chatcmpl-fake", "created": 0, "model": body["model"]}
    if not body.get("stream") or server.chat_ignore_stream:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "finish_reason": "stop",
        }
        return FakeResponse(200, {**base, "object": "chat.completion", "choices": [choice]})
    size = max(1, server.chat_piece_chars)
    pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
    chunk = {**base, "object": "chat.completion.chunk"}
    events = [json.dumps({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    for i, piece in enumerate(pieces):
        if server.chat_stream_error is not None and i == len(pieces) // 2:
            events.append(json.dumps({"error": {"message": server.chat_stream_error}}))
        delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        events.append(json.dumps({**chunk, "choices": [delta]}, ensure_ascii=False))
    events.append(
        json.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    events.append("[DONE]")
    return FakeResponse(200, events=events)


def _models(server: FakeOpenAIServer, request: FakeRequest) -> FakeResponse:
    return FakeResponse(200, {"object": "list", "data": [{"id": "fake-embed", "object": "model"}]})


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                self._send(FakeResponse(400, _error_body("body is not JSON")))
                return
            request = FakeRequest(
                self.command,
                self.path.split("?", 1)[0],
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            self._send(server._dispatch(request))

        def _send(self, response: FakeResponse) -> None:
            if response.events is not None:
                self._send_events(response)
                return
            payload = json.dumps(response.body).encode("utf-8")
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. a timeout test)

        def _send_events(self, response: FakeResponse) -> None:
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for event in response.events or []:
                    data = f"data: {event}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = _handle
        do_POST = _handle

    return _Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A running `FakeOpenAIServer`, stopped after the test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    server = FakeOpenAIServer(port=args.port)
    server.api_key = args.api_key
    server.start()
    print(f"serving on {server.base_url}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
