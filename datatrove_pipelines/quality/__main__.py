"""Model-based quality filtering, as three datatrove-native commands (see docs/quality.md).

    python -m datatrove_pipelines.quality annotate --input DOCS --output DIR \\
        (--base-url URL --model NAME | --backend vllm --model PATH | --backend transformers --model PATH) \\
        [--per-language N] [--rating-mode generate|expected]
    python -m datatrove_pipelines.quality train-scorer --annotations DIR --output DIR \\
        [--kind lm --base-model PATH | --kind fasttext]
    python -m datatrove_pipelines.quality score --input DOCS --scorer DIR --output DIR [--drop-fraction 0.1]
    python -m datatrove_pipelines.quality stats {annotate,score} --output DIR   # after a Slurm/Ray run
    python -m datatrove_pipelines.quality stand-in-oracle --port 8000            # a heuristic stand-in server

DOCS is a folder of documents as the code-file pipeline writes them; if it has a ``kept/`` sub-folder, that is read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from datatrove_pipelines.executors import add_executor_arguments, build_executor, executor_config_from_args
from datatrove_pipelines.hub import add_hub_arguments, dataset_card, push_to_hub, write_card
from datatrove_pipelines.stage import resolve_documents_dir
from datatrove_pipelines.stats import format_funnel, write_stats


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


def _annotate_parser(sub) -> None:
    from datatrove_pipelines.quality.annotate import BACKENDS, RATING_MODES, OracleConfig
    from datatrove_pipelines.quality.rubric import DEFAULT_MAX_CONTENT_CHARS

    defaults = OracleConfig(model="-", base_url="-")
    parser = sub.add_parser("annotate", help="rate a stratified sample of files with an LLM oracle")
    parser.add_argument("--input", required=True, help="documents (a code-file pipeline output or its kept/)")
    parser.add_argument("--output", required=True, help="writes kept/ (rated), excluded/oracle/, stats.json")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="default: endpoint with --base-url")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument(
        "--model", required=True, help="served model name, or Hub id / local path (vllm, transformers)"
    )
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--per-language", type=int, default=10_000, help="files sampled per language (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rating-mode", choices=RATING_MODES, default=defaults.rating_mode)
    parser.add_argument("--max-tokens", type=int, default=defaults.max_tokens, help="answer length limit")
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--parse-retries", type=int, default=defaults.parse_retries, help="re-asks on malformed")
    parser.add_argument("--max-content-chars", type=int, default=DEFAULT_MAX_CONTENT_CHARS)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="requests in flight per task")
    parser.add_argument("--model-max-context", type=int, default=defaults.model_max_context)
    parser.add_argument("--tp", type=int, default=1, help="vllm: tensor parallel size")
    parser.add_argument("--dp", type=int, default=1, help="vllm: data parallel size")
    parser.add_argument("--device", default=None, help="transformers: cpu, cuda, ... (default: cuda if available)")
    parser.add_argument("--dtype", default=None, help="transformers: e.g. bfloat16")
    parser.add_argument("--records-per-chunk", type=int, default=1000, help="checkpoint granularity")
    parser.add_argument("--checkpoints-dir", default=None, help="local folder (default <output>/checkpoints)")
    _add_gpu_argument(parser)
    add_executor_arguments(parser)
    parser.set_defaults(func=run_annotate)


def run_annotate(args: argparse.Namespace) -> dict | None:
    from datatrove_pipelines.quality.annotate import (
        AnnotateConfig,
        OracleConfig,
        annotation_pipeline,
        describe,
    )

    backend = args.backend or ("endpoint" if args.base_url else None)
    if backend is None:
        raise SystemExit("error: pass --base-url URL (an OpenAI-compatible server) or --backend vllm|transformers")
    try:
        oracle = OracleConfig(
            backend=backend,
            model=args.model,
            base_url=args.base_url,
            api_key=os.environ.get(args.api_key_env) or None,
            rating_mode=args.rating_mode,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            parse_retries=args.parse_retries,
            max_content_chars=args.max_content_chars,
            concurrency=args.concurrency,
            model_max_context=args.model_max_context,
            tp=args.tp,
            dp=args.dp,
            device=args.device,
            dtype=args.dtype,
            server_log_folder=os.path.join(args.output, "logs", "server"),
        )
        config = AnnotateConfig(
            input_dir=resolve_documents_dir(args.input),
            output_dir=args.output,
            oracle=oracle,
            per_language=args.per_language,
            seed=args.seed,
            checkpoints_dir=args.checkpoints_dir,
            records_per_chunk=args.records_per_chunk,
        )
        executor_config = _executor_config(args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    if backend == "endpoint":
        from datatrove_pipelines.quality.annotate import check_endpoint

        check_endpoint(args.base_url, oracle.api_key)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "annotate_config.json"), "w") as handle:
        json.dump(describe(config), handle, indent=2)
    logging_dir = os.path.join(args.output, "logs", "annotate")
    executor = build_executor(annotation_pipeline(config), executor_config, logging_dir, "quality-annotate")
    executor.run()
    if executor_config.executor != "local":
        print(f"submitted; when done: python -m datatrove_pipelines.quality stats annotate --output {args.output}")
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


def _train_parser(sub) -> None:
    from datatrove_pipelines.quality.scorer import HEADS, KINDS, POOLINGS, ScorerTrainingConfig

    d = ScorerTrainingConfig(annotations_dir="-", output_dir="-", base_model="-")
    parser = sub.add_parser("train-scorer", help="train the LM (or fastText) scorer on the annotations")
    parser.add_argument("--annotations", required=True, help="the output folder of annotate (reads its kept/)")
    parser.add_argument("--output", required=True, help="the scorer directory to write")
    parser.add_argument("--kind", choices=KINDS, default=d.kind)
    parser.add_argument("--base-model", default=None, help="lm: pretrained causal LM (local path or Hub id)")
    parser.add_argument("--label-field", default=d.label_field, help="rating, or rating_expected")
    parser.add_argument("--eval-fraction", type=float, default=d.eval_fraction)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--max-content-chars", type=int, default=d.max_content_chars)
    parser.add_argument("--max-length", type=int, default=d.max_length, help="lm: tokens per prompt+file")
    parser.add_argument(
        "--head", choices=HEADS, default=d.head, help="lm: pooled, or transformers' sequence-classification"
    )
    parser.add_argument("--pooling", choices=POOLINGS, default=d.pooling)
    parser.add_argument("--epochs", type=float, default=d.epochs)
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
    parser.add_argument("--head-learning-rate", type=float, default=None, help="lm: default --learning-rate")
    parser.add_argument("--freeze-backbone", action="store_true", help="lm: train the head only (linear probe)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--gradient-accumulation-steps", type=int, default=d.gradient_accumulation_steps)
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--warmup", type=float, default=d.warmup, help="fraction of steps (or an int count)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--fasttext-bins", default=d.fasttext_bins)
    parser.add_argument("--fasttext-epochs", type=int, default=d.fasttext_epochs)
    parser.add_argument("--fasttext-lr", type=float, default=d.fasttext_lr)
    parser.add_argument("--fasttext-dim", type=int, default=d.fasttext_dim)
    parser.add_argument("--fasttext-word-ngrams", type=int, default=d.fasttext_word_ngrams)
    parser.add_argument(
        "--fasttext-buckets", type=int, default=d.fasttext_buckets, help="word n-gram hash buckets (0: from the data)"
    )
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> dict:
    from datatrove_pipelines.quality.scorer import ScorerTrainingConfig, train_scorer

    try:
        config = ScorerTrainingConfig(
            annotations_dir=args.annotations,
            output_dir=args.output,
            kind=args.kind,
            base_model=args.base_model,
            label_field=args.label_field,
            eval_fraction=args.eval_fraction,
            seed=args.seed,
            max_content_chars=args.max_content_chars,
            max_length=args.max_length,
            head=args.head,
            pooling=args.pooling,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            head_learning_rate=args.head_learning_rate,
            freeze_backbone=args.freeze_backbone,
            batch_size=args.batch_size,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            weight_decay=args.weight_decay,
            warmup=args.warmup if args.warmup < 1 else int(args.warmup),
            bf16=args.bf16,
            device=args.device,
            fasttext_bins=args.fasttext_bins,
            fasttext_epochs=args.fasttext_epochs,
            fasttext_lr=args.fasttext_lr,
            fasttext_dim=args.fasttext_dim,
            fasttext_word_ngrams=args.fasttext_word_ngrams,
            fasttext_buckets=args.fasttext_buckets,
        )
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


def _score_parser(sub) -> None:
    from datatrove_pipelines.quality.score_filter import DEFAULT_DROP_FRACTION

    parser = sub.add_parser("score", help="score documents and drop the bottom fraction")
    parser.add_argument("--input", required=True, help="documents (a code-file pipeline output or its kept/)")
    parser.add_argument("--scorer", required=True, help="a scorer directory written by train-scorer")
    parser.add_argument("--output", required=True, help="writes kept/, excluded/quality/, stats.json, plots")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--drop-fraction", type=float, default=DEFAULT_DROP_FRACTION, help="bottom share dropped")
    group.add_argument("--threshold", type=float, default=None, help="drop scores below this (one pass)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    _add_gpu_argument(parser)
    add_executor_arguments(parser)
    add_hub_arguments(parser)
    parser.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> dict | None:
    from datatrove_pipelines.quality.score_filter import ScoreConfig, score_pipelines

    if not os.path.exists(os.path.join(args.scorer, "scorer.json")):
        raise SystemExit(f"error: {args.scorer} is not a scorer directory (no scorer.json); run train-scorer first")
    try:
        config = ScoreConfig(
            input_dir=resolve_documents_dir(args.input),
            scorer_dir=args.scorer,
            output_dir=args.output,
            drop_fraction=args.drop_fraction,
            threshold=args.threshold,
            batch_size=args.batch_size,
            device=args.device,
            dtype=args.dtype,
        )
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
        print(f"submitted; when done: python -m datatrove_pipelines.quality stats score --output {args.output}")
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


def _stats_parser(sub) -> None:
    parser = sub.add_parser("stats", help="(re)write stats.json and reports after a Slurm/Ray run")
    parser.add_argument("command", choices=("annotate", "score"))
    parser.add_argument("--output", required=True)
    parser.add_argument("--threshold", type=float, default=None, help="score: the threshold used, if given")
    parser.add_argument("--drop-fraction", type=float, default=None, help="score: the fraction asked for")
    parser.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> dict:
    if args.command == "annotate":
        return _annotate_report(args.output)
    drop = args.drop_fraction if args.threshold is None else None
    if args.threshold is None and drop is None:
        drop = 0.1
    return _score_report(args.output, args.threshold, drop)


def _stand_in_parser(sub) -> None:
    parser = sub.add_parser("stand-in-oracle", help="serve the heuristic STAND-IN oracle (tests, demos)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--malformed-every", type=int, default=0)
    parser.set_defaults(func=lambda a: _run_stand_in(a))


def _run_stand_in(args: argparse.Namespace) -> None:
    from datatrove_pipelines.quality.stand_in_oracle import main as stand_in_main

    stand_in_main(["--host", args.host, "--port", str(args.port), "--malformed-every", str(args.malformed_every)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datatrove_pipelines.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="subcommand", required=True)
    _annotate_parser(sub)
    _train_parser(sub)
    _score_parser(sub)
    _stats_parser(sub)
    _stand_in_parser(sub)
    return parser


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
