"""A tiny OpenAI-compatible HTTP server for offline tests.

Why: the library talks to LLMs through langchain-openai, and we want tests that exercise the
real client stack (``openai`` + ``langchain_openai``) without network access or API keys. The
stub speaks just enough of the Chat Completions and Embeddings APIs for that:

* ``POST /v1/chat/completions`` -- replies are produced by a ``chat_responder(body) -> dict``
  callback returning either ``{"content": "..."}`` or
  ``{"tool_calls": [{"name": ..., "arguments": {...} | "json string"}]}`` (both keys may be
  combined). ``{"error": "message", "status": 429}`` makes the stub answer with an HTTP error.
  ``stream: true`` is answered with SSE chunks, plus a usage chunk when
  ``stream_options.include_usage`` is set.
* ``POST /v1/embeddings`` -- deterministic bag-of-words embeddings (hashed word tokens, signed,
  summed, L2-normalised), so texts sharing words are close in cosine space. Both
  ``encoding_format="float"`` and ``"base64"`` are supported; the ``openai`` client asks for
  base64 by default and decodes it transparently.

Quirks worth knowing when pointing clients at the stub:

* ``OpenAIEmbeddings`` must be built with ``check_embedding_ctx_length=False``. With the default
  (``True``) it tokenises inputs with ``tiktoken``, which downloads its encoding files from the
  internet -- unavailable in tests.
* ``ChatOpenAI.with_structured_output`` defaults to ``method="json_schema"``, which sends
  ``response_format`` and parses ``message.content`` as JSON; the responder must therefore
  return ``{"content": json.dumps(...)}`` for it. ``method="function_calling"`` expects a tool
  call named after the schema instead.
* Use a model name such as ``gpt-4o-mini``; some names make ``ChatOpenAI`` switch to the
  Responses API (``/v1/responses``), which the stub does not implement (404).

Every JSON body received is appended to ``OpenAIStub.requests`` with an extra ``"path"`` key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

ChatResponder = Callable[[dict[str, Any]], dict[str, Any]]

_WORD_RE = re.compile(r"\w+")


def default_chat_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Answer every chat request with the fixed content ``"ok"``."""
    del body
    return {"content": "ok"}


def estimate_tokens(text: str) -> int:
    """Rough token count (chars / 4 + 1), good enough for usage accounting in tests."""
    return len(text) // 4 + 1


def last_user_text(body: dict[str, Any]) -> str:
    """Return the text of the last user message in a chat request body (helper for responders)."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _content_text(content: object) -> str:
    """Flatten OpenAI message content (str or list of parts) to plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(str(p) for p in parts)
    return ""


def embed_text(text: str, dim: int) -> list[float]:
    """Deterministic hashed bag-of-words embedding, L2-normalised.

    Never all zeros (a real model never returns that, and the store refuses it): a text
    without words, or whose words cancel out, gets one axis picked by hashing the whole text.
    """
    vector = [0.0] * dim
    for word in _WORD_RE.findall(text.lower()):
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        index = (value >> 1) % dim
        vector[index] += 1.0 if value & 1 else -1.0
    if not any(vector):
        digest = hashlib.blake2b(text.lower().encode("utf-8", "surrogatepass"),
                                 digest_size=8).digest()
        vector[int.from_bytes(digest, "little") % dim] = 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if norm > 0:
        vector = [x / norm for x in vector]
    return vector


def _encode_base64(vector: list[float]) -> str:
    """Encode floats the way the OpenAI API does for ``encoding_format="base64"``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _normalise_inputs(raw: object) -> list[str]:
    """Accept str, list[str], list[int] (one token list) or list[list[int]] embedding inputs."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        if raw and all(isinstance(x, int) for x in raw):
            return [" ".join(str(x) for x in raw)]
        texts: list[str] = []
        for item in raw:
            if isinstance(item, list):
                texts.append(" ".join(str(x) for x in item))
            else:
                texts.append(str(item))
        return texts
    raise ValueError(f"unsupported embeddings input: {type(raw).__name__}")


