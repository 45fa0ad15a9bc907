"""A STAND-IN for the web LLM: an OpenAI-compatible HTTP server whose "model" is a documented heuristic.

Why it exists: the real judge and scorer (a chat LLM behind vLLM or a hosted API) cannot run on a laptop or in CI,
but ``train-recall`` and ``run`` should still talk real HTTP to a server as they would to ``vllm serve``. It answers
``GET /v1/models`` and ``POST /v1/chat/completions`` for the two prompts of :mod:`datatrove_pipelines.web.llm`.

The stand-in rules (simple on purpose, so a test can predict them):

* judge: code-related (``[[1]]``) when at least 3 lines of the page, and at least 5% of its non-blank lines, look
  like code (:func:`code_like_lines`: statements, calls, assignments, brackets, prompts, indented blocks);
* quality: 0 under 20 words; else ``round(2 + 5·min(1, code lines / 8) + 3·min(1, words / 250))``.

    python -m datatrove_pipelines.web stand-in-judge --port 8000
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from datatrove_pipelines.web.llm import JUDGE_TASK, extract_page

STAND_IN_MODEL_NAME = "stand-in-web-judge"
_CODE_LINE = re.compile(
    r"""^\s*(?:def |class |import |from \S+ import |return\b|if .*:$|for .*:$|while .*:$|elif |else:|try:|except\b|"""
    r"""with .*:$|>>> |\$ |#include|public |private |function |const |let |var |fn |pub |\}|@\w)"""
    r"""|^\s*[\w.\[\]'"]+\s*(?:[+\-*/|&]?=)\s*\S|^\s*[\w.]+\(.*\)\s*[;:]?\s*$|[;{]\s*$""",
)


def code_like_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip() and _CODE_LINE.search(line))


def stand_in_verdict(text: str) -> int:
    nonblank = sum(1 for line in text.splitlines() if line.strip())
    lines = code_like_lines(text)
    return int(lines >= 3 and lines >= 0.05 * max(1, nonblank))


def stand_in_quality(text: str) -> int:
    words = len(text.split())
    if words < 20:
        return 0
    return max(0, min(10, round(2 + 5 * min(1.0, code_like_lines(text) / 8) + 3 * min(1.0, words / 250))))


def stand_in_answer(prompt: str) -> str:
    page = extract_page(prompt)
    if page is None:
        return "I can only answer the web judge and quality prompts."
    task, url, text = page
    if task == JUDGE_TASK:
        verdict = stand_in_verdict(text)
        return f"The page at {url} has {code_like_lines(text)} code-like lines.\nVerdict: [[{verdict}]]"
    return f"The page at {url} has {len(text.split())} words.\nRating: [[{stand_in_quality(text)}]]"


def _handler():
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
                self._reply(200, {"object": "list", "data": [{"id": STAND_IN_MODEL_NAME, "object": "model"}]})
            else:
                self._reply(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):  # noqa: N802
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._reply(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = "\n".join(str(m.get("content", "")) for m in payload["messages"])
            except (ValueError, KeyError, TypeError, AttributeError):
                self._reply(400, {"error": {"message": "bad request body", "type": "BadRequestError"}})
                return
            text = stand_in_answer(prompt)
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            self._reply(
                200,
                {
                    "id": f"standin-{time.time_ns()}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": payload.get("model", STAND_IN_MODEL_NAME),
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                    ],
                    "usage": usage,
                },
            )

    return StandInHandler


def start_server(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start the stand-in in a background thread; ``server.server_address`` has the bound port."""
    server = ThreadingHTTPServer((host, port), _handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve(host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), _handler())
    bound_host, bound_port = server.server_address[:2]
    print(f"stand-in web judge listening on http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
