"""Pretraining recipes as data: typed stages parsed from ``recipes/<model>/pretrain.yaml`` (TrlParser: YAML + CLI).

A recipe is one YAML read by ``TrlParser`` into two dataclasses: ``PretrainArguments`` (model spec, tokenizer, the
stages) and transformers' ``TrainingArguments`` (optimizer, batch size, logging, checkpoints, Hub). Every key can be
overridden on the command line (``--learning_rate 1e-3``; ``--stages '<json list>'`` replaces the stages).

A stage names its shard folders with weights, a sequence length, a token budget and its learning-rate schedule.
The schedule is transformers' warmup-stable-decay (WSD) scheduler: ``warmup_steps`` of linear warm-up, a constant
phase, then ``decay_steps`` (or ``decay_fraction`` of the stage) of linear / cosine / 1-sqrt decay to
``min_lr_ratio``. A stage's peak LR is ``learning_rate`` (TrainingArguments) × ``lr_multiplier``, so the paper's
"lowered by √10" is ``lr_multiplier: 0.31622776601683794``.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DECAY_TYPES = ("linear", "cosine", "1-sqrt")


class RecipeError(ValueError):
    """A recipe that cannot run as written (reported as one line before anything trains)."""


@dataclass
class SourceSpec:
    """One datatrove ``.ds`` folder (one curated source) and its sampling weight within the stage."""

    path: str
    weight: float = 1.0
    name: str | None = None

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and self.weight > 0 and math.isfinite(self.weight)):
            raise RecipeError(f"source {self.path}: weight must be a positive number, got {self.weight!r}")
        if self.name is None:
            self.name = Path(self.path).name


@dataclass
class StageSpec:
    """One pretraining stage: data mixture, context length, token budget, LR schedule."""

    name: str
    sources: list[SourceSpec]
    sequence_length: int
    tokens: int
    lr_multiplier: float = 1.0
    warmup_steps: int = 0
    decay_steps: int | None = None
    decay_fraction: float = 0.0
    decay_type: str = "linear"
    min_lr_ratio: float = 0.0
    per_device_train_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    save_steps: int | None = None

    def __post_init__(self):
        if not self.name or "/" in self.name:
            raise RecipeError(f"stage name {self.name!r} must be a non-empty folder name")
        if not self.sources:
            raise RecipeError(f"stage {self.name}: no sources")
        if self.sequence_length <= 0 or self.tokens <= 0:
            raise RecipeError(f"stage {self.name}: sequence_length and tokens must be positive")
        if self.decay_type not in DECAY_TYPES:
            raise RecipeError(f"stage {self.name}: decay_type must be one of {DECAY_TYPES}, got {self.decay_type!r}")
        if not 0.0 <= self.decay_fraction <= 1.0 or not 0.0 <= self.min_lr_ratio <= 1.0:
            raise RecipeError(f"stage {self.name}: decay_fraction and min_lr_ratio lie in [0, 1]")
        if self.lr_multiplier <= 0:
            raise RecipeError(f"stage {self.name}: lr_multiplier must be positive")

    def num_decay_steps(self, max_steps: int) -> int:
        steps = self.decay_steps if self.decay_steps is not None else round(self.decay_fraction * max_steps)
        return max(0, min(steps, max_steps - min(self.warmup_steps, max_steps)))


def checked_mapping(cls, data: Any, where: str) -> dict[str, Any]:
    """``data`` when it is a mapping with every required field of the dataclass ``cls`` and no other key; else a
    :class:`RecipeError` naming the keys (a typo must not silently fall back to a default)."""
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    missing = sorted(
        f.name for f in fields(cls) if f.name not in data and f.default is MISSING and f.default_factory is MISSING
    )
    if missing:
        raise RecipeError(f"{where}: missing keys {missing}")
    return data


def parse_stages(raw: Any, base_dir: str | Path | None = None) -> list[StageSpec]:
    """YAML stages (a list of mappings, or its JSON text from the command line) -> typed ``StageSpec``s; relative
    shard paths resolve against ``base_dir`` when given."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise RecipeError(f"--stages must be a JSON list of stages: {error}") from None
    if not isinstance(raw, list) or not raw:
        raise RecipeError("stages: a non-empty list of stages is required")
    stages = []
    for position, item in enumerate(raw):
        where = f"stages[{position}]"
        data = dict(checked_mapping(StageSpec, item, where))
        sources = data.get("sources")
        if not isinstance(sources, list):
            raise RecipeError(f"{where}.sources: a list of {{path, weight}}")
        parsed_sources = []
        for index, source in enumerate(sources):
            source = dict(checked_mapping(SourceSpec, source, f"{where}.sources[{index}]"))
            if base_dir is not None and not Path(source["path"]).is_absolute() and "://" not in source["path"]:
                source["path"] = str(Path(base_dir) / source["path"])
            parsed_sources.append(SourceSpec(**source))
        data["sources"] = parsed_sources
        try:
            stages.append(StageSpec(**data))
        except TypeError as error:
            raise RecipeError(f"{where}: {error}") from None
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise RecipeError(f"stage names must be unique, got {names}")
    return stages


@dataclass
class PretrainArguments:
    """What to train and on what (the optimizer and loop settings are transformers' ``TrainingArguments``)."""

    model_spec: str = field(metadata={"help": "model.yaml (recipes/<model>/model.yaml)"})
    tokenizer_name_or_path: str = field(metadata={"help": "tokenizer the shards were made with (path or Hub id)"})
    # Typed as str for argparse: the YAML gives a list (kept as is), the command line its JSON; parse_stages types it.
    stages: str | None = field(
        default=None, metadata={"help": "the stages (YAML list; on the command line a JSON list replaces them)"}
    )
    init_from: str | None = field(
        default=None, metadata={"help": "HF checkpoint the first stage starts from (default: random init)"}
    )
    shards_root: str | None = field(
        default=None, metadata={"help": "folder relative shard paths resolve against (default: the working dir)"}
    )
    shard_check: str = field(
        default="sample",
        metadata={"help": "token-id check of the shards before training", "choices": ["none", "sample", "full"]},
    )
    max_steps_per_stage: int | None = field(
        default=None, metadata={"help": "cap every stage at this many steps (smoke tests, benchmarks)"}
    )
    peak_tflops: float | None = field(
        default=None, metadata={"help": "accelerator peak TFLOP/s for MFU (default: known GPUs by name)"}
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa, flash_attention_2, eager"})
    mixture_block_size: int = field(default=1024, metadata={"help": "samples per seeded mixing block"})

    def stage_specs(self) -> list[StageSpec]:
        return parse_stages(self.stages, self.shards_root)


def stage_summary(stage: StageSpec) -> dict[str, Any]:
    return asdict(stage)
