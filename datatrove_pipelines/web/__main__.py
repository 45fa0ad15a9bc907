"""Code-related web data (paper §3), as two datatrove-native commands (see docs/web.md).

    python -m datatrove_pipelines.web train-recall --input WARCS_OR_HTML [...] --output DIR \\
        --base-url URL --model NAME [--judge-sample N] [--rounds R] [--target-recall 0.99]
    python -m datatrove_pipelines.web run --input WARCS_OR_HTML [...] --output DIR --recall-model DIR \\
        (--base-url URL --model NAME | --no-quality-score) [--categories web_categories.yaml]
    python -m datatrove_pipelines.web stand-in-judge --port 8000    # a heuristic stand-in LLM server
    python -m datatrove_pipelines.web sample-warc --output DIR      # WARC files of pages built from local documents

Both take ``--config FILE.yaml`` (flags as keys; see recipes/tiny/web.yaml), the executor flags and the Hub flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from datatrove_pipelines.decontamination import add_decontamination_arguments
from datatrove_pipelines.stage import (
    add_stage_arguments,
    command_line,
    parse_stage_args,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.stats import format_funnel

COMMANDS = ("train-recall", "run", "stand-in-judge", "sample-warc")


def _common(parser: argparse.ArgumentParser) -> None:
    # nargs="+" without action="extend": a command-line --input replaces the recipe's, it does not add to it
    add_stage_arguments(parser, input_help="WARC/WET files, HTML files, or folders of them", input_nargs="+")
    from datatrove_pipelines.web.extract import ExtractionConfig

    parser.add_argument("--extraction-timeout", type=float, default=ExtractionConfig.timeout, help="seconds per page")
    parser.add_argument(
        "--min-inline-code",
        type=int,
        default=ExtractionConfig.min_inline_code,
        help="inline <code> elements that make the rule fire",
    )


def _llm_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    """The quality stage's oracle flags (declared once, on ``OracleConfig``); ``--model`` is optional here because
    ``run --no-quality-score`` needs no LLM (the config's own check names it when a command does)."""
    from datatrove_pipelines.quality.annotate import add_oracle_arguments

    group = parser.add_argument_group(f"the {role} LLM (the quality stage's backends)")
    add_oracle_arguments(group, defaults={"model": None})


def _oracle(args: argparse.Namespace):
    from datatrove_pipelines.quality.annotate import oracle_from_args

    return oracle_from_args(args, model=args.model or "")


def _check_llm(oracle) -> None:
    """Fail fast with one line when the endpoint answers nothing (the quality CLI's check): otherwise datatrove's
    runner retries for many minutes, after the whole extraction, before giving up."""
    from datatrove_pipelines.quality.annotate import check_endpoint

    if oracle is not None and oracle.backend == "endpoint":
        check_endpoint(oracle.base_url, oracle.api_key)


def _extraction(args: argparse.Namespace):
    from datatrove_pipelines.web.extract import ExtractionConfig

    return ExtractionConfig(timeout=args.extraction_timeout, min_inline_code=args.min_inline_code)


def train_recall_parser() -> argparse.ArgumentParser:
    from datatrove_pipelines.web.recall import FastTextSettings
    from datatrove_pipelines.web.training import RecallTrainConfig

    parser = argparse.ArgumentParser(
        prog="python -m datatrove_pipelines.web train-recall",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser)
    _llm_arguments(parser, "judge")
    defaults = RecallTrainConfig(inputs=["-"], output_dir="-", judge=None)  # type: ignore[arg-type]
    parser.add_argument("--judge-sample", type=int, default=defaults.judge_sample, help="pages without markup judged")
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--per-round", type=int, default=defaults.per_round, help="confident recalls judged per round")
    parser.add_argument("--confident", type=float, default=defaults.confident)
    parser.add_argument("--target-recall", type=float, default=defaults.target_recall)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--dim", type=int, default=FastTextSettings.dim)
    parser.add_argument("--epoch", type=int, default=FastTextSettings.epoch)
    parser.add_argument("--bucket", type=int, default=FastTextSettings.bucket, help="fastText word n-gram buckets")
    return parser


def train_recall_main(argv: list[str]) -> None:
    from datatrove_pipelines.web.recall import FastTextSettings
    from datatrove_pipelines.web.training import RecallTrainConfig, train_recall

    parser = train_recall_parser()
    args = parse_stage_args(parser, argv)
    try:
        config = RecallTrainConfig(
            inputs=args.input,
            output_dir=args.output,
            judge=_oracle(args),
            judge_sample=args.judge_sample,
            validation_fraction=args.validation_fraction,
            rounds=args.rounds,
            per_round=args.per_round,
            confident=args.confident,
            target_recall=args.target_recall,
            seed=args.seed,
            fasttext=FastTextSettings(dim=args.dim, epoch=args.epoch, bucket=args.bucket, seed=args.seed),
            extraction=_extraction(args),
            **stage_config_fields(args),
        )
    except ValueError as error:
        parser.error(str(error))
    _check_llm(config.judge)
    stats = train_recall(config, command_line("datatrove_pipelines.web", ["train-recall", *argv]))
    print(format_funnel(stats))
    for result in stats["recall"]["rounds"]:
        print(
            f"round {result['round']}: threshold {result['threshold']:.4f} recall {result['recall']:.3f} "
            f"precision {result['precision']:.3f} (train {result['train_pages']} pages)"
        )


def recall_config_from(path: str | None, threshold: float | None):
    """RecallConfig from ``--recall-model`` (a train-recall output folder or a .bin) and ``--recall-threshold``."""
    from datatrove_pipelines.web.recall import RecallConfig
    from datatrove_pipelines.web.training import MODEL_FILE, RECALL_FILE

    if path is None:
        return RecallConfig(model_path=None)
    model_path, recall_file = path, None
    if os.path.isdir(path):
        model_path, recall_file = os.path.join(path, MODEL_FILE), os.path.join(path, RECALL_FILE)
    if not os.path.isfile(model_path):
        raise ValueError(f"no recall model at {model_path} (run train-recall first)")
    if threshold is None and recall_file and os.path.isfile(recall_file):
        with open(recall_file) as handle:
            threshold = float(json.load(handle)["threshold"])
    return RecallConfig(model_path=os.path.abspath(model_path), threshold=0.5 if threshold is None else threshold)


def run_parser() -> argparse.ArgumentParser:
    from datatrove_pipelines.web.heuristics import HeuristicsConfig

    parser = argparse.ArgumentParser(
        prog="python -m datatrove_pipelines.web run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser)
    _llm_arguments(parser, "quality scorer")
    parser.add_argument(
        "--recall-model", default=None, help="train-recall output folder (or its .bin); none: rule only"
    )
    parser.add_argument("--recall-threshold", type=float, default=None, help="default: the one in recall.json")
    parser.add_argument("--categories", default=None, help="category rules YAML (default: the built-in rules)")
    parser.add_argument("--no-quality-score", action="store_true", help="skip the LLM quality score")
    parser.add_argument("--min-words", type=int, default=HeuristicsConfig.min_words)
    add_decontamination_arguments(parser)
    return parser


def run_config(argv: list[str]):
    """The WebRunConfig of ``run``'s flags."""
    from datatrove_pipelines.decontamination import DecontaminationConfig
    from datatrove_pipelines.web.categories import CategoryRules, default_rules
    from datatrove_pipelines.web.heuristics import HeuristicsConfig
    from datatrove_pipelines.web.pipeline import WebRunConfig

    parser = run_parser()
    args = parse_stage_args(parser, argv)
    try:
        if not args.no_quality_score and not args.model:
            raise ValueError("the quality score needs an LLM: pass --model (and --base-url), or --no-quality-score")
        config = WebRunConfig(
            inputs=args.input,
            output_dir=args.output,
            extraction=_extraction(args),
            recall=recall_config_from(args.recall_model, args.recall_threshold),
            heuristics=HeuristicsConfig(min_words=args.min_words),
            categories=CategoryRules.from_yaml(args.categories) if args.categories else default_rules(),
            scorer=None if args.no_quality_score else _oracle(args),
            decontamination=DecontaminationConfig(benchmarks_dir=args.benchmarks),
            decontaminate=not args.no_decontamination,
            **stage_config_fields(args),
        )
    except (ValueError, OSError) as error:
        parser.error(str(error))
    _check_llm(config.scorer)
    return config


def run_main(argv: list[str]) -> None:
    from datatrove_pipelines.web.pipeline import run_web

    stage_main("datatrove_pipelines.web", argv, run_config, run_web, command_prefix=["run"])


def stand_in_main(argv: list[str]) -> None:
    from datatrove_pipelines.web.stand_in_judge import serve

    parser = argparse.ArgumentParser(prog="python -m datatrove_pipelines.web stand-in-judge")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args(argv)
    serve(args.host, args.port)


def sample_warc_main(argv: list[str]) -> None:
    from datatrove_pipelines.web.sample_pages import bad_pages, licence_pages, readme_pages, stdlib_pages, write_warc

    parser = argparse.ArgumentParser(prog="python -m datatrove_pipelines.web sample-warc")
    parser.add_argument("--output", required=True, help="folder for pages-0.warc.gz and pages-1.warc")
    parser.add_argument("--limit", type=int, default=None, help="at most this many pages of each kind")
    args = parser.parse_args(argv)
    pages = [*readme_pages(limit=args.limit), *stdlib_pages(limit=args.limit), *licence_pages(limit=args.limit)]
    os.makedirs(args.output, exist_ok=True)
    first = write_warc(os.path.join(args.output, "pages-0.warc.gz"), pages[0::2] + bad_pages())
    second = write_warc(os.path.join(args.output, "pages-1.warc"), pages[1::2])
    print(f"wrote {first + second} WARC records to {args.output}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] in ("-h", "--help"):
            print(__doc__)
            return
        raise SystemExit(f"usage: python -m datatrove_pipelines.web {{{','.join(COMMANDS)}}} ... (see --help)")
    command, rest = argv[0], argv[1:]
    handlers = {
        "train-recall": train_recall_main,
        "run": run_main,
        "stand-in-judge": stand_in_main,
        "sample-warc": sample_warc_main,
    }
    handlers[command](rest)


if __name__ == "__main__":
    main()
