"""The loopback HTTP part of the project's STAND-IN LLM servers (the quality oracle, the web judge).

A real chat LLM (behind ``vllm serve`` or a hosted API) cannot run on a laptop or in CI, so the stages that talk to
one are exercised against a real HTTP server on loopback whose "model" is a documented heuristic. What such a server
is, apart from its heuristic, lives here: ``GET /v1/models``; ``POST /v1/chat/completions`` (and, when asked,
``POST /v1/completions``) answered in vLLM's response shape, with ``max_tokens`` honoured one "token" per word
(``finish_reason: "length"``); 400 for a body that is not JSON or has no usable prompt; 404 for other paths. Each
stand-in module supplies ``answer(prompt) -> text`` and its model name.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[str], str]


def prompt_from_payload(payload: dict, chat: bool) -> str:
    """The prompt text of a request: the chat messages' contents (OpenAI content parts joined), one per line, or the
    completion's ``prompt``. Raises KeyError / TypeError / AttributeError on a body without them."""
    if not chat:
        return str(payload.get("prompt", ""))
    parts = []
    for message in payload["messages"]:
        content = message.get("content", "")
        if isinstance(content, list):  # OpenAI content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        parts.append(str(content))
    return "\n".join(parts)


def make_handler(
    model_name: str, answer: Answer, completions: bool = False, hang_after: int = 0
) -> type[BaseHTTPRequestHandler]:
    """The request handler of a stand-in whose replies are ``answer(prompt)``. ``completions``: also serve
    ``/v1/completions``; ``hang_after`` > 0 stops answering after that many completions (to test resuming)."""
    answered = {"count": 0}
    lock = threading.Lock()
    paths = {"/v1/chat/completions": True, **({"/v1/completions": False} if completions else {})}

    class StandInHandler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path.rstrip("/") == "/v1/models":
                self._reply(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):  # noqa: N802
            chat = paths.get(self.path.rstrip("/"))
            if chat is None:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except ValueError:
                self._reply(400, {"error": {"message": "body is not JSON", "type": "BadRequestError"}})
                return
            try:
                prompt = prompt_from_payload(payload, chat)
            except (KeyError, TypeError, AttributeError):
                self._reply(400, {"error": {"message": "bad request body", "type": "BadRequestError"}})
                return
            if hang_after > 0:
                with lock:
                    answered["count"] += 1
                    hang = answered["count"] > hang_after
                if hang:
                    time.sleep(3600)
            self._reply(200, completion_body(payload, prompt, answer(prompt), chat, model_name))

    return StandInHandler


def completion_body(payload: dict, prompt: str, text: str, chat: bool, model_name: str) -> dict:
    """vLLM's response to a (chat) completion request whose answer is ``text``, cut at ``max_tokens`` words."""
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
    finish_reason = "stop"
    words = text.split(" ")
    if isinstance(max_tokens, int) and len(words) > max_tokens:  # one "token" per word, like a real limit
        text, finish_reason = " ".join(words[:max_tokens]), "length"
    usage = {
        "prompt_tokens": len(prompt.split()),
        "completion_tokens": len(text.split()),
        "total_tokens": len(prompt.split()) + len(text.split()),
    }
    choice: dict = {"index": 0, "finish_reason": finish_reason, "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return {
        "id": f"standin-{time.time_ns()}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": payload.get("model", model_name),
        "choices": [choice],
        "usage": usage,
    }


def start_server(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve ``handler`` from a background thread; ``server.server_address`` has the bound port (0: a free one)."""
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_forever(handler: type[BaseHTTPRequestHandler], host: str, port: int, what: str, path: str = "") -> None:
    """Serve ``handler`` in the foreground until interrupted, after printing where (``what`` listening on URL)."""
    server = ThreadingHTTPServer((host, port), handler)
    bound_host, bound_port = server.server_address[:2]
    print(f"{what} listening on http://{bound_host}:{bound_port}{path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
