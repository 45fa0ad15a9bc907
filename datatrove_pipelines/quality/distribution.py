"""Score distributions as mergeable histograms, and the drop-the-bottom-p threshold computed from them.

Why histograms: a distribution-computed threshold needs every score of the corpus (hundreds of millions of files on
a cluster). Each task writes a fixed-width histogram per language (bins of 0.001 on the 0..10 scale, stored
sparsely); histograms add up exactly, so the global threshold is one merge away and tasks never exchange scores.

Exactness: scores are stored with 4 decimals and compared in integer units of 1e-4, so "score below threshold" is
the same decision in the filter, in the histogram and in the threshold search. A computed threshold is a bin edge:
it drops the bins below it, i.e. the requested fraction up to the mass of one 0.001-wide bin.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field

from datatrove.io import get_datafolder

MAX_SCORE = 10.0
SCORE_DECIMALS = 4
UNITS_PER_SCORE = 10**SCORE_DECIMALS  # the integer unit of comparisons
UNITS_PER_BIN = 10  # bin width 0.001
NUM_BINS = int(MAX_SCORE * UNITS_PER_SCORE) // UNITS_PER_BIN + 1
ALL_LANGUAGES = "*"


def round_score(score: float) -> float:
    """A score as stored in metadata: clamped to 0..10 and rounded to 4 decimals."""
    return round(min(MAX_SCORE, max(0.0, float(score))), SCORE_DECIMALS)


def score_units(score: float) -> int:
    return int(round(float(score) * UNITS_PER_SCORE))


def score_bin(score: float) -> int:
    return min(NUM_BINS - 1, max(0, score_units(score) // UNITS_PER_BIN))


def is_below(score: float, threshold: float) -> bool:
    """The filter's decision: ``score < threshold`` in integer units of 1e-4."""
    return score_units(score) < score_units(threshold)


@dataclass
class ScoreHistogram:
    """Per-language counts of scores in 0.001-wide bins."""

    counts: dict[str, Counter] = field(default_factory=dict)

    def add(self, language: str, score: float) -> None:
        self.counts.setdefault(language, Counter())[score_bin(score)] += 1

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        for language, counts in other.counts.items():
            self.counts.setdefault(language, Counter()).update(counts)
        return self

    def combined(self, language: str = ALL_LANGUAGES) -> Counter:
        if language != ALL_LANGUAGES:
            return Counter(self.counts.get(language, {}))
        total: Counter = Counter()
        for counts in self.counts.values():
            total.update(counts)
        return total

    def total(self, language: str = ALL_LANGUAGES) -> int:
        return sum(self.combined(language).values())

    def languages(self) -> list[str]:
        return sorted(self.counts, key=lambda language: (-sum(self.counts[language].values()), language))

    def fraction_below(self, threshold: float, language: str = ALL_LANGUAGES) -> float:
        counts = self.combined(language)
        total = sum(counts.values())
        edge = score_units(threshold)
        # bins entirely below the threshold edge (the threshold is a bin edge when computed here)
        below = sum(n for b, n in counts.items() if (b + 1) * UNITS_PER_BIN <= edge)
        return below / total if total else 0.0

    def threshold_for_drop_fraction(self, drop_fraction: float, language: str = ALL_LANGUAGES) -> float:
        """The bin edge whose share of scores below it is closest to ``drop_fraction`` (ties: drop fewer)."""
        if not 0.0 <= drop_fraction < 1.0:
            raise ValueError(f"drop_fraction must be in [0, 1) (got {drop_fraction})")
        counts = self.combined(language)
        total = sum(counts.values())
        if total == 0:
            raise ValueError("no scores to compute a threshold from (did the scoring pass run?)")
        if drop_fraction == 0.0:
            return 0.0
        target = drop_fraction * total
        cumulative = 0
        for b in sorted(counts):
            before, cumulative = cumulative, cumulative + counts[b]
            if cumulative >= target:
                chosen = b + 1 if (cumulative - target) < (target - before) else b
                return chosen * UNITS_PER_BIN / UNITS_PER_SCORE
        return MAX_SCORE

    def to_json(self) -> dict:
        return {
            "bin_width": UNITS_PER_BIN / UNITS_PER_SCORE,
            "counts": {lang: {str(b): n for b, n in sorted(c.items())} for lang, c in sorted(self.counts.items())},
        }

    @classmethod
    def from_json(cls, data: dict) -> ScoreHistogram:
        if abs(data.get("bin_width", 0.001) - UNITS_PER_BIN / UNITS_PER_SCORE) > 1e-12:
            raise ValueError(f"histogram bin width {data.get('bin_width')} differs from this version's")
        return cls({lang: Counter({int(b): int(n) for b, n in c.items()}) for lang, c in data["counts"].items()})

    def save(self, path: str) -> None:
        folder = get_datafolder(os.path.dirname(path) or ".")
        with folder.open(os.path.basename(path), "wt") as handle:
            json.dump(self.to_json(), handle)

    @classmethod
    def load(cls, path: str) -> ScoreHistogram:
        folder = get_datafolder(os.path.dirname(path) or ".")
        with folder.open(os.path.basename(path), "rt") as handle:
            return cls.from_json(json.load(handle))

    @classmethod
    def load_folder(cls, folder_path: str) -> ScoreHistogram:
        """The sum of every ``*.json`` histogram in a folder (one per task)."""
        folder = get_datafolder(folder_path)
        merged = cls()
        if not folder.exists(""):
            return merged
        for name in sorted(folder.list_files(glob_pattern="*.json")):
            with folder.open(name, "rt") as handle:
                merged.merge(cls.from_json(json.load(handle)))
        return merged


def quantile_summary(histogram: ScoreHistogram, language: str = ALL_LANGUAGES) -> dict:
    """Count, mean and a few quantiles (bin-centre precision) for reports."""
    counts = histogram.combined(language)
    total = sum(counts.values())
    if not total:
        return {"count": 0}
    width = UNITS_PER_BIN / UNITS_PER_SCORE
    mean = sum((b + 0.5) * width * n for b, n in counts.items()) / total
    summary = {"count": total, "mean": round(mean, 3)}
    for q in (0.1, 0.5, 0.9):
        target, cumulative = math.ceil(q * total), 0
        for b in sorted(counts):
            cumulative += counts[b]
            if cumulative >= target:
                summary[f"p{int(q * 100)}"] = round((b + 0.5) * width, 3)
                break
    return summary
