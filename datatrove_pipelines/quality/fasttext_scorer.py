"""The fastText scorer (for throughput-bound runs): ratings binned, a supervised fastText classifier predicts the bin
from the language and the file text, the score is the expected value Σ p(bin)·mean rating of the bin (see
:mod:`datatrove_pipelines.quality.scorer`)."""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

from datatrove_pipelines.fasttext_training import load_model, train_supervised_lines
from datatrove_pipelines.quality.distribution import round_score
from datatrove_pipelines.quality.rubric import MAX_RATING
from datatrove_pipelines.quality.scorer_config import Example, ScorerTrainingConfig, parse_bins, read_scorer_settings


def fasttext_bucket_count(distinct_ngrams: int) -> int:
    """Hash buckets for ``distinct_ngrams`` word n-grams: the next power of two of twice as many (few collisions),
    between 2^16 and fastText's default 2M. Not fewer: with few buckets unrelated n-grams share a vector."""
    return min(2_000_000, max(1 << 16, 1 << max(0, 2 * distinct_ngrams - 1).bit_length()))


def fasttext_text(language: str, text: str, max_chars: int) -> str:
    """One line for fastText: a language token and the file's whitespace-separated tokens."""
    language_token = "__lang_" + "".join(c if c.isalnum() else "_" for c in language.lower())
    return f"{language_token} {' '.join(text[:max_chars].split())}"


class FastTextScorer:
    """A trained fastText scorer: expected rating from the bin probabilities."""

    kind = "fasttext"

    def __init__(self, model, settings: dict):
        self.model = model
        self.settings = settings
        self.values = {f"__label__{i}": v for i, v in enumerate(settings["bin_values"])}

    @classmethod
    def load(cls, scorer_dir: str, **_) -> FastTextScorer:
        settings = read_scorer_settings(scorer_dir)
        return cls(load_model(os.path.join(scorer_dir, "model.bin")), settings)

    def score(self, items: list[tuple[str, str]]) -> list[float]:
        if not items:
            return []
        lines = [fasttext_text(language, text, self.settings["max_content_chars"]) for language, text in items]
        labels, probabilities = self.model.predict(lines, k=-1)
        scores = []
        for row_labels, row_probabilities in zip(labels, probabilities, strict=True):
            total = float(sum(row_probabilities)) or 1.0
            value = sum(self.values[label] * float(p) for label, p in zip(row_labels, row_probabilities, strict=True))
            scores.append(round_score(value / total))
        return scores


def train_fasttext(config: ScorerTrainingConfig, train: list[Example], output: Path) -> FastTextScorer:
    bins = parse_bins(config.fasttext_bins)
    bin_of = {rating: index for index, group in enumerate(bins) for rating in group}
    members: dict[int, list[float]] = defaultdict(list)
    for example in train:
        members[bin_of[int(min(MAX_RATING, max(0, math.floor(example.rating + 0.5))))]].append(example.rating)
    values = [statistics.fmean(members[i]) if members[i] else statistics.fmean(group) for i, group in enumerate(bins)]
    ngrams: set[int] = set()
    lines = []
    for example in train:
        label = bin_of[int(min(MAX_RATING, max(0, math.floor(example.rating + 0.5))))]
        text = fasttext_text(example.language, example.text, config.max_content_chars)
        lines.append(f"__label__{label} {text}")
        words = text.split()
        for n in range(2, config.fasttext_word_ngrams + 1):
            ngrams.update(hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1))
    buckets = config.fasttext_buckets or fasttext_bucket_count(len(ngrams))
    model, _ = train_supervised_lines(
        lines,
        epoch=config.fasttext_epochs,
        lr=config.fasttext_lr,
        dim=config.fasttext_dim,  # >= 100, checked by the config (the stages' floor)
        wordNgrams=config.fasttext_word_ngrams,
        bucket=buckets if config.fasttext_word_ngrams > 1 else 0,
        minCount=1,
        thread=1,  # deterministic for a seed (lock-free threads make runs differ); the scorer's data is small
        seed=config.seed,
        verbose=0,
    )
    model.save_model(str(output / "model.bin"))
    settings = {
        "bins": bins,
        "bin_values": [round(v, 4) for v in values],
        "max_content_chars": config.max_content_chars,
    }
    return FastTextScorer(model, settings)
