"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API with scripted replies.

Tests point the real ``openai`` client at it (``openai.OpenAI(base_url=server.url + "/v1", api_key="test")``)
so the whole path (HTTP, JSON, status codes, timeouts, retries) runs for real, without a network.

Endpoints: ``POST /v1/chat/completions`` answers with the next scripted reply (a queue, or a handler called
with each request); ``GET /v1/models`` lists ``server.model``. Every request is recorded in
``server.requests``.
With nothing scripted, chat requests get a 500 saying so.

Examples
--------
::

    with OpenAIServer() as server:
        server.add(chat_completion(laws_json(("a * N**b + c", "power law"))))
        server.add(error_reply(500, "overloaded"))
        server.add(chat_completion("{}", delay_s=2.0))  # slow: trips a short client timeout
        ...
        assert server.chat_requests[0].json["response_format"]["type"] == "json_schema"
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


@dataclass(frozen=True)
class ScriptedReply:
    """What the server sends for one request.

    ``delay_s`` waits before the status line (a slow server); ``chunk_delay_s`` waits between 64 kB chunks of
    the body (a server that drips).
    """

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None)


def laws_json(*laws: tuple[str, str] | str) -> str:
    """Build reply content ``{"laws": [{"expression", "rationale"}, ...]}`` from expressions or pairs."""
    items = [
        {"expression": law, "rationale": ""}
        if isinstance(law, str)
        else {"expression": law[0], "rationale": law[1]}
        for law in laws
    ]
    return json.dumps({"laws": items})


def chat_completion(
    content: str | None,
    *,
    usage: tuple[int, int] | None = (11, 7),
    model: str = "test-model",
    finish_reason: str = "stop",
    delay_s: float = 0.0,
    chunk_delay_s: float = 0.0,
) -> ScriptedReply:
    """A 200 chat completion with ``content``; ``usage=(prompt, completion)`` tokens, or None to omit it."""
    payload: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage is not None:
        payload["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        }
    return ScriptedReply(body=json.dumps(payload).encode(), delay_s=delay_s, chunk_delay_s=chunk_delay_s)


def error_reply(
    status: int,
    message: str,
    *,
    param: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> ScriptedReply:
    """An error status with OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``."""
    payload = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    return ScriptedReply(
        status=status,
        body=json.dumps(payload).encode(),
        headers=(("Content-Type", "application/json"), *tuple(headers)),
    )


def raw_reply(
    body: bytes | str, *, status: int = 200, content_type: str = "application/json"
) -> ScriptedReply:
    """Any body with any status (malformed JSON, HTML error pages, huge bodies)."""
    data = body.encode() if isinstance(body, str) else body
    return ScriptedReply(status=status, body=data, headers=(("Content-Type", content_type),))


Handler = Callable[[RecordedRequest], ScriptedReply]


class _HTTPServer(ThreadingHTTPServer):
    # Handler threads are joined by server_close(), so none outlives the test.
    daemon_threads = False
    block_on_close = True

    def __init__(self, owner: OpenAIServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-reply (timeouts, size caps) are expected; stay quiet.
        return


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # no access log on stderr

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest(method, self.path, headers, body, parsed)
        owner.requests.append(request)
        if method == "POST" and self.path == CHAT_PATH:
            reply = owner.next_reply(request)
        elif method == "GET" and self.path == MODELS_PATH:
            models = {
                "object": "list",
                "data": [{"id": owner.model, "object": "model", "created": 0, "owned_by": "sld-tests"}],
            }
            reply = ScriptedReply(body=json.dumps(models).encode())
        else:
            reply = error_reply(404, f"openai_server: no route for {method} {self.path}")
        self._send(reply)

    def _send(self, reply: ScriptedReply) -> None:
        stopping = self.server.owner.stopping
        if reply.delay_s and stopping.wait(reply.delay_s):
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            for start in range(0, len(reply.body), 65_536):
                if reply.chunk_delay_s and start and stopping.wait(reply.chunk_delay_s):
                    return
                self.wfile.write(reply.body[start : start + 65_536])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (timeout, size cap); expected in tests


class OpenAIServer:
    """A chat-completions server on 127.0.0.1 (random port), run in a background thread.

    Parameters
    ----------
    replies : iterable of ScriptedReply, optional
        Initial reply queue.
    handler : callable, optional
        Called with each chat request when the queue is empty; returns the reply.
    model : str, default "test-model"
        Listed by ``GET /v1/models``.
    """

    def __init__(
        self,
        replies: Iterable[ScriptedReply] = (),
        *,
        handler: Handler | None = None,
        model: str = "test-model",
    ) -> None:
        self.model = model
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        self.stopping = threading.Event()
        self._queue: deque[ScriptedReply] = deque(replies)
        self._lock = threading.Lock()
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> OpenAIServer:
        """Bind a free port and serve in a thread; ``url`` is ``http://127.0.0.1:PORT``."""
        self._http = _HTTPServer(self)
        host, port = self._http.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake slow replies, join every thread and close the socket (idempotent)."""
        if self._http is None:
            return
        self.stopping.set()
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join()
        self._http = None
        self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The API root for ``openai.OpenAI(base_url=...)``."""
        return self.url + "/v1"

    def add(self, *replies: ScriptedReply) -> None:
        """Append replies to the queue."""
        with self._lock:
            self._queue.extend(replies)

    def add_chat(self, content: str | None, **kwargs: Any) -> None:
        """Queue a 200 chat completion (keywords as :func:`chat_completion`)."""
        self.add(chat_completion(content, **kwargs))

    def add_error(self, status: int, message: str = "scripted error", **kwargs: Any) -> None:
        """Queue an error status (keywords as :func:`error_reply`)."""
        self.add(error_reply(status, message, **kwargs))

    def add_raw(self, body: bytes | str, **kwargs: Any) -> None:
        """Queue a raw body (keywords as :func:`raw_reply`)."""
        self.add(raw_reply(body, **kwargs))

    @property
    def pending(self) -> int:
        """Replies still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completion requests received, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path == CHAT_PATH]

    def next_reply(self, request: RecordedRequest) -> ScriptedReply:
        """Pop the next queued reply, else ask the handler, else a 500 saying the script ran out."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return self.handler(request)
        return error_reply(500, "openai_server: no scripted reply left")
