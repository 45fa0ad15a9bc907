"""Model-based quality filtering, as three datatrove-native commands (see docs/quality.md).

    python -m datatrove_pipelines.quality annotate --input DOCS --output DIR \\
        (--base-url URL --model NAME | --backend vllm --model PATH | --backend transformers --model PATH) \\
        [--per-language N] [--rating-mode generate|expected]
    python -m datatrove_pipelines.quality train-scorer --annotations DIR --output DIR \\
        [--kind lm --base-model PATH | --kind fasttext]
    python -m datatrove_pipelines.quality score --input DOCS --scorer DIR --output DIR [--drop-fraction 0.1]
    python -m datatrove_pipelines.quality stats {annotate,score} --output DIR   # after a Slurm/Ray run
    python -m datatrove_pipelines.quality stand-in-oracle --port 8000            # a heuristic stand-in server

Every command but stand-in-oracle also reads its flags from a YAML recipe (``--config
recipes/tiny/quality_annotate.yaml``; keys are the flags, flags on the command line win). The flags are the fields of
the settings dataclasses (``AnnotateConfig`` + ``OracleConfig``, ``ScorerTrainingConfig``, ``ScoreConfig``), declared
there once (:mod:`datatrove_pipelines.config_flags`).

DOCS is a folder of documents as the code-file pipeline writes them; if it has a ``kept/`` sub-folder, that is read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from datatrove_pipelines.config_flags import add_dataclass_flags, dataclass_from_args
from datatrove_pipelines.executors import add_executor_arguments, build_executor, executor_config_from_args
from datatrove_pipelines.hub import add_hub_arguments, dataset_card, push_to_hub, write_card
from datatrove_pipelines.stage import add_config_argument, parse_stage_args, resolve_documents_dir
from datatrove_pipelines.stats import format_funnel, write_stats

PROG = "python -m datatrove_pipelines.quality"


def _add_gpu_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpus-per-task", type=int, default=0, help="slurm only: GPUs per task (--gres gpu:N)")


def _executor_config(args: argparse.Namespace):
    config = executor_config_from_args(args)
    if getattr(args, "gpus_per_task", 0):
        config.sbatch_args = {**config.sbatch_args, "gres": f"gpu:{args.gpus_per_task}"}
    return config


# ---------------------------------------------------------------------------------------------------------------------
# annotate
# ---------------------------------------------------------------------------------------------------------------------


def annotate_parser(parser: argparse.ArgumentParser) -> None:
    from datatrove_pipelines.quality.annotate import AnnotateConfig, add_oracle_arguments

    add_config_argument(parser)
    add_dataclass_flags(parser, AnnotateConfig)
    add_oracle_arguments(parser.add_argument_group("oracle"), defaults={"backend": None})
    _add_gpu_argument(parser)
    add_executor_arguments(parser)


def run_annotate(args: argparse.Namespace) -> dict | None:
    from datatrove_pipelines.quality.annotate import (
        AnnotateConfig,
        annotation_pipeline,
        check_endpoint,
        describe,
        oracle_from_args,
    )

    backend = args.backend or ("endpoint" if args.base_url else None)
    if backend is None:
        raise SystemExit("error: pass --base-url URL (an OpenAI-compatible server) or --backend vllm|transformers")
    try:
        oracle = oracle_from_args(
            args,
            backend=backend,
            server_log_folder=os.path.join(args.output, "logs", "server"),
        )
        config = dataclass_from_args(AnnotateConfig, args, input_dir=resolve_documents_dir(args.input), oracle=oracle)
        executor_config = _executor_config(args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    if backend == "endpoint":
        check_endpoint(args.base_url, oracle.api_key)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "annotate_config.json"), "w") as handle:
        json.dump(describe(config), handle, indent=2)
    logging_dir = os.path.join(args.output, "logs", "annotate")
    executor = build_executor(annotation_pipeline(config), executor_config, logging_dir, "quality-annotate")
    executor.run()
    if executor_config.executor != "local":
        print(f"submitted; when done: {PROG} stats annotate --output {args.output}")
        return None
    return _annotate_report(args.output)


def _annotate_report(output_dir: str) -> dict:
    from datatrove_pipelines.quality.annotate import write_annotation_stats

    stats = write_annotation_stats(output_dir, os.path.join(output_dir, "logs", "annotate"))
    print(format_funnel(stats))
    print(f"not sampled (left unrated in the corpus, not excluded): {stats['total']['docs_not_sampled']}")
    print(f"malformed answers (excluded, not scored): {stats['malformed']}")
    for language, counts in stats["ratings"].items():
        print(f"  {language}: " + " ".join(f"{rating}:{n}" for rating, n in counts.items()))
    return stats


# ---------------------------------------------------------------------------------------------------------------------
# train-scorer
# ---------------------------------------------------------------------------------------------------------------------


def train_parser(parser: argparse.ArgumentParser) -> None:
    from datatrove_pipelines.quality.scorer import ScorerTrainingConfig

    add_config_argument(parser)
    add_dataclass_flags(parser, ScorerTrainingConfig)


def run_train(args: argparse.Namespace) -> dict:
    from datatrove_pipelines.quality.scorer import ScorerTrainingConfig, train_scorer

    try:
        warmup = args.warmup if args.warmup < 1 else int(args.warmup)  # a count of steps
        config = dataclass_from_args(ScorerTrainingConfig, args, warmup=warmup)
        metrics = train_scorer(config)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from error
    print(
        f"{metrics['kind']} scorer: held-out MAE {metrics['mae']:.3f} (class-balanced {metrics['class_balanced_mae']:.3f})"
        f" vs constant {metrics['constant_median']} MAE {metrics['constant_median_mae']:.3f};"
        f" n_train={metrics['n_train']} n_eval={metrics['n_eval']} -> {args.output}"
    )
    return metrics


# ---------------------------------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------------------------------

THRESHOLD_FLAGS = ("drop_fraction", "threshold")


def score_parser(parser: argparse.ArgumentParser) -> None:
    from datatrove_pipelines.quality.score_filter import ScoreConfig

    add_config_argument(parser)
    add_dataclass_flags(parser, ScoreConfig, skip=THRESHOLD_FLAGS)
    add_dataclass_flags(parser.add_mutually_exclusive_group(), ScoreConfig, only=THRESHOLD_FLAGS)
    _add_gpu_argument(parser)
    add_executor_arguments(parser)
    add_hub_arguments(parser)


def run_score(args: argparse.Namespace) -> dict | None:
    from datatrove_pipelines.quality.score_filter import ScoreConfig, score_pipelines

    if not os.path.exists(os.path.join(args.scorer, "scorer.json")):
        raise SystemExit(f"error: {args.scorer} is not a scorer directory (no scorer.json); run train-scorer first")
    try:
        config = dataclass_from_args(ScoreConfig, args, input_dir=resolve_documents_dir(args.input))
        executor_config = _executor_config(args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    pipelines = score_pipelines(config)
    executor = None
    for name, pipeline in pipelines.items():
        logging_dir = os.path.join(args.output, "logs", name)
        executor = build_executor(pipeline, executor_config, logging_dir, f"quality-{name}", depends=executor)
    executor.run()  # runs (or submits) the dependencies first
    if executor_config.executor != "local":
        print(f"submitted; when done: {PROG} stats score --output {args.output}")
        return None
    result = _score_report(args.output, config.threshold, config.drop_fraction)
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(args.output, args.push_to_hub, private=args.hub_private)}")
    return result


SCORE_CARD_DESCRIPTION = """Code files after Seed-Coder's model-based quality filter (paper §1): a small scorer, trained on LLM
ratings of readability, modularity, clarity and reusability, scored every file (`metadata.quality_score`, 0-10), and
the files below one global threshold were dropped (by default the bottom 10%). Score quantiles per language are in
`quality_report.json`."""


def _score_report(output_dir: str, threshold: float | None = None, drop_fraction: float | None = None) -> dict:
    from datatrove_pipelines.quality.distribution import ScoreHistogram, quantile_summary, round_score
    from datatrove_pipelines.quality.plots import plot_score_histograms

    logging_dirs = [os.path.join(output_dir, "logs", name) for name in ("score", "filter")]
    stats = write_stats(output_dir, [d for d in logging_dirs if os.path.isdir(d)])
    histogram = ScoreHistogram.load_folder(os.path.join(output_dir, "histograms"))
    if threshold is None and drop_fraction is not None:
        threshold = histogram.threshold_for_drop_fraction(drop_fraction)
    if threshold is not None:
        threshold = round_score(threshold)  # as the filter applied it
    report = {
        "threshold": threshold,
        "drop_fraction_requested": drop_fraction,
        "dropped_fraction": histogram.fraction_below(threshold) if threshold is not None else None,
        "scores": {lang: quantile_summary(histogram, lang) for lang in ["*", *histogram.languages()]},
    }
    with open(os.path.join(output_dir, "quality_report.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    card = dataset_card(
        pretty_name="Quality-filtered code files",
        description=SCORE_CARD_DESCRIPTION,
        stats=stats,
        settings={key: report[key] for key in ("threshold", "drop_fraction_requested", "dropped_fraction")},
    )
    write_card(output_dir, card)
    if histogram.total():
        plot_score_histograms(histogram, os.path.join(output_dir, "score_histograms.png"), threshold)
    print(format_funnel(stats))
    if threshold is not None:
        print(f"threshold {threshold:.4f}; histograms: {os.path.join(output_dir, 'score_histograms.png')}")
    return {**stats, "quality": report}


# ---------------------------------------------------------------------------------------------------------------------
# stats, stand-in oracle, entry point
# ---------------------------------------------------------------------------------------------------------------------


def stats_parser(parser: argparse.ArgumentParser) -> None:
    from datatrove_pipelines.quality.score_filter import ScoreConfig

    add_config_argument(parser)
    parser.add_argument("command", choices=("annotate", "score"))
    parser.add_argument("--output", required=True)
    # score: the threshold or the fraction the run was given (default: the fraction 0.1)
    add_dataclass_flags(parser, ScoreConfig, only=THRESHOLD_FLAGS, defaults={"drop_fraction": None})


def run_stats(args: argparse.Namespace) -> dict:
    if args.command == "annotate":
        return _annotate_report(args.output)
    drop = args.drop_fraction if args.threshold is None else None
    if args.threshold is None and drop is None:
        drop = 0.1
    return _score_report(args.output, args.threshold, drop)


def _run_stand_in(argv: list[str]) -> None:
    """The stand-in server's own command line (``--host --port --malformed-every --hang-after``)."""
    from datatrove_pipelines.quality.stand_in_oracle import main as stand_in_main

    stand_in_main(argv)


