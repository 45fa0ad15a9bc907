"""The high-quality subset (paper §4): files recalled by an iteratively trained fastText classifier.

    python -m datatrove_pipelines.high_quality --input SCORED --output DIR [--rounds 3] [--seeds-per-language N]

SCORED are documents with ``metadata.quality_score`` (``python -m datatrove_pipelines.quality score`` adds it). Three
datatrove runs:

1. ``prepare`` (N tasks): files without a score or without text are excluded (``hq_input``); the others get
   ``metadata.comment_ratio`` (tree-sitter comments and docstrings, see :mod:`.comments`) → ``DIR/work/prepared``.
2. ``train`` (1 task): the rounds of :mod:`.rounds` on the prepared files (a seeded sample of ``--max-pool-docs``
   when there are more): seeds per language by quality score and comment ratio, random + hard negatives, fastText
   (dim >= 100) per round, confident recalls join the seeds. Per-round held-out precision/recall go to
   ``stats.json`` (``rounds``) and ``DIR/rounds.png``; the models to ``DIR/models/round<N>.bin`` and ``model.bin``.
3. ``select`` (N tasks): the last round's classifier keeps files with P(high quality) >= ``--threshold``
   (``metadata.hq_probability`` on every file; the others are excluded as ``below_threshold``).

See docs/high_quality.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import itertools
import json
import os
import random
from dataclasses import dataclass, field

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import JsonlReader

from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.funnel import FunnelFilter
from datatrove_pipelines.high_quality.comments import CommentCounter
from datatrove_pipelines.high_quality.rounds import (
    Candidate,
    HighQualityConfig,
    NoSeedsError,
    plot_rounds,
    positive_probabilities,
    reports_as_dicts,
    run_rounds,
)
from datatrove_pipelines.languages import grammar_for, resolve_language
from datatrove_pipelines.stage import (
    DOCUMENT_SUFFIXES,
    StageCard,
    StageOutput,
    StageRun,
    add_stage_arguments,
    documents_reader,
    parse_stage_args,
    resolve_documents_dir,
    run_amended_stage,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.writers import RankFileJsonlWriter, document_dict, exclusion_writer, kept_writer

UPLOAD = ("kept/*", "models/model.bin", "rounds.png", "stats.json", "README.md")  # what --push-to-hub uploads

SCORE_KEY = "quality_score"
SCORE_COMMAND = "python -m datatrove_pipelines.quality score --input DOCS --scorer SCORER --output SCORED"


class MissingQualityScoreError(ValueError):
    """The input has no ``metadata.quality_score``."""


def _score(doc: Document) -> float | None:
    value = doc.metadata.get(SCORE_KEY)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


def language_of(doc: Document) -> str:
    return resolve_language(doc.metadata.get("path"), doc.metadata.get("language")) or "unknown"


def check_scored_input(path: str, sample: int = 200) -> None:
    """A clear error when the first documents carry no ``metadata.quality_score`` (the wrong input folder)."""
    folder = resolve_documents_dir(path)
    seen = 0
    for root, _, names in sorted(os.walk(folder)):
        for name in sorted(names):
            if not name.endswith(DOCUMENT_SUFFIXES) or name.endswith(".zst"):
                continue
            opener = gzip.open if name.endswith(".gz") else open
            try:  # careless input (bad records, a truncated archive) is the reader's to count, not a crash here
                with opener(os.path.join(root, name), "rt", encoding="utf-8", errors="replace") as handle:
                    for line in itertools.islice(handle, sample - seen):
                        seen += 1
                        try:
                            metadata = json.loads(line).get("metadata")
                        except (ValueError, AttributeError):
                            continue
                        if isinstance(metadata, dict) and _score(Document("", "", metadata=metadata)) is not None:
                            return
            except (OSError, EOFError):
                continue
            if seen >= sample:
                break
    raise MissingQualityScoreError(
        f"documents under {folder} have no metadata.{SCORE_KEY} (checked {seen}); add it first with: {SCORE_COMMAND}"
    )


class ScoredInputFilter(FunnelFilter):
    """Excludes files without a quality score or without text; adds ``metadata.comment_ratio``."""

    def __init__(self, exclusion_writer=None):
        super().__init__("hq_input", exclusion_writer)
        self.comments = CommentCounter()

    def check(self, doc: Document) -> str | None:
        if _score(doc) is None:
            return "no_quality_score"
        if not doc.text or not doc.text.strip():
            return "empty_text"
        language = language_of(doc)
        doc.metadata["comment_ratio"] = round(
            self.comments.ratio(doc.text, grammar_for(language, doc.metadata.get("path"))), 4
        )
        return None


@dataclass
class HighQualityStageConfig:
    input: str
    output_dir: str
    hq: HighQualityConfig = field(default_factory=HighQualityConfig)
    max_pool_docs: int = 500_000
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None
    hub_private: bool = False

    def __post_init__(self) -> None:
        if self.max_pool_docs < 1:
            raise ValueError(f"--max-pool-docs must be at least 1 (got {self.max_pool_docs})")

    @property
    def prepared_dir(self) -> str:
        return os.path.join(self.output_dir, "work", "prepared")

    @property
    def models_dir(self) -> str:
        return os.path.join(self.output_dir, "models")

    @property
    def rounds_path(self) -> str:
        return os.path.join(self.output_dir, "work", "rounds.json")


def read_candidates(folder: str, limit: int, seed: int, max_chars: int) -> list[Candidate]:
    """The prepared files as candidates; a seeded reservoir sample of ``limit`` when there are more. Only the first
    ``max_chars`` characters are kept (all fastText sees), so memory is bounded by ``limit × max_chars``."""
    reader = JsonlReader(folder, glob_pattern="*.jsonl", compression=None)
    sample: list[Candidate] = []
    rng = random.Random(seed)
    for count, doc in enumerate(reader.run(rank=0, world_size=1)):
        candidate = Candidate(
            id=str(doc.id),
            language=language_of(doc),
            text=doc.text[:max_chars],
            quality_score=float(doc.metadata[SCORE_KEY]),
            comment_ratio=float(doc.metadata.get("comment_ratio", 0.0)),
        )
        if len(sample) < limit:
            sample.append(candidate)
        else:
            slot = rng.randrange(count + 1)
            if slot < limit:
                sample[slot] = candidate
    return sample


class TrainRoundsStep(PipelineStep):
    """The single-task run: all rounds, the models and ``work/rounds.json``."""

    type = "🤖 - TRAIN"
    name = "hq_rounds"

    def __init__(self, config: HighQualityStageConfig):
        super().__init__()
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        config = self.config
        candidates = read_candidates(config.prepared_dir, config.max_pool_docs, config.hq.seed, config.hq.max_chars)
        result = run_rounds(candidates, config.hq, config.models_dir)
        with open(config.rounds_path, "w") as handle:
            json.dump(
                {"seeds": result.seeds, "candidates": len(candidates), "rounds": reports_as_dicts(result)}, handle
            )
        yield from ()


class HighQualityFilter(FunnelFilter):
    """Keeps files the final classifier gives P(high quality) >= threshold; sets ``metadata.hq_probability``."""

    def __init__(self, model_path: str, config: HighQualityConfig, exclusion_writer=None):
        super().__init__("high_quality", exclusion_writer, batch_size=256)
        self.model_path = model_path
        self.config = config
        self._model = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    def check(self, doc: Document) -> str | None:
        return self.check_batch([doc])[0]

    def check_batch(self, batch: list[Document]) -> list[str | None]:
        if self._model is None:
            from datatrove_pipelines.fasttext_training import load_model

            self._model = load_model(self.model_path)
        candidates = [Candidate(str(d.id), language_of(d), d.text, 0.0, 0.0) for d in batch]
        reasons = []
        for doc, p in zip(batch, positive_probabilities(self._model, candidates, self.config.max_chars), strict=True):
            doc.metadata["hq_probability"] = round(p, 4)
            reasons.append(None if p >= self.config.threshold else "below_threshold")
        return reasons


def stage_runs(config: HighQualityStageConfig) -> list[StageRun]:
    out = config.output_dir
    prepare = [
        documents_reader(config.input),
        ScoredInputFilter(exclusion_writer(out, "hq_input")),
        RankFileJsonlWriter(
            config.prepared_dir, output_filename="${rank}.jsonl", compression=None, adapter=document_dict
        ),
    ]
    select = [
        JsonlReader(config.prepared_dir, glob_pattern="*.jsonl", compression=None),
        HighQualityFilter(
            os.path.join(config.models_dir, "model.bin"), config.hq, exclusion_writer(out, "high_quality")
        ),
        kept_writer(out),
    ]
    return [
        StageRun("prepare", prepare),
        StageRun("train", [TrainRoundsStep(config)], 1),
        StageRun("select", select),
    ]


CARD_DESCRIPTION = """A high-quality subset of scored code files, selected as in Seed-Coder (paper §4): seeds per language
by model quality score and comment/docstring ratio, a fastText classifier trained against random and hard negatives
(high score without comments/docstrings; recalls with a low score) over several rounds, each adding its confident
recalls to the seeds; the last classifier keeps the files it recalls (`metadata.hq_probability`)."""


def run_high_quality(config: HighQualityStageConfig, command: str | None = None) -> dict | None:
    check_scored_input(config.input)
    settings = dataclasses.asdict(config.hq) | {"max_pool_docs": config.max_pool_docs}
    card = StageCard("High-quality code subset", CARD_DESCRIPTION, settings)

    def add_rounds(stats: dict, output: StageOutput) -> None:
        with open(config.rounds_path) as handle:
            rounds = json.load(handle)
        stats.update(rounds)
        plot_rounds(rounds["rounds"], os.path.join(config.output_dir, "rounds.png"))

    return run_amended_stage(stage_runs(config), config, card, command, "high_quality", add_rounds, UPLOAD)


def parse_args(argv: list[str] | None = None) -> HighQualityStageConfig:
    defaults = HighQualityConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(parser, input_help="scored documents (with metadata.quality_score), or a run folder")
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--seeds-per-language", type=int, default=defaults.seeds_per_language)
    parser.add_argument("--comment-weight", type=float, default=defaults.comment_weight)
    parser.add_argument("--min-comment-ratio", type=float, default=defaults.min_comment_ratio)
    parser.add_argument("--negatives-per-positive", type=float, default=defaults.negatives_per_positive)
    parser.add_argument("--heldout-fraction", type=float, default=defaults.heldout_fraction)
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--confident", type=float, default=defaults.confident)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--dim", type=int, default=defaults.dim)
    parser.add_argument(
        "--max-pool-docs",
        type=int,
        default=HighQualityStageConfig.max_pool_docs,
        help="files the rounds train and recall on",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parse_stage_args(parser, argv)
    try:
        hq = HighQualityConfig(
            rounds=args.rounds,
            seeds_per_language=args.seeds_per_language,
            comment_weight=args.comment_weight,
            min_comment_ratio=args.min_comment_ratio,
            negatives_per_positive=args.negatives_per_positive,
            heldout_fraction=args.heldout_fraction,
            threshold=args.threshold,
            confident=args.confident,
            epochs=args.epochs,
            dim=args.dim,
            seed=args.seed,
        )
        return HighQualityStageConfig(
            input=args.input,
            output_dir=args.output,
            hq=hq,
            max_pool_docs=args.max_pool_docs,
            **stage_config_fields(args),
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> None:
    errors = (MissingQualityScoreError, NoSeedsError)
    stats = stage_main("datatrove_pipelines.high_quality", argv, parse_args, run_high_quality, errors)
    if stats is not None:
        for report in stats["rounds"]:
            print(
                f"round {report['round']}: {report['positives']} positives, held-out precision "
                f"{report['precision']:.3f} recall {report['recall']:.3f} f1 {report['f1']:.3f}"
            )


if __name__ == "__main__":
    main()
