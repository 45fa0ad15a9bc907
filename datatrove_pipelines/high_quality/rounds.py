"""The iterative fastText recall of the high-quality subset (paper §4), as plain functions over candidate files.

Round 1 trains on the seeds (per language, the top files by ``seed_score``: the quality score plus a weight on the
comment/docstring ratio, among files with some comments) against random files and hard negatives (high quality
score but no comments or docstrings). Each round then predicts over the training pool: confident recalls with a decent
quality score join the positives; recalls with a low quality score become hard negatives of the next round.

Evaluation: a held-out split (by a hash of the id, never trained on) labelled by the rule the seeds sample from — a
held-out file is high quality when it has comments and its ``seed_score`` is within the top ``target_share`` of its
language in the training pool. The seeds are a small, surest part of that set; the rounds exist to recall the rest,
so recall should grow over the rounds while the hard negatives hold precision. Precision, recall and F1 at the
decision threshold are reported per round.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
from dataclasses import asdict, dataclass, field

from datatrove_pipelines.fasttext_training import check_dim, train_supervised_lines
from datatrove_pipelines.quality.scorer import fasttext_text

POSITIVE, NEGATIVE = "__label__hq", "__label__other"


class NoSeedsError(ValueError):
    """Nothing qualifies as a seed: no file has enough comments/docstrings. Raised inside the train task; the CLI
    prints it as one line (``stage_error``: no traceback on the console)."""

    stage_error = True


@dataclass
class HighQualityConfig:
    rounds: int = 3
    seeds_per_language: int = 1000
    target_share: float = 0.2  # the share of each language the subset aims at (held-out truth)
    comment_weight: float = 0.3  # share of the seed score given to the comment ratio
    comment_saturation: float = 0.25  # a comment ratio counts fully from this share on
    min_comment_ratio: float = 0.02  # seeds must have at least this much comments/docstrings
    negatives_per_positive: float = 2.0
    hard_negative_share: float = 0.3  # of the negatives, at most this share hard negatives
    heldout_fraction: float = 0.2
    threshold: float = 0.5  # P(high quality) to be recalled / kept
    confident: float = 0.7  # P(high quality) to join the positives
    new_positives_per_round: float = 1.0  # at most this many times the seed count join per round
    max_chars: int = 4000
    epochs: int = 10
    lr: float = 0.5
    dim: int = 100
    word_ngrams: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("--rounds must be at least 1")
        if self.seeds_per_language < 1:
            raise ValueError("--seeds-per-language must be at least 1")
        if not 0 < self.target_share < 1:
            raise ValueError("--target-share must be within (0, 1)")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError("--heldout-fraction must be within (0, 1)")
        shares = ("threshold", "confident", "comment_weight", "min_comment_ratio", "hard_negative_share")
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"--{name.replace('_', '-')} must be within [0, 1] (got {getattr(self, name)})")
        if self.negatives_per_positive <= 0:
            raise ValueError(f"--negatives-per-positive must be above 0 (got {self.negatives_per_positive})")
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1 (got {self.epochs})")
        check_dim(self.dim)


@dataclass
class Candidate:
    id: str
    language: str
    text: str
    quality_score: float
    comment_ratio: float
    heldout: bool = False
    seed_score: float = 0.0


@dataclass
class RoundReport:
    round: int
    positives: int
    negatives: int
    hard_negatives: int
    recalled: int  # training-pool files with P >= threshold
    new_positives: int  # joined the positives for the next round
    precision: float
    recall: float
    f1: float
    heldout_positives: int
    heldout_negatives: int


@dataclass
class HighQualityResult:
    reports: list[RoundReport] = field(default_factory=list)
    model_path: str = ""
    seeds: int = 0


def unit_hash(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8", errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seed_score(candidate: Candidate, config: HighQualityConfig) -> float:
    comments = min(1.0, candidate.comment_ratio / config.comment_saturation)
    return (1 - config.comment_weight) * candidate.quality_score / 10 + config.comment_weight * comments


def prepare(candidates: list[Candidate], config: HighQualityConfig) -> None:
    for candidate in candidates:
        candidate.seed_score = seed_score(candidate, config)
        candidate.heldout = unit_hash(candidate.id, config.seed) < config.heldout_fraction


def _commented_by_language(pool: list[Candidate], config: HighQualityConfig) -> dict[str, list[Candidate]]:
    """Per language, the files with comments, best seed score first."""
    by_language: dict[str, list[Candidate]] = {}
    for candidate in pool:
        if candidate.comment_ratio >= config.min_comment_ratio:
            by_language.setdefault(candidate.language, []).append(candidate)
    for members in by_language.values():
        members.sort(key=lambda c: (-c.seed_score, c.id))
    return by_language


def select_seeds(pool: list[Candidate], config: HighQualityConfig) -> list[Candidate]:
    """Per language, the top ``seeds_per_language`` commented files by seed score."""
    by_language = _commented_by_language(pool, config)
    return [c for _, members in sorted(by_language.items()) for c in members[: config.seeds_per_language]]


def target_cutoffs(pool: list[Candidate], config: HighQualityConfig) -> dict[str, float]:
    """Per language, the lowest seed score inside the top ``target_share`` of the language's files."""
    counts: dict[str, int] = {}
    for candidate in pool:
        counts[candidate.language] = counts.get(candidate.language, 0) + 1
    cutoffs = {}
    for language, members in _commented_by_language(pool, config).items():
        size = max(1, min(len(members), round(config.target_share * counts[language])))
        cutoffs[language] = members[size - 1].seed_score
    return cutoffs


def is_target(candidate: Candidate, cutoffs: dict[str, float], config: HighQualityConfig) -> bool:
    cutoff = cutoffs.get(candidate.language)
    return (
        cutoff is not None and candidate.comment_ratio >= config.min_comment_ratio and candidate.seed_score >= cutoff
    )