# name: (help, flags, runner); stand-in-oracle hands its arguments to the server's own parser
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None, Callable]] = {
    "annotate": ("rate a stratified sample of files with an LLM oracle", annotate_parser, run_annotate),
    "train-scorer": ("train the LM (or fastText) scorer on the annotations", train_parser, run_train),
    "score": ("score documents and drop the bottom fraction", score_parser, run_score),
    "stats": ("(re)write stats.json and reports after a Slurm/Ray run", stats_parser, run_stats),
    "stand-in-oracle": ("serve the heuristic STAND-IN oracle (tests, demos)", None, _run_stand_in),
}


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one command (its flags come from its settings dataclasses)."""
    description, add_flags, _ = COMMANDS[command]
    parser = argparse.ArgumentParser(prog=f"{PROG} {command}", description=description)
    if add_flags is not None:
        add_flags(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (``--help`` lists the commands); each command parses with :func:`command_parser`."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="subcommand", required=True)
    for name, (description, _, _) in COMMANDS.items():
        sub.add_parser(name, help=description, add_help=False)
    return parser


def parse_command(argv: list[str]) -> tuple[str, argparse.Namespace]:
    """(command, its arguments): ``--config`` YAML first, flags on the command line over it."""
    if not argv or argv[0] not in COMMANDS or argv[0] == "stand-in-oracle":
        build_parser().parse_args(argv[:1])  # --help, or argparse's one-line usage error
    return argv[0], parse_stage_args(command_parser(argv[0]), argv[1:])


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "stand-in-oracle":
        return _run_stand_in(argv[1:])
    command, args = parse_command(argv)
    return COMMANDS[command][2](args)


if __name__ == "__main__":
    main(sys.argv[1:])
