"""Scoring the corpus with a trained scorer and dropping its bottom fraction (facts §1: drop the bottom ~10%).

Steps:

* :class:`QualityScorer` scores documents in batches, writes ``metadata.quality_score`` (0..10, 4 decimals) and,
  given ``histogram_dir``, one score histogram per task (``<histogram_dir>/<rank>.json``).
* :class:`QualityThresholdFilter` (a funnel filter, step ``quality``) drops documents scored below a threshold, with
  reason ``low_quality`` (or ``unscored`` when a document has no score). The threshold is given, or computed at the
  start of the filter's run from the merged histograms of the scoring pass: the bin edge closest to the requested
  drop fraction.

A threshold from the corpus' own distribution needs every score before the first document is filtered, so with
more than one task ``score`` runs in two passes: (1) score every document and write ``scored/`` plus the
histograms, (2) merge the histograms, compute the threshold once, filter ``scored/`` into ``kept/`` and
``excluded/quality/``. On Slurm pass 2 is a job that depends on pass 1, so the threshold is computed inside pass 2,
never in the launcher. With a given ``--threshold`` it is one pass.

Inside another pipeline (e.g. the code-file pipeline, after the syntax check) use :func:`quality_filter_steps`:
one pass, with either a threshold or a drop fraction converted to a threshold with the scorer's calibration
histogram (its held-out scores: an approximation of the corpus distribution; use the two-pass ``score`` command
when the exact fraction matters).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.batching import batched
from loguru import logger

from datatrove_pipelines.code_readers import READ_STEP, FaultTolerantJsonlReader
from datatrove_pipelines.funnel import FunnelFilter, FunnelMixin
from datatrove_pipelines.quality.annotate import language_of
from datatrove_pipelines.quality.distribution import ScoreHistogram, is_below, round_score
from datatrove_pipelines.writers import exclusion_writer, kept_writer

SCORE_KEY = "quality_score"
QUALITY_STEP = "quality"
SCORE_STEP = "quality_score"
DEFAULT_DROP_FRACTION = 0.1


class QualityScorer(FunnelMixin, PipelineStep):
    """Adds ``metadata.quality_score`` with a trained scorer (see :mod:`.scorer`); loads it once per task.

    It drops nothing (a document it cannot score gets ``None`` and the filter excludes it as ``unscored``) but takes
    part in the funnel, so stats.json shows that no document was lost between the scoring and filtering passes.
    """

    name = "quality scorer"
    type = "🔢 - SCORER"
    funnel_step = SCORE_STEP

    def __init__(
        self,
        scorer_dir: str,
        batch_size: int = 32,
        device: str | None = None,
        dtype: str | None = None,
        histogram_dir: str | None = None,
        score_key: str = SCORE_KEY,
    ):
        super().__init__()
        self.scorer_dir = scorer_dir
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.histogram_dir = histogram_dir
        self.score_key = score_key

    def _score_batch(self, scorer, batch: list[Document]) -> list[float | None]:
        items = [(language_of(doc), doc.text or "") for doc in batch]
        try:
            return list(scorer.score(items))
        except Exception as error:  # one bad document must not take the batch down: retry one at a time
            logger.warning(f"scoring a batch failed ({error!r}); scoring its documents one by one")
        scores: list[float | None] = []
        for item in items:
            try:
                scores.append(scorer.score([item])[0])
            except Exception as error:
                logger.warning(f"could not score a document: {error!r}")
                self.stat_update("score_errors")
                scores.append(None)
        return scores

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from datatrove_pipelines.quality.scorer import load_scorer

        scorer = load_scorer(self.scorer_dir, device=self.device, batch_size=self.batch_size, dtype=self.dtype)
        histogram = ScoreHistogram()
        for batch in batched(data or [], self.batch_size):
            with self.track_time("batch"):
                scores = self._score_batch(scorer, batch)
            for doc, score in zip(batch, scores, strict=True):
                self.funnel_in(doc)
                self.funnel_keep(doc)
                self.stat_update("scored" if score is not None else "unscored")
                doc.metadata[self.score_key] = round_score(score) if score is not None else None
                if score is not None:
                    histogram.add(language_of(doc), doc.metadata[self.score_key])
                yield doc
        if self.histogram_dir:
            histogram.save(os.path.join(self.histogram_dir, f"{rank:05d}.json"))


class QualityThresholdFilter(FunnelFilter):
    """Drops documents whose ``quality_score`` is below the threshold (given, or computed from histograms)."""

    def __init__(
        self,
        threshold: float | None = None,
        drop_fraction: float | None = None,
        histogram_dir: str | None = None,
        exclusion_writer: DiskWriter | None = None,
        score_key: str = SCORE_KEY,
    ):
        super().__init__(QUALITY_STEP, exclusion_writer)
        if (threshold is None) == (drop_fraction is None):
            raise ValueError("give exactly one of threshold and drop_fraction")
        if drop_fraction is not None and histogram_dir is None:
            raise ValueError("a drop fraction needs the histograms of a scoring pass (histogram_dir)")
        # one rounding everywhere: the 4 decimals scores are stored with and compared at (distribution.round_score)
        self.threshold = round_score(threshold) if threshold is not None else None
        self.drop_fraction = drop_fraction
        self.histogram_dir = histogram_dir
        self.score_key = score_key

    def resolve_threshold(self) -> float:
        if self.threshold is None:
            histogram = ScoreHistogram.load_folder(self.histogram_dir)
            self.threshold = round_score(histogram.threshold_for_drop_fraction(self.drop_fraction))
            logger.info(
                f"quality threshold {self.threshold:.4f} drops {histogram.fraction_below(self.threshold):.2%} of "
                f"{histogram.total()} scored documents (asked: {self.drop_fraction:.2%})"
            )
        return self.threshold

    def check(self, doc: Document) -> str | None:
        score = doc.metadata.get(self.score_key)
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            return "unscored"
        return "low_quality" if is_below(score, self.threshold) else None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.resolve_threshold()
        yield from super().run(data, rank, world_size)


def calibration_threshold(scorer_dir: str, drop_fraction: float) -> float:
    """A threshold from the scorer's held-out score distribution (``calibration.json``), for one-pass filtering."""
    path = os.path.join(scorer_dir, "calibration.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing; retrain the scorer or pass an explicit threshold")
    return round_score(ScoreHistogram.load(path).threshold_for_drop_fraction(drop_fraction))


