"""The model that writes data: an OpenAI-compatible chat endpoint (vLLM, TGI, any API) or local transformers.

Both take chat messages and return ``n`` sampled answers per conversation. The endpoint is spoken to with the
standard library (``POST {base_url}/chat/completions``), so a vLLM server in its own venv works as well as a hosted API.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from datatrove_pipelines.openai_api import api_url

Messages = list[dict[str, str]]


@dataclass
class GeneratorConfig:
    """``model``: the served model's name (endpoint) or a local path / Hub id (transformers).
    ``base_url`` set: the OpenAI-compatible endpoint (e.g. ``http://127.0.0.1:8000/v1``); else local transformers."""

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding the key (never the key itself in a config)
    temperature: float = 0.6  # Seed-Coder's inference defaults (facts §7)
    top_p: float = 0.8
    max_new_tokens: int = 1024
    request_timeout_s: float = 300.0
    retries: int = 2
    seed: int | None = None


class GenerationError(RuntimeError):
    """The generator could not answer (network, server error, malformed reply)."""


class EndpointGenerator:
    """Chat completions from an OpenAI-compatible server."""

    def __init__(self, config: GeneratorConfig):
        self.config = config

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        url = api_url(self.config.base_url, "chat/completions")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        last: Exception | None = None
        for attempt in range(self.config.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.config.request_timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except (urllib.error.URLError, OSError, ValueError) as error:
                last = error
                time.sleep(min(2**attempt * 0.2, 5.0))
        raise GenerationError(f"{url}: {last}")

    def generate(self, conversations: list[Messages], n: int = 1) -> list[list[str]]:
        answers = []
        for messages in conversations:
            payload: dict[str, Any] = {
                "model": self.config.model,
                "messages": messages,
                "n": n,
                "temperature": self.config.temperature,
                "top_p": self.config.top_p,
                "max_tokens": self.config.max_new_tokens,
            }
            if self.config.seed is not None:
                payload["seed"] = self.config.seed
            reply = self._post(payload)
            try:
                texts = [choice["message"]["content"] or "" for choice in reply["choices"]]
            except (KeyError, TypeError) as error:
                raise GenerationError(f"malformed reply: {str(reply)[:200]}") from error
            answers.append(texts[:n] + [""] * (n - len(texts)))
        return answers


class TransformersGenerator:
    """Sampling from a local model with its chat template (the tiny recipes' policy; small runs without a server)."""

    def __init__(self, config: GeneratorConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(config.model)
        self.tokenizer.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(config.model, dtype=torch.float32)
        self.model.eval()

    def generate(self, conversations: list[Messages], n: int = 1) -> list[list[str]]:
        import torch

        if self.config.seed is not None:
            torch.manual_seed(self.config.seed)
        answers = []
        for messages in conversations:
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            inputs = self.tokenizer([prompt] * n, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                output = self.model.generate(
                    **inputs,
                    do_sample=True,
                    temperature=self.config.temperature,
                    top_p=self.config.top_p,
                    max_new_tokens=self.config.max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = output[:, inputs["input_ids"].shape[1] :]
            answers.append(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return answers


def build_generator(config: GeneratorConfig) -> EndpointGenerator | TransformersGenerator:
    return EndpointGenerator(config) if config.base_url else TransformersGenerator(config)
