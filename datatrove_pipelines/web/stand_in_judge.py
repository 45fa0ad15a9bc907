"""A STAND-IN for the web LLM: an OpenAI-compatible HTTP server whose "model" is a documented heuristic.

Why it exists: the real judge and scorer (a chat LLM behind vLLM or a hosted API) cannot run on a laptop or in CI,
but ``train-recall`` and ``run`` should still talk real HTTP to a server as they would to ``vllm serve``. It answers
``GET /v1/models`` and ``POST /v1/chat/completions`` for the two prompts of :mod:`datatrove_pipelines.web.llm`
(the server part: :mod:`datatrove_pipelines.stand_in_server`).

The stand-in rules (simple on purpose, so a test can predict them):

* judge: code-related (``[[1]]``) when at least 3 lines of the page, and at least 5% of its non-blank lines, look
  like code (:func:`code_like_lines`: statements, calls, assignments, brackets, prompts, indented blocks);
* quality: 0 under 20 words; else ``round(2 + 5·min(1, code lines / 8) + 3·min(1, words / 250))``.

    python -m datatrove_pipelines.web stand-in-judge --port 8000
"""

from __future__ import annotations

import re
from http.server import ThreadingHTTPServer

from datatrove_pipelines import stand_in_server
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
    return stand_in_server.make_handler(STAND_IN_MODEL_NAME, stand_in_answer)


def start_server(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Start the stand-in in a background thread; ``server.server_address`` has the bound port."""
    return stand_in_server.start_server(_handler(), host, port)


def serve(host: str, port: int) -> None:
    stand_in_server.serve_forever(_handler(), host, port, "stand-in web judge", "/v1")
