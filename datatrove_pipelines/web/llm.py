"""The two LLM questions about web pages, asked through the quality stage's annotation backends.

* the recall **judge**: is this page code-related? (``[[1]]`` yes, ``[[0]]`` no) — gold labels for the recall
  classifier and the confirmations of its confident recalls (``train-recall``);
* the **quality score** 0–10 of a code-related page (``run``); thresholds per website category come after.

Both go through :class:`PageRater`, a ``RubricAnnotator`` (datatrove's ``InferenceRunner``) with a web prompt:
the backends (OpenAI-compatible endpoint, vLLM, in-process transformers), the answer parsing (the last ``[[X]]``,
re-asked once when malformed), the request cache and resumable checkpoints are the quality stage's, unchanged.
Rated pages land in ``<dir>/kept/``, pages without an answer in ``<dir>/excluded/oracle/`` with the reason.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.inference.types import InferenceError

from datatrove_pipelines.funnel import REASON_KEY
from datatrove_pipelines.quality.annotate import RATING_DISTRIBUTION_KEY, OracleConfig, RubricAnnotator
from datatrove_pipelines.quality.rubric import (
    expected_rating,
    extract_fenced,
    fence_for,
    parse_rating,
    truncate_content,
)

WEB_RUBRIC_VERSION = "seed-coder-web-v1"
JUDGE_TASK = "code-relatedness"
QUALITY_TASK = "web-quality"
TASKS = (JUDGE_TASK, QUALITY_TASK)
DEFAULT_MAX_PAGE_CHARS = 12_000

_JUDGE_INSTRUCTIONS = """\
You are labelling web pages for the training corpus of a code language model.
A page is code-related when its main content is about programming: it shows source code, shell commands or \
configuration, or it explains programming languages, software libraries, APIs, developer tools or computer science. \
Pages that merely mention software (news, shops, legal texts, licences) are not code-related."""

_QUALITY_INSTRUCTIONS = """\
You are rating web pages as training data for a code language model, from 0 to 10.
0: no useful content (navigation, spam, product listings, auto-generated pages, colour swatches).
1-4: thin or low-value content about code (fragments, unanswered questions, boilerplate documentation).
5-7: useful explanations or examples, partly complete.
8-10: clear, correct, self-contained explanations with working code a programmer would learn from."""

_JUDGE_ANSWER = "Explain briefly, then answer on the last line exactly: Verdict: [[1]] if the page is code-related, Verdict: [[0]] otherwise."
_QUALITY_ANSWER = "Explain briefly, then give the rating on the last line exactly in this form: Rating: [[X]] where X is an integer from 0 to 10."
_PROMPT_PAGE = re.compile(r"\nTask: (?P<task>[\w-]+)\nURL: (?P<url>[^\n]*)\n(?:[^\n]*\n)?Page:\n(?P<fence>`{3,})\n")


def build_page_prompt(task: str, url: str | None, text: str, max_chars: int = DEFAULT_MAX_PAGE_CHARS) -> str:
    """The prompt of ``task`` for one page (the page fenced; cut at a line break past ``max_chars``)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    shown, truncated = truncate_content(text, max_chars)
    fence = fence_for(shown)
    note = "The page is long: only its beginning is shown.\n" if truncated else ""
    body = shown if shown.endswith("\n") else shown + "\n"
    instructions, answer = (
        (_JUDGE_INSTRUCTIONS, _JUDGE_ANSWER)
        if task == JUDGE_TASK
        else (
            _QUALITY_INSTRUCTIONS,
            _QUALITY_ANSWER,
        )
    )
    return f"{instructions}\n\nTask: {task}\nURL: {url or 'unknown'}\n{note}Page:\n{fence}\n{body}{fence}\n\n{answer}"


def extract_page(prompt: str) -> tuple[str, str, str] | None:
    """(task, url, page text) back from a prompt; used by the stand-in, None when it is not one of ours."""
    found = extract_fenced(_PROMPT_PAGE, prompt)
    if found is None:
        return None
    match, text = found
    return match.group("task"), match.group("url"), text


class PageRater(RubricAnnotator):
    """Asks ``task`` about each page; the answer goes to ``metadata.rating`` (0/1 for the judge, 0–10 for quality)
    and ``metadata.<task>`` keeps the raw responses. See the module docstring."""

    name = "web page LLM"

    def __init__(
        self,
        task: str,
        oracle: OracleConfig,
        output_dir: str,
        checkpoints_dir: str | None = None,
        records_per_chunk: int = 1000,
        max_page_chars: int = DEFAULT_MAX_PAGE_CHARS,
    ):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.task = task
        self.max_page_chars = max_page_chars
        super().__init__(oracle, output_dir, checkpoints_dir, records_per_chunk)
        self.metadata_key = task

    async def rate_document(self, document: Document, generate) -> dict:
        prompt = build_page_prompt(self.task, document.metadata.get("url"), document.text, self.max_page_chars)
        messages = [{"role": "user", "content": prompt}]
        responses: list[dict[str, Any]] = []
        rating: int | None = None
        error: str | None = None
        expected = self.oracle.rating_mode == "expected"
        for attempt in range(1 + (0 if expected else self.oracle.parse_retries)):
            payload: dict[str, Any] = {"messages": messages, "max_tokens": self.oracle.max_tokens}
            if expected:
                payload[RATING_DISTRIBUTION_KEY] = True
            else:
                payload["temperature"] = self.oracle.temperature if attempt == 0 else self.oracle.retry_temperature
            try:
                result = await generate(payload)
            except InferenceError as failure:
                if not self._is_bad_request_error(failure):
                    raise  # server trouble: fail the task, a re-run resumes from the checkpoints
                error = "request_rejected"
                responses.append({"error": str(failure.error)[:2000]})
                break
            if expected:
                try:
                    value = expected_rating(json.loads(result.text)["rating_probabilities"])
                except (ValueError, KeyError, TypeError):
                    error = "bad_distribution"
                else:
                    rating, error = int(math.floor(value + 0.5)), None
                    document.metadata["rating_expected"] = round(value, 4)
                responses.append({"text": result.text})
                break
            parsed = parse_rating(result.text, result.finish_reason)
            responses.append({"text": result.text, "finish_reason": result.finish_reason, "rating": parsed.rating})
            if parsed.malformed:
                error = parsed.error
                continue
            rating, error = parsed.rating, None
            break
        if self.task == JUDGE_TASK and rating is not None:
            rating = 1 if rating >= 1 else 0
        document.metadata["rating"] = rating
        document.metadata["rubric_version"] = WEB_RUBRIC_VERSION
        document.metadata["oracle_model"] = self.oracle.model
        if rating is None:
            document.metadata[REASON_KEY] = f"malformed:{error}" if error != "request_rejected" else error
            self.stat_update("unanswered", unit="document")
        else:
            self.stat_update(f"{self.task}/{rating}", unit="document")
        return {"responses": responses, "attempts": len(responses)}