def _train(lines: list[str], config: HighQualityConfig, round_index: int):
    rng = random.Random(config.seed * 1000 + round_index)
    rng.shuffle(lines)
    model, _ = train_supervised_lines(
        lines,
        epoch=config.epochs,
        lr=config.lr,
        dim=config.dim,
        wordNgrams=config.word_ngrams,
        minCount=1,
        thread=1,  # deterministic
        seed=config.seed,
        verbose=0,
    )
    return model


def positive_probabilities(model, candidates: list[Candidate], max_chars: int) -> list[float]:
    if not candidates:
        return []
    lines = [fasttext_text(c.language, c.text, max_chars) for c in candidates]
    labels, probabilities = model.predict(lines, k=2)
    result = []
    for row_labels, row_probabilities in zip(labels, probabilities, strict=True):
        scores = dict(zip(row_labels, (float(p) for p in row_probabilities), strict=True))
        result.append(min(1.0, max(0.0, scores.get(POSITIVE, 1.0 - scores.get(NEGATIVE, 1.0)))))
    return result


def precision_recall(truth: list[bool], predicted: list[bool]) -> tuple[float, float, float]:
    true_positive = sum(1 for t, p in zip(truth, predicted, strict=True) if t and p)
    precision = true_positive / sum(predicted) if any(predicted) else 0.0
    recall = true_positive / sum(truth) if any(truth) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run_rounds(candidates: list[Candidate], config: HighQualityConfig, model_dir: str) -> HighQualityResult:
    """All rounds; saves each round's model as ``model_dir/round<N>.bin`` and the last as ``model.bin``."""
    prepare(candidates, config)
    pool = [c for c in candidates if not c.heldout]
    heldout = [c for c in candidates if c.heldout]
    seeds = select_seeds(pool, config)
    if not seeds:
        raise NoSeedsError(
            f"no seed candidates among {len(pool)} training files ({len(heldout)} held out): none has "
            "comments/docstrings above --min-comment-ratio"
        )
    cutoffs = target_cutoffs(pool, config)
    truth = [is_target(c, cutoffs, config) for c in heldout]
    scores = [c.quality_score for c in pool]
    high_score = statistics.quantiles(scores, n=10)[6] if len(scores) >= 10 else max(scores)  # top 30%
    median_score = statistics.median(scores)
    rng = random.Random(config.seed)
    positives = {c.id: c for c in seeds}
    low_score_recalls: dict[str, Candidate] = {}
    result = HighQualityResult(seeds=len(seeds))
    os.makedirs(model_dir, exist_ok=True)
    for round_index in range(1, config.rounds + 1):
        rest = [c for c in pool if c.id not in positives]
        wanted = int(round(config.negatives_per_positive * len(positives)))
        hard_pool = [c for c in rest if c.quality_score >= high_score and c.comment_ratio < config.min_comment_ratio]
        hard_pool += [c for c in low_score_recalls.values() if c.id not in positives]
        hard_pool = sorted({c.id: c for c in hard_pool}.values(), key=lambda c: c.id)
        hard = rng.sample(hard_pool, min(len(hard_pool), int(wanted * config.hard_negative_share)))
        hard_ids = {c.id for c in hard}
        random_pool = [c for c in rest if c.id not in hard_ids]
        negatives = hard + rng.sample(random_pool, min(len(random_pool), wanted - len(hard)))
        lines = [f"{POSITIVE} {fasttext_text(c.language, c.text, config.max_chars)}" for c in positives.values()]
        lines += [f"{NEGATIVE} {fasttext_text(c.language, c.text, config.max_chars)}" for c in negatives]
        model = _train(lines, config, round_index)
        model.save_model(os.path.join(model_dir, f"round{round_index}.bin"))
        predicted = [p >= config.threshold for p in positive_probabilities(model, heldout, config.max_chars)]
        precision, recall, f1 = precision_recall(truth, predicted)
        pool_p = positive_probabilities(model, rest, config.max_chars)
        recalled = [(p, c) for p, c in zip(pool_p, rest, strict=True) if p >= config.threshold]
        confident = sorted(
            ((p, c) for p, c in recalled if p >= config.confident and c.quality_score >= high_score),
            key=lambda item: (-item[0], item[1].id),
        )[: int(config.new_positives_per_round * len(seeds))]
        low_score_recalls = {c.id: c for p, c in recalled if c.quality_score < median_score}
        result.reports.append(
            RoundReport(
                round=round_index,
                positives=len(positives),
                negatives=len(negatives),
                hard_negatives=len(hard),
                recalled=len(recalled),
                new_positives=len(confident) if round_index < config.rounds else 0,
                precision=round(precision, 4),
                recall=round(recall, 4),
                f1=round(f1, 4),
                heldout_positives=sum(truth),
                heldout_negatives=len(truth) - sum(truth),
            )
        )
        if round_index < config.rounds:
            positives.update({c.id: c for _, c in confident})
    model.save_model(os.path.join(model_dir, "model.bin"))
    result.model_path = os.path.join(model_dir, "model.bin")
    return result


def reports_as_dicts(result: HighQualityResult) -> list[dict]:
    return [asdict(report) for report in result.reports]


def plot_rounds(reports: list[dict], path: str) -> None:
    """Held-out precision, recall and F1 per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in reports]
    figure, axis = plt.subplots(figsize=(6, 4))
    for key in ("precision", "recall", "f1"):
        axis.plot(rounds, [r[key] for r in reports], marker="o", label=key)
    axis.set_xticks(rounds)
    axis.set_ylim(0, 1.05)
    axis.set_xlabel("round")
    axis.set_title("high-quality recall: held-out precision / recall")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
