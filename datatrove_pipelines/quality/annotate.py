"""Oracle annotation: a stratified, seeded sample of files rated with the rubric by an LLM (facts §1).

Pipeline (one datatrove pipeline, any executor)::

    JsonlReader(DOCS) -> StratifiedSample(N per language) -> RubricAnnotator (datatrove's InferenceRunner)

``RubricAnnotator`` is an ``InferenceRunner`` so it inherits concurrency, connection retries, the request cache and
chunked checkpoints (a re-run resumes where a killed task stopped). Backends:

* ``endpoint``: any OpenAI-compatible server (``vllm serve``, a hosted API, the stand-in oracle);
* ``vllm``: datatrove launches ``vllm serve`` on the task's node (GPU);
* ``transformers``: an in-process model for small local models (:class:`TransformersServer`), which also offers the
  ``expected`` rating mode: the rating is Σ p(r)·r over the model's probabilities of ``r]]`` after ``Rating: [[``.

Every sampled document is written exactly once: rated ones (integer ``metadata.rating``) to ``<output>/kept/``,
malformed answers (after ``parse_retries`` re-asks) and rejected requests to ``<output>/excluded/oracle/`` with the
reason in ``metadata.filter_reason``. Raw responses are kept in ``metadata.oracle``.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import inspect
import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.inference.run_inference import InferenceConfig, InferenceRunner
from datatrove.pipeline.inference.servers import EndpointServer, InferenceServer
from datatrove.pipeline.inference.types import InferenceError, InferenceResult
from datatrove.pipeline.readers.jsonl import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter

from datatrove_pipelines.code_readers import READ_STEP, FaultTolerantJsonlReader
from datatrove_pipelines.funnel import REASON_KEY, FunnelMixin, document_bytes
from datatrove_pipelines.languages import resolve_language
from datatrove_pipelines.openai_api import api_root, api_url
from datatrove_pipelines.quality.rubric import (
    DEFAULT_MAX_CONTENT_CHARS,
    EXPECTED_MODE_ANSWER_PREFIX,
    RUBRIC_VERSION,
    build_prompt,
    expected_rating,
    parse_rating,
    rating_candidates,
)
from datatrove_pipelines.stats import check_funnel, collect_funnel
from datatrove_pipelines.writers import exclusion_writer

BACKENDS = ("endpoint", "vllm", "transformers")
RATING_MODES = ("generate", "expected")
# Payload key understood only by the in-process transformers backend: answer with the rating distribution.
RATING_DISTRIBUTION_KEY = "x_rating_distribution"
ORACLE_STEP = "oracle"
SAMPLE_STEP = "sample"


def language_of(doc: Document) -> str:
    """The document's language name: the code-file pipeline's label, else its path's language, else ``unknown``."""
    declared = doc.metadata.get("language")
    return resolve_language(doc.metadata.get("path"), declared) or (str(declared) if declared else "unknown")


# ---------------------------------------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------------------------------------


def sample_priority(doc_id: str, seed: int) -> int:
    """A seeded pseudo-random key per document; the N smallest per language form the sample (bottom-k sampling).

    Bottom-k by hash is independent of input order and mergeable: each task's bottom-k contains its share of the
    global bottom-k, so re-runs and resumes see the same sample.
    """
    return int.from_bytes(hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest(), "big")


