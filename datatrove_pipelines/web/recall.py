"""The fastText recall classifier: is a page without code markup code-related? (paper §3)

Seed-Coder takes pages with explicit code markup by rule and sends the rest through a fastText classifier trained on
a gold set (70/30 train/validation), tuned for recall first (99% recall at 45% precision). Here:

* gold labels: every rule page is a positive; a seeded sample of the other pages is judged by the LLM
  (:mod:`datatrove_pipelines.web.llm`); 30% of the gold (seeded, per label) is held out and never trained on;
* rounds: train, measure recall / precision on the held-out split, then score the unlabelled pages and send the
  confident recalls (probability ≥ ``confident``, at most ``per_round``) to the judge; confirmed ones are added as
  positives, rejected ones as negatives (the hard cases a rule-only gold set lacks), and the model is trained again;
* operating point: the highest threshold whose held-out recall is at least ``target_recall`` (0.99 by default).

Text features (:func:`fasttext_text`): lower-cased word and punctuation tokens, with ``__nl__`` at line ends and
``__indent__`` before indented lines, so the layout of code still shows when its markup is gone.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.fasttext_training import check_dim, load_model, train_supervised_lines
from datatrove_pipelines.funnel import FunnelFilter

CODE_LABEL = "__label__code"
OTHER_LABEL = "__label__other"
_TOKEN = re.compile(r"\w+|[^\w\s]")
MAX_FEATURE_CHARS = 20_000


def fasttext_text(text: str, max_chars: int = MAX_FEATURE_CHARS) -> str:
    """The classifier's view of a page (one line; see the module docstring)."""
    tokens: list[str] = []
    for line in text[:max_chars].lower().split("\n"):
        if not line.strip():
            continue
        if line[:1] in (" ", "\t"):
            tokens.append("__indent__")
        tokens.extend(_TOKEN.findall(line))
        tokens.append("__nl__")
    return " ".join(tokens)


@dataclass
class FastTextSettings:
    """fastText hyper-parameters (dim >= 100, the floor of every stage that trains fastText)."""

    dim: int = 100
    epoch: int = 25
    lr: float = 0.5
    word_ngrams: int = 2
    min_count: int = 1
    seed: int = 0
    # hash buckets of the word n-grams: the model is (vocabulary + bucket) x dim floats, so fastText's default of 2M
    # makes an 800 MB file that takes seconds to load in every task; 100K suits up to millions of pages
    bucket: int = 100_000

    def __post_init__(self) -> None:
        check_dim(self.dim)


def train_fasttext(examples: list[tuple[str, int]], settings: FastTextSettings, path: str):
    """Train on (page text, label) pairs; saves the model to ``path`` and returns it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    model, _ = train_supervised_lines(
        (f"{CODE_LABEL if label else OTHER_LABEL} {fasttext_text(text)}" for text, label in examples),
        folder=folder,
        dim=settings.dim,
        epoch=settings.epoch,
        lr=settings.lr,
        wordNgrams=settings.word_ngrams,
        minCount=settings.min_count,
        bucket=settings.bucket,
        seed=settings.seed,
        thread=1,  # deterministic for a given seed
        verbose=0,
    )
    model.save_model(path)
    return model


def code_probability(model, text: str) -> float:
    labels, probabilities = model.predict(fasttext_text(text), k=2)
    for label, probability in zip(labels, probabilities, strict=False):
        if label == CODE_LABEL:
            return float(min(1.0, max(0.0, probability)))
    return 0.0


# ---------------------------------------------------------------------------------------------------------------------
# Held-out measurement and the operating point
# ---------------------------------------------------------------------------------------------------------------------


def precision_recall(scores: list[float], labels: list[int], threshold: float) -> dict:
    flagged = [label for score, label in zip(scores, labels, strict=True) if score >= threshold]
    positives = sum(labels)
    true = sum(flagged)
    return {
        "threshold": round(threshold, 6),
        "recall": true / positives if positives else 0.0,
        "precision": true / len(flagged) if flagged else 0.0,
        "flagged": len(flagged),
    }


def operating_threshold(scores: list[float], labels: list[int], target_recall: float) -> float:
    """The highest threshold whose recall is at least ``target_recall`` (the score of the k-th best positive)."""
    positive_scores = sorted((s for s, label in zip(scores, labels, strict=True) if label), reverse=True)
    if not positive_scores:
        return 0.5
    k = max(1, math.ceil(target_recall * len(positive_scores)))
    return positive_scores[k - 1]


# ---------------------------------------------------------------------------------------------------------------------
# The funnel step of ``run``
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class RecallConfig:
    """The rule plus the classifier: ``model_path`` None keeps only rule pages (no classifier trained yet)."""

    model_path: str | None = None
    threshold: float = 0.5  # train-recall's operating point (recall.json) unless given

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:  # a probability: above 1 the classifier would silently recall nothing
            raise ValueError(f"recall threshold must be in [0, 1], not {self.threshold}")


class CodeRecallFilter(FunnelFilter):
    """Keeps pages with code markup (``metadata.recall = "rule"``) and pages the classifier scores at or above the
    threshold (``"classifier"``, probability in ``metadata.code_score``); the rest: ``not_code_related``."""

    def __init__(self, config: RecallConfig, exclusion_writer: DiskWriter | None = None):
        super().__init__("recall", exclusion_writer)
        self.config = config
        self._model = None

    def check(self, doc: Document) -> str | None:
        if doc.metadata.get("code_markup"):
            doc.metadata["recall"] = "rule"
            return None
        if self.config.model_path is None:
            return "not_code_related"
        if self._model is None:
            self._model = load_model(self.config.model_path)
        probability = code_probability(self._model, doc.text)
        doc.metadata["code_score"] = round(probability, 5)
        if probability >= self.config.threshold:
            doc.metadata["recall"] = "classifier"
            return None
        return "not_code_related"
