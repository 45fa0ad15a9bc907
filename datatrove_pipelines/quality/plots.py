"""PNG reports: the scorer's confusion matrix and per-language score histograms (matplotlib, headless)."""

from __future__ import annotations

import math

from datatrove_pipelines.quality.distribution import UNITS_PER_BIN, UNITS_PER_SCORE, ScoreHistogram
from datatrove_pipelines.quality.rubric import MAX_RATING


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_counts(truth: list[float], predicted: list[float]) -> list[list[int]]:
    """counts[true][predicted] with both rounded to integer ratings 0..10."""
    size = MAX_RATING + 1
    counts = [[0] * size for _ in range(size)]
    for t, p in zip(truth, predicted, strict=True):
        row = min(MAX_RATING, max(0, math.floor(t + 0.5)))
        column = min(MAX_RATING, max(0, math.floor(p + 0.5)))
        counts[row][column] += 1
    return counts


def plot_confusion(truth: list[float], predicted: list[float], path: str, title: str = "scorer") -> None:
    """Row-normalised confusion matrix of oracle rating (rows) vs rounded scorer prediction (columns)."""
    plt = _pyplot()
    counts = confusion_counts(truth, predicted)
    normalised = [[c / (sum(row) or 1) for c in row] for row in counts]
    figure, axis = plt.subplots(figsize=(7, 6))
    image = axis.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, origin="lower")
    for row in range(len(counts)):
        for column in range(len(counts)):
            if counts[row][column]:
                colour = "white" if normalised[row][column] > 0.5 else "black"
                axis.text(column, row, str(counts[row][column]), ha="center", va="center", fontsize=7, color=colour)
    axis.set_xticks(range(MAX_RATING + 1))
    axis.set_yticks(range(MAX_RATING + 1))
    axis.set_xlabel("scorer prediction (rounded)")
    axis.set_ylabel("oracle rating")
    axis.set_title(f"{title} (n={len(truth)})")
    figure.colorbar(image, ax=axis, label="share of the row")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_score_histograms(
    histogram: ScoreHistogram,
    path: str,
    threshold: float | None = None,
    max_languages: int = 11,
    bin_width: float = 0.2,
) -> None:
    """One panel for all languages and one per language (the most frequent ``max_languages``), threshold marked."""
    plt = _pyplot()
    languages = ["*"] + histogram.languages()[:max_languages]
    columns = min(3, len(languages))
    rows = math.ceil(len(languages) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3 * rows), squeeze=False)
    per_bin = UNITS_PER_BIN / UNITS_PER_SCORE
    edges = [i * bin_width for i in range(int(round(MAX_RATING / bin_width)) + 1)]
    for axis, language in zip(axes.flat, languages, strict=False):
        values, weights = [], []
        for b, n in histogram.combined(language).items():
            values.append((b + 0.5) * per_bin)
            weights.append(n)
        axis.hist(values, bins=edges, weights=weights, color="tab:blue")
        if threshold is not None:
            axis.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.4f}")
            axis.legend(fontsize=7)
        label = "all languages" if language == "*" else language
        axis.set_title(f"{label} (n={sum(weights)})", fontsize=9)
        axis.set_xlim(0, MAX_RATING)
        axis.set_xlabel("quality score")
    for axis in list(axes.flat)[len(languages) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
