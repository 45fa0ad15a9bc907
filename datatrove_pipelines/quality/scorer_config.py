"""The scorer's settings and files, below the two scorer kinds: ``ScorerTrainingConfig`` (also the flags of
``train-scorer``), the annotated :class:`Example`, the fastText bins, and ``scorer.json``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from datatrove_pipelines.fasttext_training import check_dim
from datatrove_pipelines.quality.rubric import DEFAULT_MAX_CONTENT_CHARS, MAX_RATING

SCORER_CONFIG = "scorer.json"
KINDS = ("lm", "fasttext")
HEADS = ("sequence-classification", "pooled")
POOLINGS = ("mean", "last")
DEFAULT_FASTTEXT_BINS = "0|1,2,3|4,5|6,7|8,9,10"


@dataclass
class Example:
    """One annotated file."""

    id: str
    language: str
    text: str
    rating: float


@dataclass
class ScorerTrainingConfig:
    """``train-scorer`` settings; the LM defaults follow the paper (1 epoch, MSE on ratings scaled to [0, 1])."""

    annotations_dir: str = field(
        metadata={"flag": "annotations", "help": "the output folder of annotate (reads its kept/)"}
    )
    output_dir: str = field(metadata={"flag": "output", "help": "the scorer directory to write"})
    kind: str = field(default="lm", metadata={"choices": KINDS})
    base_model: str | None = field(
        default=None, metadata={"help": "lm: a pretrained causal LM (local path or Hub id)"}
    )
    label_field: str = field(default="rating", metadata={"help": "rating, or rating_expected"})
    eval_fraction: float = 0.1
    seed: int = 0
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    # lm
    max_length: int = field(default=2048, metadata={"help": "lm: tokens per prompt+file"})
    head: str = field(
        default="pooled",
        metadata={
            "choices": HEADS,
            "help": "lm: pooled (our head over the pooled file tokens, see --pooling) or sequence-classification "
            "(transformers' AutoModelForSequenceClassification regression head on the last token)",
        },
    )
    pooling: str = field(default="mean", metadata={"choices": POOLINGS, "help": "lm, pooled head: file tokens"})
    epochs: float = 1.0
    learning_rate: float = 2e-5
    # a fresh head often wants more
    head_learning_rate: float | None = field(default=None, metadata={"help": "lm: default --learning-rate"})
    # train the head only (a linear probe): cheap, less prone to overfit small data
    freeze_backbone: bool = field(default=False, metadata={"help": "lm: train the head only (linear probe)"})
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    weight_decay: float = 0.0
    warmup: float = field(default=0.05, metadata={"help": "fraction of steps (or an int count)"})
    bf16: bool = False
    device: str | None = None  # None: cuda when available
    scoring_batch_size: int = field(default=16, metadata={"cli": False})
    # fasttext
    fasttext_bins: str = DEFAULT_FASTTEXT_BINS
    fasttext_epochs: int = 25
    fasttext_lr: float = 0.5
    fasttext_dim: int = 100
    fasttext_word_ngrams: int = 2
    # hash buckets of the word n-grams: 0 = enough for the training data's distinct n-grams (fastText's default 2M
    # buckets x dim 100 floats = 800 MB, whatever the data size)
    fasttext_buckets: int = field(default=0, metadata={"help": "word n-gram hash buckets (0: from the data)"})

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scorer kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind == "lm" and not self.base_model:
            raise ValueError("--kind lm needs --base-model (a pretrained causal LM: local path or Hub id)")
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1) (got {self.eval_fraction})")
        parse_bins(self.fasttext_bins)
        if self.kind == "fasttext":
            check_dim(self.fasttext_dim)


def parse_bins(spec: str) -> list[list[int]]:
    """``"0|1,2,3|4,5"`` -> [[0], [1, 2, 3], [4, 5]]; every rating 0..10 must be in exactly one bin."""
    try:
        bins = [[int(r) for r in group.split(",")] for group in spec.split("|")]
    except ValueError as error:
        raise ValueError(f"bad --fasttext-bins {spec!r}: groups of integers separated by '|'") from error
    flat = sorted(r for group in bins for r in group)
    if flat != list(range(MAX_RATING + 1)):
        raise ValueError(f"--fasttext-bins {spec!r} must cover each rating 0..{MAX_RATING} exactly once")
    return bins


def read_scorer_settings(scorer_dir: str) -> dict:
    """The ``scorer.json`` of a scorer directory (a clear error when there is none)."""
    path = os.path.join(scorer_dir, SCORER_CONFIG)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{scorer_dir} is not a scorer directory (no {SCORER_CONFIG}); run train-scorer first")
    with open(path) as handle:
        return json.load(handle)