class StratifiedSample(FunnelMixin, PipelineStep):
    """Keeps ``per_language`` documents per language (per task: ``ceil(per_language / world_size)``), seeded.

    Holds the current sample in memory (``per_language`` documents per language) and yields it, ordered by language
    and priority, once the input is exhausted. Documents not sampled are counted (``not_sampled``) but not written:
    the sample is what is annotated, the rest stays in the corpus untouched.
    """

    name = "stratified sample"
    type = "🎲 - SAMPLER"
    funnel_step = SAMPLE_STEP

    def __init__(self, per_language: int, seed: int = 0):
        super().__init__()
        if per_language < 1:
            raise ValueError(f"per_language must be >= 1 (got {per_language})")
        self.per_language = per_language
        self.seed = seed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        quota = math.ceil(self.per_language / max(1, world_size))
        heaps: dict[str, list[tuple[int, str, Document]]] = defaultdict(list)
        for doc in data or []:
            self.funnel_in(doc)
            if not doc.text or not doc.text.strip():
                self.funnel_exclude(doc, "empty", None, rank)
                continue
            heap = heaps[language_of(doc)]
            entry = (-sample_priority(str(doc.id), self.seed), str(doc.id), doc)
            if len(heap) < quota:
                heapq.heappush(heap, entry)
                continue
            dropped = heapq.heappushpop(heap, entry) if entry[:2] > heap[0][:2] else entry
            self.funnel_exclude(dropped[2], "not_sampled", None, rank)
        for language in sorted(heaps):
            for _, _, doc in sorted(heaps[language], key=lambda item: (-item[0], item[1])):
                self.funnel_keep(doc)
                self.stat_update(f"sampled/{language}")
                yield doc


# ---------------------------------------------------------------------------------------------------------------------
# Inference backends
# ---------------------------------------------------------------------------------------------------------------------


class OpenAIEndpoint(EndpointServer):
    """datatrove's EndpointServer with one URL convention for local and remote servers.

    datatrove posts to ``<url>/v1/...`` for localhost but hands ``<url>`` to the OpenAI client (which wants the
    ``/v1`` part) otherwise, and probes readiness without the API key. Here ``--base-url`` may be given with or
    without ``/v1`` and readiness is probed on ``<root>/v1/models`` with the key.
    """

    def __init__(self, config: InferenceConfig, rank: int):
        self._root = api_root(config.endpoint_url or "")
        config.endpoint_url = self._root + "/v1"
        super().__init__(config, rank)

    def get_base_url(self) -> str:
        return self._root

    async def is_ready(self) -> bool:
        import httpx

        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        try:
            async with httpx.AsyncClient() as session:
                response = await session.get(f"{self._root}/v1/models", headers=headers, timeout=10.0)
                return response.status_code == 200
        except Exception:
            return False


class TransformersServer(InferenceServer):
    """An in-process "server" for small local models: answers chat payloads with transformers.

    Requests are served one at a time (a lock; torch already uses every core), in a worker thread so the runner's
    event loop keeps reading and writing documents. ``model_kwargs`` may set ``device`` and ``dtype``.
    """

    _requires_dependencies = []

    def __init__(self, config: InferenceConfig, rank: int):
        super().__init__(config, rank)
        self.model = None
        self.tokenizer = None
        self._lock: asyncio.Lock | None = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options = dict(self.config.model_kwargs or {})
        device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, options["dtype"]) if options.get("dtype") else None
        self.tokenizer = AutoTokenizer.from_pretrained(self.config.model_name_or_path)
        self.model = AutoModelForCausalLM.from_pretrained(self.config.model_name_or_path, dtype=dtype).to(device)
        self.model.eval()
        positions = getattr(self.model.config, "max_position_embeddings", None) or self.config.model_max_context
        self.max_context = min(self.config.model_max_context, positions)

    async def start_server(self) -> None:
        await asyncio.to_thread(self._load)
        return None

    async def monitor_health(self) -> None:
        await asyncio.Future()  # nothing to watch: the model lives in this process

    async def is_ready(self) -> bool:
        return self.model is not None

    async def _make_request(self, payload: dict) -> dict:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await asyncio.to_thread(self._respond, payload)

    def _prompt_text(self, payload: dict) -> str:
        if "messages" not in payload:
            return str(payload.get("prompt", ""))
        messages = payload["messages"]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(str(m.get("content", "")) for m in messages) + "\n\n"

    def _encode(self, text: str, payload: dict) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens="messages" not in payload)["input_ids"]
        if len(ids) >= self.max_context:
            raise InferenceError(
                None, f"BadRequestError: prompt has {len(ids)} tokens, the context is {self.max_context}", payload
            )
        return ids

    def _respond(self, payload: dict) -> dict:
        import torch

        text = self._prompt_text(payload)
        if payload.get(RATING_DISTRIBUTION_KEY):
            ids = self._encode(text + EXPECTED_MODE_ANSWER_PREFIX, payload)
            probabilities = rating_distribution(self.model, self.tokenizer, ids)
            content, finish_reason, completion_tokens = json.dumps({"rating_probabilities": probabilities}), "stop", 0
        else:
            ids = self._encode(text, payload)
            max_new = min(int(payload.get("max_tokens") or 512), self.max_context - len(ids))
            temperature = float(payload.get("temperature") or 0.0)
            generation = {"do_sample": temperature > 0, "max_new_tokens": max_new}
            if temperature > 0:
                generation["temperature"] = temperature
            input_ids = torch.tensor([ids], device=self.model.device)
            with torch.no_grad():
                output = self.model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                    **generation,
                )
            new_tokens = output[0, len(ids) :].tolist()
            eos = self.tokenizer.eos_token_id
            finish_reason = (
                "stop" if (eos is not None and eos in new_tokens) or len(new_tokens) < max_new else "length"
            )
            content = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
            completion_tokens = len(new_tokens)
        return {
            "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": len(ids),
                "completion_tokens": completion_tokens,
                "total_tokens": len(ids) + completion_tokens,
            },
        }


