"""Models the runner can evaluate, as lighteval models: transformers, vLLM (Python API or its OpenAI-compatible
server), and two harness self-checks that need no model at all (reference solutions, and given samples).

All of them choose the prompt format per document: ``doc.specific["mode"]`` is ``instruct`` for chat requests and
``base`` for raw completion (always base for FIM and needle prompts, whatever the run's mode).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lighteval.models.abstract_model import LightevalModel, ModelConfig
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc

from datatrove_pipelines.openai_api import api_url
from eval.lighteval_adapter import (
    NoCache,
    chat_messages,
    enable_sampling,
    is_chat,
    per_document_prompts,
    preserved_grad_mode,
)

logger = logging.getLogger(__name__)


def truncate_at_stop(text: str, stops: list[str] | tuple[str, ...] | None) -> str:
    for stop in stops or ():
        if stop and stop in text:
            text = text[: text.index(stop)]
    return text


class _NoModel(LightevalModel):
    """Shared base of the self-check models: no tokenizer, no loglikelihoods."""

    def __init__(self, name: str):
        self.config = ModelConfig(model_name=name)
        self._cache = NoCache()

    @property
    def tokenizer(self):
        return None

    @property
    def add_special_tokens(self) -> bool:
        return False

    @property
    def max_length(self) -> int:
        return 1 << 20

    def loglikelihood(self, docs: list[Doc]) -> list[ModelResponse]:
        raise NotImplementedError("the code tasks are generative only")

    def loglikelihood_rolling(self, docs: list[Doc]) -> list[ModelResponse]:
        raise NotImplementedError("the code tasks are generative only")


class ReferenceModel(_NoModel):
    """Answers every document with its reference completion: the harness must then score 100%."""

    def __init__(self):
        super().__init__("reference")

    def greedy_until(self, docs: list[Doc]) -> list[ModelResponse]:
        return [ModelResponse(text=[doc.choices[0]] * max(doc.num_samples, 1)) for doc in docs]


class SamplesModel(_NoModel):
    """Answers from a samples file (:mod:`eval.samples`: ``completion`` or EvalPlus-style ``solution`` lines).

    The file is parsed and checked when the model is made; a document without any sample is an error (never an
    empty completion that silently scores 0). Documents answered from ``solution`` lines are marked
    ``specific["given"] = "solution"`` so that the scorer assembles them as complete programs.
    """

    def __init__(self, path: str | Path):
        from eval.samples import read_samples

        super().__init__(f"samples:{Path(path).name}")
        self.samples = read_samples(path)
        self.asked: set[str] = set()  # the ids the tasks asked for, so that unused samples can be reported

    def unused_ids(self) -> set[str]:
        """Ids in the file that no task has asked for (so far)."""
        return self.samples.ids() - self.asked

    def greedy_until(self, docs: list[Doc]) -> list[ModelResponse]:
        from eval.samples import check_ids

        wanted = {str(doc.specific["task_id"]) for doc in docs}
        self.asked |= wanted
        check_ids(self.samples, known=self.samples.ids() | wanted, selected=wanted)
        responses = []
        for doc in docs:
            if self.samples.kind == "solution":
                doc.specific["given"] = "solution"
            responses.append(ModelResponse(text=list(self.samples.texts[str(doc.specific["task_id"])])))
        return responses


class OpenAICompatibleModel(_NoModel):
    """Talks to a vLLM (or any OpenAI-compatible) server: /v1/completions for base prompts, /v1/chat/completions
    for instruct ones; ``n`` samples per request, requests in parallel."""

    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float = 0.0,
        top_p: float = 1.0,
        concurrency: int = 16,
        timeout_s: float = 600.0,
        max_length: int = 32768,
    ):
        super().__init__(model)
        self.base_url = api_url(base_url)  # with or without /v1, as every client here (datatrove_pipelines.openai_api)
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._max_length = max_length

    @property
    def max_length(self) -> int:
        return self._max_length

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            api_url(self.base_url, route), data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"{api_url(self.base_url, route)}: HTTP {error.code}: {error.read()[:500]!r}"
            ) from error

    def _generate(self, doc: Doc) -> ModelResponse:
        common = {
            "model": self.model,
            "max_tokens": doc.generation_size or 512,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "n": max(doc.num_samples, 1),
        }
        stops = list(doc.stop_sequences or [])
        if is_chat(doc):
            messages = chat_messages(doc)
            reply = self._post("chat/completions", {**common, "messages": messages})
            texts = [choice["message"]["content"] or "" for choice in reply["choices"]]
        else:
            reply = self._post("completions", {**common, "prompt": doc.query, **({"stop": stops} if stops else {})})
            texts = [truncate_at_stop(choice["text"], stops) for choice in reply["choices"]]
        return ModelResponse(text=texts)

    def greedy_until(self, docs: list[Doc]) -> list[ModelResponse]:
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(self._generate, docs))


def transformers_model(
    model_path: str,
    mode: str,
    temperature: float,
    top_p: float,
    batch_size: int,
    dtype: str | None = None,
) -> LightevalModel:
    """lighteval's own TransformersModel, with per-document prompt format and no disk cache."""
    with preserved_grad_mode():  # the module turns autograd off process-wide at import
        from lighteval.models.model_input import GenerationParameters
        from lighteval.models.transformers.transformers_model import TransformersModel, TransformersModelConfig

    config = TransformersModelConfig(
        model_name=model_path,
        batch_size=batch_size,
        dtype=dtype,
        generation_parameters=GenerationParameters(temperature=temperature, top_p=top_p),
        override_chat_template=mode == "instruct",
    )
    model = TransformersModel(config)
    if temperature > 0:
        enable_sampling(model)
    return per_document_prompts(model, mode)


def vllm_model(
    model_path: str, mode: str, temperature: float, top_p: float, max_model_length: int | None
) -> LightevalModel:
    """lighteval's VLLMModel (vLLM's Python API; needs vLLM installed, normally in its own environment on a GPU)."""
    try:
        import vllm  # noqa: F401
    except ImportError as error:
        raise SystemExit(
            "vLLM is not installed in this environment. Either install it (GPU; its own environment) or start "
            "`vllm serve MODEL` elsewhere and pass --backend vllm --base-url http://HOST:PORT"
        ) from error
    with preserved_grad_mode():  # lighteval's model modules may turn autograd off at import
        from lighteval.models.model_input import GenerationParameters
        from lighteval.models.vllm.vllm_model import VLLMModel, VLLMModelConfig

    config = VLLMModelConfig(
        model_name=model_path,
        max_model_length=max_model_length,
        generation_parameters=GenerationParameters(temperature=temperature, top_p=top_p),
        override_chat_template=mode == "instruct",
    )
    return per_document_prompts(VLLMModel(config), mode)