def _normalise_tool_calls(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn responder tool calls into OpenAI wire format (ids, JSON-string arguments)."""
    calls: list[dict[str, Any]] = []
    for call in raw:
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(
            {
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": call["name"], "arguments": arguments},
            }
        )
    return calls


def _split(text: str, pieces: int = 3) -> list[str]:
    """Split text into a few chunks so streaming clients really have to accumulate."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


class _StubServer(ThreadingHTTPServer):
    """HTTP server carrying a reference back to its stub."""

    daemon_threads = True
    stub: OpenAIStub


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the stub; keep-alive so the httpx connection pool behaves normally."""

    protocol_version = "HTTP/1.1"
    server: _StubServer

    def log_message(self, *args: object) -> None:
        """Silence per-request logging to keep test output clean."""

    def do_GET(self) -> None:
        """No GET endpoints are implemented."""
        self._send_error(404, f"Unknown path: {self.path}")

    def do_POST(self) -> None:
        """Dispatch POSTs to chat or embeddings handlers."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_error(400, "Body is not valid JSON")
            return
        if not isinstance(body, dict):
            self._send_error(400, "Body must be a JSON object")
            return
        path = self.path.split("?", 1)[0].rstrip("/")
        stub = self.server.stub
        stub._record({**body, "path": path})
        try:
            if path == "/v1/chat/completions":
                self._chat(body)
            elif path == "/v1/embeddings":
                self._embeddings(body)
            else:
                self._send_error(404, f"Unknown path: {path}")
        except Exception as exc:  # report responder bugs to the client instead of hanging
            self._send_error(500, f"{type(exc).__name__}: {exc}")

    # -- chat -------------------------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        """Build a chat.completion (or SSE stream) from the responder's reply."""
        reply = self.server.stub.chat_responder(body)
        if "error" in reply:
            self._send_error(int(reply.get("status", 400)), str(reply["error"]))
            return
        content = reply.get("content")
        tool_calls = _normalise_tool_calls(reply.get("tool_calls") or [])
        model = str(body.get("model", "stub-model"))
        prompt_tokens = estimate_tokens(json.dumps(body.get("messages", [])))
        completion_text = (content or "") + (json.dumps(tool_calls) if tool_calls else "")
        completion_tokens = estimate_tokens(completion_text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        finish_reason = "tool_calls" if tool_calls else "stop"
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = _stream_events(
                completion_id,
                created,
                model,
                content,
                tool_calls,
                finish_reason,
                usage if include_usage else None,
            )
            self._send_sse(events)
            return
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        self._send_json(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
                "system_fingerprint": "fp_stub",
            },
        )

    # -- embeddings -------------------------------------------------------------------------

    def _embeddings(self, body: dict[str, Any]) -> None:
        """Return hashed bag-of-words embeddings in float or base64 encoding."""
        try:
            texts = _normalise_inputs(body.get("input"))
        except ValueError as exc:
            self._send_error(400, str(exc))
            return
        dim = int(body.get("dimensions") or self.server.stub.embed_dim)
        as_base64 = body.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = embed_text(text, dim)
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": _encode_base64(vector) if as_base64 else vector,
                }
            )
        tokens = sum(estimate_tokens(t) for t in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "stub-embedding")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- wire helpers -----------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        """Send a JSON response with an explicit Content-Length (keep-alive safe)."""
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str) -> None:
        """Send an OpenAI-shaped error object."""
        error_type = "invalid_request_error" if status < 500 else "server_error"
        self._send_json(
            status,
            {"error": {"message": message, "type": error_type, "param": None, "code": None}},
        )

    def _send_sse(self, events: Iterator[dict[str, Any]]) -> None:
        """Stream server-sent events; the connection is closed to delimit the body."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _stream_events(
    completion_id: str,
    created: int,
    model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: dict[str, int] | None,
) -> Iterator[dict[str, Any]]:
    """Yield chat.completion.chunk payloads mirroring OpenAI's streaming format."""
    include_usage = usage is not None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_stub",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            event["usage"] = None
        return event

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for piece in _split(content or ""):
        yield chunk({"content": piece})
    for index, call in enumerate(tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        for piece in _split(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, finish_reason)
    if usage is not None:
        final = chunk({})
        final["choices"] = []
        final["usage"] = usage
        yield final


class OpenAIStub:
    """In-process OpenAI-compatible server; use as a context manager or via start()/stop()."""

    def __init__(self, chat_responder: ChatResponder | None = None, embed_dim: int = 64) -> None:
        """Configure the stub; nothing listens until :meth:`start` is called."""
        self.chat_responder: ChatResponder = chat_responder or default_chat_responder
        self.embed_dim = embed_dim
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: _StubServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def _record(self, body: dict[str, Any]) -> None:
        """Remember a request body (thread-safe; the server handles requests concurrently)."""
        with self._lock:
            self.requests.append(body)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """Return recorded bodies for one path, e.g. ``"/v1/chat/completions"``."""
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def start(self) -> OpenAIStub:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._server is not None:
            return self
        server = _StubServer(("127.0.0.1", 0), _Handler)
        server.stub = self
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}/v1"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="openai-stub",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> OpenAIStub:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block."""
        self.stop()
