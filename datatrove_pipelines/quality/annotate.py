"""Oracle annotation: a stratified, seeded sample of files rated with the rubric by an LLM (facts §1).

The sample is :mod:`~datatrove_pipelines.quality.sampling`'s, the backends are
:mod:`~datatrove_pipelines.quality.oracle_backends`'; this module is the annotator step, its settings and its
``stats.json``. Their public names stay importable from here.

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

import json
import math
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.inference.run_inference import InferenceConfig, InferenceRunner
from datatrove.pipeline.inference.servers import InferenceServer
from datatrove.pipeline.inference.types import InferenceError, InferenceResult
from datatrove.pipeline.readers.jsonl import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter

from datatrove_pipelines.code_readers import READ_STEP, FaultTolerantJsonlReader
from datatrove_pipelines.config_flags import add_dataclass_flags, dataclass_from_args
from datatrove_pipelines.funnel import REASON_KEY, document_bytes
from datatrove_pipelines.quality.oracle_backends import (
    BACKENDS,
    RATING_DISTRIBUTION_KEY,
    OpenAIEndpoint,
    TransformersServer,
    check_endpoint,
    rating_distribution,
)
from datatrove_pipelines.quality.rubric import (
    DEFAULT_MAX_CONTENT_CHARS,
    RUBRIC_VERSION,
    build_prompt,
    expected_rating,
    parse_rating,
)
from datatrove_pipelines.quality.sampling import SAMPLE_STEP, StratifiedSample, language_of, sample_priority
from datatrove_pipelines.stats import check_funnel, collect_funnel
from datatrove_pipelines.writers import exclusion_writer

RATING_MODES = ("generate", "expected")
ORACLE_STEP = "oracle"


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

    backend: str = field(
        default="endpoint", metadata={"choices": BACKENDS, "help": "default: endpoint with --base-url"}
    )
    model: str = field(
        default="",
        metadata={"required": True, "help": "served model name, or Hub id / local path (vllm, transformers)"},
    )
    base_url: str | None = field(
        default=None, metadata={"help": "endpoint: OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"}
    )
    # endpoint only; the CLI reads it from the environment variable named by --api-key-env
    api_key: str | None = field(default=None, metadata={"cli": False})
    rating_mode: str = field(
        default="generate", metadata={"choices": RATING_MODES, "help": "expected: transformers backend only"}
    )
    max_tokens: int = field(default=512, metadata={"help": "answer length limit"})
    temperature: float = 0.0
    # re-asks after a malformed answer sample, so they can differ
    retry_temperature: float = field(default=0.7, metadata={"cli": False})
    parse_retries: int = field(default=1, metadata={"help": "re-asks on malformed answers"})
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    concurrency: int = field(default=64, metadata={"help": "requests in flight per task"})
    # prompt (16K chars of file ~ 5K tokens) + answer
    model_max_context: int = 8192
    tp: int = field(default=1, metadata={"help": "vllm: tensor parallel size"})
    dp: int = field(default=1, metadata={"help": "vllm: data parallel size"})
    device: str | None = field(
        default=None, metadata={"help": "transformers: cpu, cuda, ... (default: cuda if available)"}
    )
    dtype: str | None = field(default=None, metadata={"help": "transformers: e.g. bfloat16"})
    request_timeout: float | None = field(default=600.0, metadata={"cli": False})
    server_log_folder: str | None = field(default=None, metadata={"cli": False})  # the CLI: <output>/logs/server

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


def add_oracle_arguments(parser, defaults: dict[str, Any] | None = None) -> None:
    """The oracle's flags (from ``OracleConfig``) plus ``--api-key-env``, for every command that talks to the LLM
    (quality annotate, the web stage's judge and quality scorer)."""
    add_dataclass_flags(parser, OracleConfig, defaults=defaults)
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")


def oracle_from_args(args, **values: Any) -> OracleConfig:
    """``OracleConfig`` from the flags of :func:`add_oracle_arguments`; the API key is read from the environment."""
    api_key = (os.environ.get(args.api_key_env) or None) if args.api_key_env else None
    return dataclass_from_args(OracleConfig, args, api_key=api_key, **values)


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

    input_dir: str = field(metadata={"flag": "input", "help": "documents (a code-file pipeline output or its kept/)"})
    output_dir: str = field(metadata={"flag": "output", "help": "writes kept/ (rated), excluded/oracle/, stats.json"})
    oracle: OracleConfig = field(metadata={"cli": False})
    per_language: int = field(default=10_000, metadata={"help": "files sampled per language (seeded)"})
    seed: int = 0
    checkpoints_dir: str | None = field(
        default=None, metadata={"help": "local folder (default <output>/checkpoints when the output is local)"}
    )
    records_per_chunk: int = field(default=1000, metadata={"help": "checkpoint granularity"})
    extra: dict = field(default_factory=dict, metadata={"cli": False})


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
    "BACKENDS",
    "ORACLE_STEP",
    "RATING_DISTRIBUTION_KEY",
    "RATING_MODES",
    "SAMPLE_STEP",
    "AnnotateConfig",
    "AnnotationWriter",
    "OpenAIEndpoint",
    "OracleConfig",
    "RubricAnnotator",
    "StratifiedSample",
    "TransformersServer",
    "annotation_pipeline",
    "check_endpoint",
    "describe",
    "language_of",
    "rating_distribution",
    "read_documents",
    "sample_priority",
    "write_annotation_stats",
]
