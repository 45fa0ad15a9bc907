"""Model specs as data: ``recipes/<model>/model.yaml`` -> transformers' ``LlamaConfig`` (and counts for MFU).

Why: the same spec feeds the transformers trainer, the generated nanotron configs and the checkpoint converter, so
the 8B shape is written down once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from datatrove_pipelines.yaml_files import YamlFileError, read_yaml
from recipes.pretrain_config import RecipeError, checked_mapping


@dataclass
class ModelSpec:
    """A Llama-3-structure decoder (the only architecture Seed-Coder uses)."""

    num_hidden_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float = 500000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    initializer_range: float = 0.02
    bos_token_id: int = 0
    pad_token_id: int = 1
    eos_token_id: int = 2
    architecture: str = "llama"

    def __post_init__(self):
        if self.architecture != "llama":
            raise ValueError(f"unsupported architecture {self.architecture!r} (only 'llama')")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_llama_config(self, **overrides):
        from transformers import LlamaConfig

        values = {k: v for k, v in asdict(self).items() if k != "architecture"}
        values.update(overrides)
        return LlamaConfig(**values)

    def num_parameters(self) -> int:
        """Closed form (embeddings, attention with GQA, SwiGLU MLP, two RMSNorms per layer, final norm, head)."""
        h, kv = self.hidden_size, self.num_key_value_heads * self.head_dim
        attention = h * h * 2 + h * kv * 2
        mlp = 3 * h * self.intermediate_size
        per_layer = attention + mlp + 2 * h
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_hidden_layers * per_layer + embeddings + h

    def training_flops_per_token(self, sequence_length: int) -> float:
        """6·N (non-embedding matmuls + head) plus causal attention 6·L·h·T (PaLM's MFU accounting, causal half)."""
        matmul_params = self.num_parameters() - self.vocab_size * self.hidden_size * (
            0 if self.tie_word_embeddings else 1
        )
        attention = 6 * self.num_hidden_layers * self.hidden_size * sequence_length
        return 6.0 * matmul_params + attention


def load_model_spec(path: str | Path) -> ModelSpec:
    """Read a ``model.yaml``; unknown keys are errors (a typo must not silently fall back to a default)."""
    try:
        data = read_yaml(path)
    except YamlFileError as error:
        raise RecipeError(str(error)) from None
    return ModelSpec(**checked_mapping(ModelSpec, data, str(path)))


def count_parameters_on_meta(spec: ModelSpec) -> int:
    """Build the transformers model on the meta device (no memory) and count its parameters."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(spec.to_llama_config())
    return sum(p.numel() for p in model.parameters())