def rating_distribution(model, tokenizer, prefix_ids: list[int]) -> list[float]:
    """p(r) for r in 0..10: softmax over the log-probabilities of the continuations ``r]]`` after the prefix.

    Scoring whole continuations (not one token) is robust to how a tokenizer splits ``10``. The prefix is run once;
    the 11 continuations reuse its KV cache.
    """
    import torch

    candidates = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in rating_candidates()]
    width = max(len(c) for c in candidates)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device
    with torch.no_grad():
        prefix = torch.tensor([prefix_ids], device=device)
        out = model(input_ids=prefix, use_cache=True)
        first_logprobs = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        # transformers >= 5.2x calls the KV cache `cache`; earlier 5.x releases `past_key_values`
        new_name = "cache" in inspect.signature(model.forward).parameters
        cache = out.cache if new_name else out.past_key_values
        cache.batch_repeat_interleave(len(candidates))
        cont = torch.tensor([c + [pad] * (width - len(c)) for c in candidates], device=device)
        cont_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in candidates], device=device)
        mask = torch.cat(
            [torch.ones(len(candidates), len(prefix_ids), dtype=cont_mask.dtype, device=device), cont_mask], 1
        )
        positions = torch.arange(len(prefix_ids), len(prefix_ids) + width, device=device).expand(len(candidates), -1)
        cache_argument = {"cache" if new_name else "past_key_values": cache}
        out2 = model(input_ids=cont, attention_mask=mask, position_ids=positions, **cache_argument)
        step_logprobs = torch.log_softmax(out2.logits.float(), dim=-1)
    scores = []
    for index, tokens in enumerate(candidates):
        total = first_logprobs[tokens[0]].item()
        for position in range(1, len(tokens)):
            total += step_logprobs[index, position - 1, tokens[position]].item()
        scores.append(total)
    probabilities = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
    return [round(float(p), 6) for p in probabilities]


# ---------------------------------------------------------------------------------------------------------------------
# The annotator step
# ---------------------------------------------------------------------------------------------------------------------


class AnnotationWriter(JsonlWriter):
    """One writer (the InferenceRunner takes one) that routes rated documents to ``kept/`` and the rest to
    ``excluded/oracle/``, keeping datatrove's ``${chunk_index}`` files so checkpoints and resume work unchanged."""

    def __init__(self, output_dir: str):
        super().__init__(output_dir, output_filename="${route}/${rank}_chunk_${chunk_index}.jsonl.gz")

    routes = ("kept", f"excluded/{ORACLE_STEP}")

    def _get_output_filename(self, document: Document, rank: int | str = 0, **kwargs) -> str:
        route = self.routes[0] if document.metadata.get("rating") is not None else self.routes[1]
        return super()._get_output_filename(document, rank, route=route, **kwargs)

    def close_file(self, filename: str) -> None:
        """Close a finished chunk in *both* routes: the runner closes only the file of the chunk's last document,
        and a chunk file left open would be lost if the task is killed, while a resume skips finished chunks."""
        super().close_file(filename)
        route = next((r for r in self.routes if filename.startswith(r + "/")), None)
        if route is None:
            return
        for other in self.routes:
            sibling = other + filename[len(route) :]
            if other != route and sibling in self.output_mg.get_open_files():
                super().close_file(sibling)


