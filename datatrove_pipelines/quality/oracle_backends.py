"""Where the oracle's answers come from: datatrove's inference servers, plus the two this stage adds.

* ``endpoint``: any OpenAI-compatible server, through :class:`OpenAIEndpoint` (one ``/v1`` convention, readiness
  probed with the key); :func:`check_endpoint` fails fast when nothing answers;
* ``vllm``: datatrove's own ``VLLMServer`` (``vllm serve`` on the task's node);
* ``transformers``: :class:`TransformersServer`, an in-process model for small local models, which also answers
  with the rating distribution (:func:`rating_distribution`) for the ``expected`` rating mode.
"""

from __future__ import annotations

import asyncio
import inspect
import json

from datatrove.pipeline.inference.run_inference import InferenceConfig
from datatrove.pipeline.inference.servers import EndpointServer, InferenceServer
from datatrove.pipeline.inference.types import InferenceError

from datatrove_pipelines.openai_api import api_root, api_url
from datatrove_pipelines.quality.rubric import EXPECTED_MODE_ANSWER_PREFIX, rating_candidates

BACKENDS = ("endpoint", "vllm", "transformers")
# Payload key understood only by the in-process transformers backend: answer with the rating distribution.
RATING_DISTRIBUTION_KEY = "x_rating_distribution"


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