def quality_filter_steps(
    scorer_dir: str,
    threshold: float | None = None,
    drop_fraction: float | None = None,
    exclusion_writer: DiskWriter | None = None,
    batch_size: int = 32,
    device: str | None = None,
    histogram_dir: str | None = None,
) -> list[PipelineStep]:
    """Score + filter in one pass, to plug into another pipeline (e.g. after the code-file syntax check).

    ``threshold`` is used as given; ``drop_fraction`` is turned into a threshold with the scorer's calibration
    histogram (see the module docstring). ``histogram_dir`` additionally records the corpus' score histograms.
    """
    if (threshold is None) == (drop_fraction is None):
        raise ValueError("quality_filter_steps needs exactly one of threshold and drop_fraction")
    if threshold is None:
        threshold = calibration_threshold(scorer_dir, drop_fraction)
    return [
        QualityScorer(scorer_dir, batch_size=batch_size, device=device, histogram_dir=histogram_dir),
        QualityThresholdFilter(threshold=threshold, exclusion_writer=exclusion_writer),
    ]


@dataclass
class ScoreConfig:
    """``score`` settings."""

    input_dir: str = field(metadata={"flag": "input", "help": "documents (a code-file pipeline output or its kept/)"})
    scorer_dir: str = field(metadata={"flag": "scorer", "help": "a scorer directory written by train-scorer"})
    output_dir: str = field(metadata={"flag": "output", "help": "writes kept/, excluded/quality/, stats.json, plots"})
    drop_fraction: float | None = field(default=DEFAULT_DROP_FRACTION, metadata={"help": "bottom share dropped"})
    threshold: float | None = field(default=None, metadata={"help": "drop scores below this (one pass)"})
    batch_size: int = 32
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None:
            self.drop_fraction = None
        if self.drop_fraction is None and self.threshold is None:
            raise ValueError("give --drop-fraction or --threshold")
        if self.drop_fraction is not None and not 0.0 <= self.drop_fraction < 1.0:
            raise ValueError(f"--drop-fraction must be in [0, 1) (got {self.drop_fraction})")

    @property
    def histogram_dir(self) -> str:
        return os.path.join(self.output_dir, "histograms")

    @property
    def scored_dir(self) -> str:
        return os.path.join(self.output_dir, "scored")


def score_pipelines(config: ScoreConfig) -> dict[str, list[PipelineStep]]:
    """``{"score": [...], "filter": [...]}`` (two passes) or ``{"score": [...]}`` (one pass, given threshold)."""
    scorer = QualityScorer(
        config.scorer_dir, config.batch_size, config.device, config.dtype, histogram_dir=config.histogram_dir
    )
    excluded = exclusion_writer(config.output_dir, QUALITY_STEP)

    def read_input() -> FaultTolerantJsonlReader:  # every record counted; unreadable ones to excluded/read/
        return FaultTolerantJsonlReader(
            config.input_dir, exclusion_writer=exclusion_writer(config.output_dir, READ_STEP)
        )

    if config.threshold is not None:
        return {
            "score": [
                read_input(),
                scorer,
                QualityThresholdFilter(threshold=config.threshold, exclusion_writer=excluded),
                kept_writer(config.output_dir),
            ]
        }
    return {
        "score": [read_input(), scorer, JsonlWriter(config.scored_dir)],
        "filter": [
            FaultTolerantJsonlReader(config.scored_dir, count_in_funnel=False),  # our own intermediate files
            QualityThresholdFilter(
                drop_fraction=config.drop_fraction, histogram_dir=config.histogram_dir, exclusion_writer=excluded
            ),
            kept_writer(config.output_dir),
        ],
    }