@dataclass
class OracleConfig:
    """Which oracle to ask and how; the defaults suit a chat model behind vLLM."""

    backend: str = "endpoint"  # endpoint | vllm | transformers
    model: str = ""
    base_url: str | None = None  # endpoint only
    api_key: str | None = None  # endpoint only (read from an environment variable by the CLI)
    rating_mode: str = "generate"  # generate | expected (transformers only)
    max_tokens: int = 512
    temperature: float = 0.0
    retry_temperature: float = 0.7  # re-asks after a malformed answer sample, so they can differ
    parse_retries: int = 1
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    concurrency: int = 64
    model_max_context: int = 8192  # prompt (16K chars of file ~ 5K tokens) + answer
    tp: int = 1
    dp: int = 1
    device: str | None = None  # transformers only
    dtype: str | None = None  # transformers only, e.g. "bfloat16"
    request_timeout: float | None = 600.0
    server_log_folder: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.rating_mode not in RATING_MODES:
            raise ValueError(f"unknown rating mode {self.rating_mode!r}; choose one of {', '.join(RATING_MODES)}")
        if not self.model:
            raise ValueError("the oracle needs a model: pass --model (a served model name, a Hub id or a local path)")
        if self.backend == "endpoint" and not self.base_url:
            raise ValueError("the endpoint backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.rating_mode == "expected" and self.backend != "transformers":
            raise ValueError("--rating-mode expected reads token probabilities in-process: use --backend transformers")
        if self.parse_retries < 0:
            raise ValueError("parse_retries must be >= 0")

    def inference_config(self) -> InferenceConfig:
        model_kwargs: dict[str, Any] = {}
        if self.backend == "transformers":
            model_kwargs = {"device": self.device, "dtype": self.dtype}
        return InferenceConfig(
            # "transformers" is ours: RubricAnnotator._init_server builds the in-process server for it.
            server_type=self.backend,  # type: ignore[arg-type]
            model_name_or_path=self.model,
            model_max_context=self.model_max_context,
            use_chat=True,
            endpoint_url=self.base_url,
            api_key=self.api_key,
            tp=self.tp,
            dp=self.dp,
            max_concurrent_generations=self.concurrency,
            request_timeout=self.request_timeout,
            model_kwargs=model_kwargs or None,
            server_log_folder=self.server_log_folder,
            metric_interval=300,
        )


class RubricAnnotator(InferenceRunner):
    """Rates each document with the rubric through datatrove's InferenceRunner; see the module docstring."""

    name = "rubric oracle"

    def __init__(
        self,
        oracle: OracleConfig,
        output_dir: str,
        checkpoints_dir: str | None = None,
        records_per_chunk: int = 1000,
    ):
        self.oracle = oracle
        super().__init__(
            rollout_fn=self.rate_document,
            config=oracle.inference_config(),
            output_writer=AnnotationWriter(output_dir),
            checkpoints_local_dir=checkpoints_dir,
            records_per_chunk=records_per_chunk,
            metadata_key=ORACLE_STEP,
        )

    def _init_server(self, rank: int) -> InferenceServer:
        if self.oracle.backend == "transformers":
            return TransformersServer(self.config, rank)
        if self.oracle.backend == "endpoint":
            return OpenAIEndpoint(self.config, rank)
        return super()._init_server(rank)

    async def rate_document(self, document: Document, generate) -> dict:
        """One rollout: ask, parse, re-ask on a malformed answer; annotate ``document.metadata`` in place."""
        prompt = build_prompt(language_of(document), document.text, self.oracle.max_content_chars)
        messages = [{"role": "user", "content": prompt}]
        responses: list[dict] = []
        rating: int | None = None
        error: str | None = None
        extra: dict[str, Any] = {}
        for attempt in range(1 + (self.oracle.parse_retries if self.oracle.rating_mode == "generate" else 0)):
            payload: dict[str, Any] = {"messages": messages, "max_tokens": self.oracle.max_tokens}
            if self.oracle.rating_mode == "expected":
                payload[RATING_DISTRIBUTION_KEY] = True
            else:
                payload["temperature"] = self.oracle.temperature if attempt == 0 else self.oracle.retry_temperature
            try:
                result: InferenceResult = await generate(payload)
            except InferenceError as failure:
                if not self._is_bad_request_error(failure):
                    raise  # server trouble: fail the task, a re-run resumes from the checkpoints
                error = "request_rejected"
                responses.append({"error": str(failure.error)[:2000]})
                self.stat_update("rejected_requests", unit="request")
                break
            record = {"text": result.text, "finish_reason": result.finish_reason}
            if self.oracle.rating_mode == "expected":
                try:
                    probabilities = json.loads(result.text)["rating_probabilities"]
                    value = expected_rating(probabilities)
                except (ValueError, KeyError, TypeError):
                    error = "bad_distribution"
                else:
                    rating, error = int(math.floor(value + 0.5)), None
                    extra = {"rating_expected": round(value, 4), "rating_probabilities": probabilities}
                responses.append(record)
                break
            parsed = parse_rating(result.text, result.finish_reason)
            record.update(rating=parsed.rating, error=parsed.error, clamped=parsed.clamped)
            responses.append(record)
            if parsed.malformed:
                error = parsed.error
                self.stat_update("malformed_responses", unit="request")
                continue
            rating, error = parsed.rating, None
            if parsed.clamped:
                self.stat_update("clamped_ratings", unit="document")
            break

        document.metadata["rating"] = rating
        document.metadata.update(extra)
        document.metadata["rubric_version"] = RUBRIC_VERSION
        document.metadata["oracle_model"] = self.oracle.model
        if rating is None:
            document.metadata[REASON_KEY] = f"malformed:{error}" if error != "request_rejected" else error
            document.metadata["excluded_by"] = ORACLE_STEP
            self.stat_update("malformed_documents", unit="document")
        else:
            self.stat_update(f"rating/{rating}", unit="document")
        return {"responses": responses, "attempts": len(responses)}


@dataclass
class AnnotateConfig:
    """Everything ``annotate`` needs besides the executor."""

    input_dir: str
    output_dir: str
    oracle: OracleConfig
    per_language: int = 10_000
    seed: int = 0
    checkpoints_dir: str | None = None  # local folder; default <output>/checkpoints when the output is local
    records_per_chunk: int = 1000
    extra: dict = field(default_factory=dict)


def annotation_pipeline(config: AnnotateConfig) -> list[PipelineStep]:
    """The steps of ``annotate``: read, sample, rate."""
    checkpoints = config.checkpoints_dir
    if checkpoints is None and "://" not in config.output_dir:
        checkpoints = os.path.join(config.output_dir, "checkpoints")
    return [
        FaultTolerantJsonlReader(
            config.input_dir,
            exclusion_writer=exclusion_writer(config.output_dir, READ_STEP)
            if "://" not in config.output_dir
            else None,
        ),
        StratifiedSample(config.per_language, seed=config.seed),
        RubricAnnotator(config.oracle, config.output_dir, checkpoints, config.records_per_chunk),
    ]


def check_endpoint(base_url: str, api_key: str | None = None, attempts: int = 3, timeout: float = 10.0) -> None:
    """Fail fast, naming the URL, when no OpenAI-compatible server answers at ``base_url`` (nothing listening, a
    404, a wrong path): otherwise datatrove's runner retries for many minutes before giving up. A few attempts
    a couple of seconds apart let a server that is still starting come up; at most ~40 s in all."""
    import time

    import httpx

    url = api_url(base_url, "models")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    problem = ""
    for attempt in range(attempts):
        try:
            response = httpx.get(url, headers=headers, timeout=timeout)
            if response.status_code == 200:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code in (401, 403, 404):
                break  # will not change by waiting
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if attempt + 1 < attempts:
            time.sleep(2.0)
    raise SystemExit(f"error: no OpenAI-compatible server answers at {url} ({problem}); start it or fix --base-url")


def read_documents(folder: str) -> list[Document]:
    """All documents of a datatrove JSONL folder (small folders: annotations, samples)."""
    from datatrove.io import get_datafolder

    data_folder = get_datafolder(folder)
    if not data_folder.exists("") or not data_folder.list_files(recursive=True):
        return []
    return list(JsonlReader(folder, add_file_path=False).run())


def write_annotation_stats(output_dir: str, logging_dir: str) -> dict:
    """``<output>/stats.json`` for ``annotate``: the sample funnel from the logs, the oracle step from the outputs.

    The oracle step is counted from what was written (not from task stats) so that a resumed run, whose earlier
    attempt's stats were lost with the killed task, still accounts for every sampled document.
    """
    steps = {name: step for name, step in collect_funnel([logging_dir]).items() if name in (READ_STEP, SAMPLE_STEP)}
    oracle = {"docs_in": 0, "bytes_in": 0, "docs_kept": 0, "bytes_kept": 0, "docs_excluded": 0, "bytes_excluded": 0}
    reasons: dict[str, dict[str, int]] = {}
    ratings: dict[str, Counter] = defaultdict(Counter)
    for doc in read_documents(os.path.join(output_dir, "kept")):
        size = document_bytes(doc)
        oracle["docs_in"] += 1
        oracle["bytes_in"] += size
        oracle["docs_kept"] += 1
        oracle["bytes_kept"] += size
        ratings[language_of(doc)][int(doc.metadata["rating"])] += 1
    for doc in read_documents(os.path.join(output_dir, "excluded", ORACLE_STEP)):
        size = document_bytes(doc)
        oracle["docs_in"] += 1
        oracle["bytes_in"] += size
        oracle["docs_excluded"] += 1
        oracle["bytes_excluded"] += size
        bucket = reasons.setdefault(str(doc.metadata.get(REASON_KEY, "unknown")), {"docs": 0, "bytes": 0})
        bucket["docs"] += 1
        bucket["bytes"] += size
    steps[ORACLE_STEP] = {**oracle, "reasons": reasons, "notes": {}}
    ordered = list(steps.values())
    stats = {
        "steps": steps,
        "total": {
            "docs_in": ordered[0]["docs_in"],
            "bytes_in": ordered[0]["bytes_in"],
            "docs_kept": ordered[-1]["docs_kept"],
            "bytes_kept": ordered[-1]["bytes_kept"],
            "docs_excluded": sum(s["docs_excluded"] for s in ordered),
            "bytes_excluded": sum(s["bytes_excluded"] for s in ordered),
            # not sampled: left in the corpus unrated, neither kept here nor excluded
            "docs_not_sampled": sum(s.get("docs_set_aside", 0) for s in ordered),
            "bytes_not_sampled": sum(s.get("bytes_set_aside", 0) for s in ordered),
        },
        "ratings": {language: dict(sorted(counts.items())) for language, counts in sorted(ratings.items())},
        "malformed": sum(b["docs"] for r, b in reasons.items() if r.startswith("malformed:")),
    }
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "stats.json"), "w") as handle:
        json.dump(stats, handle, indent=2)
    check_funnel(steps)
    return stats


def describe(config: AnnotateConfig) -> dict:
    """A JSON-able record of the run's settings (written next to the annotations), without secrets."""
    record = asdict(config)
    record["oracle"]["api_key"] = "***" if config.oracle.api_key else None
    record["rubric_version"] = RUBRIC_VERSION
    return record


__all__ = [
    "AnnotateConfig",
    "OracleConfig",
    "RubricAnnotator",
    "StratifiedSample",
    "TransformersServer",
    "annotation_pipeline",
    "rating_distribution",
    "write_annotation_stats",
]
