"""Run the Seed-Coder evaluation suite through lighteval's Pipeline, offline, with sandboxed pass@k.

    python -m eval.run --model PATH_OR_ID --tasks humaneval,mbpp --output-dir out/ [--backend transformers|vllm]
        [--base-url http://127.0.0.1:8000] [--mode base|instruct] [--n-samples N] [--limit N] [--data-dir DIR]
    python -m eval.run --model reference --tasks humaneval,cruxeval_output --output-dir out/   # harness self-check
    python -m eval.run --samples samples.jsonl --tasks humaneval --output-dir out/             # given completions

Only our tasks are put into lighteval's registry (its CLI imports every built-in task, and some fetch from the
network at import). Writes ``DIR/results.json`` (task -> metrics), ``DIR/results.md`` (a model run side by side with
the paper's Seed-Coder-8B numbers; given samples and the self-check are not set beside them) and
``DIR/problems/<task>.jsonl`` (per problem: n, correct, each sample's outcome).

Problem selection: ``--task-ids A,B`` evaluates exactly those problems; ``--limit N`` evaluates N problems per task
chosen by lighteval (a seeded random subset, the same on every run, NOT the first N). With ``--samples``, every
selected problem needs at least one sample and every sample id must belong to a selected task (else an error).
A sample passes only if its tests ran to their end (see :mod:`eval.execution` for the verdict rule).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from eval.paper_results import NOTES, PAPER_MODEL, paper_value
from eval.suite import ALL_TASKS, LIVECODEBENCH_TASK, TASK_SPECS, TaskOptions

# Everything heavy (lighteval, torch, transformers) is imported inside functions: --help and argument errors must
# come back at once.

logger = logging.getLogger("eval.run")

DEFAULT_SUITE = tuple(name for name in ALL_TASKS if name != LIVECODEBENCH_TASK)


def _make_pipeline(task_names: list[str], options: TaskOptions, model: Any, limit: int | None, output_dir: Path):
    """A lighteval Pipeline whose registry holds only our tasks and whose rows come from eval.benchmarks."""
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.pipeline import ParallelismManager, PipelineParameters

    from eval.lighteval_adapter import suite_pipeline_class, turn_off_cache_after_init
    from eval.tasks import build_task_configs, task_rows

    configs = {config.name: config for config in build_task_configs(task_names, options)}
    SuitePipeline = suite_pipeline_class(  # noqa: N806 (a class)
        configs, lambda name: task_rows(name, options), hub_tasks=(LIVECODEBENCH_TASK,)
    )

    tracker = EvaluationTracker(output_dir=str(output_dir), save_details=False)
    parameters = PipelineParameters(
        launcher_type=ParallelismManager.NONE, max_samples=limit, bootstrap_iters=0, remove_reasoning_tags=True
    )
    pipeline = SuitePipeline(
        tasks=",".join(task_names), pipeline_parameters=parameters, evaluation_tracker=tracker, model=model
    )
    turn_off_cache_after_init(pipeline)
    return pipeline


def _load_model(args: argparse.Namespace) -> Any:
    from eval import backends

    if args.samples:
        return backends.SamplesModel(args.samples)
    if args.model == "reference":
        return backends.ReferenceModel()
    if args.backend == "vllm" and args.base_url:
        return backends.OpenAICompatibleModel(
            args.base_url, args.model, temperature=args.temperature, top_p=args.top_p, max_length=args.max_context
        )
    if args.backend == "vllm":
        return backends.vllm_model(args.model, args.mode, args.temperature, args.top_p, args.max_context)
    return backends.transformers_model(
        args.model, args.mode, args.temperature, args.top_p, args.batch_size, args.dtype
    )


def _task_options(args: argparse.Namespace, model: Any, task_names: list[str]) -> TaskOptions:
    from eval.fim import SEED_CODER_FIM, find_fim_format

    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None and args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    fim_format = SEED_CODER_FIM
    if "fim_single_line" in task_names and tokenizer is not None:
        fim_format = find_fim_format(tokenizer)  # fails clearly when the model has no FIM tokens
    max_context = args.max_context or (model.max_length if tokenizer is not None else 32768)
    count_tokens = (lambda text: len(tokenizer(text)["input_ids"])) if tokenizer is not None else None
    ks = pass_at_ks(args)
    return TaskOptions(
        mode=args.mode,
        n_samples=args.n_samples,
        ks=ks,
        data_dir=args.data_dir,
        fim_format=fim_format,
        max_context=max_context,
        count_tokens=count_tokens,
        max_new_tokens=args.max_new_tokens,
        workers=args.workers,
        task_ids=frozenset(t.strip() for t in args.task_ids.split(",") if t.strip()) if args.task_ids else None,
    )


def _records(pipeline: Any) -> dict[str, list[dict[str, Any]]]:
    from eval.metrics import judge_of

    records: dict[str, list[dict[str, Any]]] = {}
    for task in pipeline.tasks_dict.values():
        judge = judge_of(task)
        if judge is not None:
            records[task.name] = sorted(judge.records.values(), key=lambda r: str(r["task_id"]))
    return records


def task_name(full_name: str) -> str:
    """``humaneval|0`` or ``humaneval:0`` (lighteval's full names, with the few-shot count) -> ``humaneval``."""
    name = full_name.split("|")[0]
    base, _, suffix = name.rpartition(":")
    return base if base and suffix.isdigit() else name


def summarize(final: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """task -> metrics (fractions), problem counts, and the ids of problems no sample solved."""
    summary: dict[str, dict[str, Any]] = {}
    for full_name, metrics in final.get("results", {}).items():
        name = task_name(full_name)
        if name == "all":
            continue
        problems = records.get(name, [])
        summary[name] = {
            **{key: value for key, value in metrics.items() if not key.endswith("_stderr")},
            "num_problems": len(problems),
            "num_samples": sum(r["n"] for r in problems),
            "num_solved": sum(1 for r in problems if r["correct"] > 0),
            "unsolved": [r["task_id"] for r in problems if r["correct"] == 0],
        }
    return summary


def results_markdown(
    summary: dict[str, dict[str, Any]], mode: str, model_name: str, compare_to_paper: bool = True
) -> str:
    """The results table; the paper's numbers only beside a real model run (never beside given samples)."""
    lines = [f"# Results: {model_name} ({mode} mode)", ""]
    if not compare_to_paper:
        lines += [
            "Scores of given samples or of the reference self-check, not of a model run: the paper's numbers are not "
            "shown beside them.",
            "",
            "| task | metric | score (%) | problems |",
            "|---|---|---|---|",
        ]
        for task, metrics in summary.items():
            metric = "exact_match" if "exact_match" in metrics else "pass@1"
            ours = metrics.get(metric)
            score = "" if ours is None else f"{100 * ours:.1f}"
            lines.append(f"| {task} | {metric} | {score} | {metrics['num_problems']} |")
        return "\n".join(lines) + "\n"
    lines += [
        f"| task | metric | ours (%) | {PAPER_MODEL} (%) | problems | note |",
        "|---|---|---|---|---|---|",
    ]
    for task, metrics in summary.items():
        metric = "exact_match" if "exact_match" in metrics else "pass@1"
        ours = metrics.get(metric)
        paper = paper_value(task, mode)
        lines.append(
            f"| {task} | {metric} | {'' if ours is None else f'{100 * ours:.1f}'} | "
            f"{'–' if paper is None else f'{paper:.1f}'} | {metrics['num_problems']} | {NOTES.get(task, '')} |"
        )
    return "\n".join(lines) + "\n"


def selected_tasks(args: argparse.Namespace) -> tuple[str, ...]:
    names = DEFAULT_SUITE if args.tasks == "all" else tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = [t for t in names if t not in ALL_TASKS]
    if unknown:
        raise UsageError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(ALL_TASKS)}")
    return names


class UsageError(ValueError):
    """Wrong usage, reported as one line (no traceback) before anything heavy runs."""


def pass_at_ks(args: argparse.Namespace) -> tuple[int, ...]:
    """The k of pass@k: ``--k`` (each 1..n), else 1, 10, 100 up to n, and n. Checked before anything runs."""
    if not args.k:
        return tuple(sorted({k for k in (1, 10, 100) if k <= args.n_samples} | {args.n_samples}))
    try:
        ks = tuple(int(k) for k in args.k.split(",") if k.strip())
    except ValueError:
        raise UsageError(f"--k {args.k}: expected comma-separated whole numbers, e.g. 1,10") from None
    wrong = [k for k in ks if not 1 <= k <= args.n_samples]
    if not ks or wrong:
        raise UsageError(f"--k {args.k}: every k must be between 1 and --n-samples ({args.n_samples})")
    return ks


def check_model_path(model: str) -> None:
    """A --model that is meant as a local path must exist; only an ``org/name`` id goes to the Hub."""
    if model == "reference":
        return
    if os.path.isdir(model):
        if not any(os.path.exists(os.path.join(model, name)) for name in ("config.json", "adapter_config.json")):
            raise UsageError(f"--model {model}: a directory without config.json, not a saved model")
        return
    if os.path.exists(model):
        raise UsageError(f"--model {model}: a file, not a model directory (or a Hub id of the form org/name)")
    path = Path(model).expanduser()
    looks_local = (
        model.startswith((".", "/", "~"))
        or "\\" in model
        or model.count("/") != 1
        or model.endswith("/")
        or path.parent.exists()
        and str(path.parent) not in ("", ".")
    )
    if looks_local:
        raise UsageError(f"--model {model}: no such model directory (and not a Hub id of the form org/name)")
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise UsageError(f"--model {model}: not a local directory and not in the Hub cache (HF_HUB_OFFLINE is set)")
    try:  # one quick look-up instead of transformers' minute of retries
        HfApi().model_info(model, timeout=10)
    except RepositoryNotFoundError:
        raise UsageError(f"--model {model}: no such local directory or Hub model") from None
    except Exception as error:  # noqa: BLE001 - any network failure means the same to the user
        raise UsageError(
            f"--model {model}: not a local directory, not in the Hub cache, and the Hub is unreachable "
            f"({type(error).__name__})"
        ) from None


def check_arguments(args: argparse.Namespace) -> tuple[str, ...]:
    """Everything that can be checked before importing lighteval: tasks, model path, samples file and ids."""
    from eval.benchmarks import BENCHMARK_SOURCES, local_benchmark_path, resolve_data_dir
    from eval.fim import problem_id

    task_names = selected_tasks(args)
    try:  # --data-dir, else $SEED_CODER_BENCHMARKS_DIR, else None (the Hub)
        data_dir = resolve_data_dir(args.data_dir)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    args.data_dir = str(data_dir) if data_dir is not None else None
    at_least_one = {
        "--n-samples": args.n_samples,
        "--limit": args.limit,
        "--max-new-tokens": args.max_new_tokens,
        "--max-context": args.max_context,
        "--batch-size": args.batch_size,
        "--workers": args.workers,
    }
    for flag, value in at_least_one.items():
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if not args.temperature >= 0:
        raise UsageError(f"--temperature must be >= 0, got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must lie in (0, 1], got {args.top_p}")
    if data_dir is not None:  # a missing local copy is named now, not after lighteval's imports
        for name in task_names:
            spec = TASK_SPECS.get(name)
            if spec is not None and spec.benchmark in BENCHMARK_SOURCES:
                try:
                    local_benchmark_path(spec.benchmark, data_dir)
                except FileNotFoundError as error:
                    raise UsageError(str(error)) from None
    pass_at_ks(args)
    # Row ids are known without a model for the code and FIM tasks; the needle's depend on the model's window and
    # LiveCodeBench's on its dataset, so with those the samples model checks the ids while and after it answers.
    wanted = {t.strip() for t in args.task_ids.split(",") if t.strip()} if args.task_ids else None
    needed = wanted is not None or args.samples
    known = _row_ids(task_names, args.data_dir) if needed else None
    if wanted is not None and known is not None and wanted - {problem_id(row) for row in known}:
        missing = sorted(wanted - {problem_id(row) for row in known})
        raise UsageError(f"--task-ids: not in the selected tasks: {', '.join(missing[:5])}")
    if args.samples:
        from eval.samples import check_ids, read_samples

        samples = read_samples(args.samples)
        if known is not None:  # with --limit lighteval picks the problems; the samples model checks those
            selected = {row for row in known if wanted is None or problem_id(row) in wanted}
            check_ids(samples, known, selected if args.limit is None else None)
    elif args.backend != "vllm" or not args.base_url:
        check_model_path(args.model)
    return task_names


def _row_ids(task_names: tuple[str, ...], data_dir: str | None) -> set[str] | None:
    """Every row id of the tasks (a code problem's id, a FIM row's ``<problem>/L<line>``); None when a task's ids
    are only known once the model is loaded (the needle) or lighteval has read the dataset (LiveCodeBench)."""
    from eval.benchmarks import load_benchmark

    specs = [TASK_SPECS.get(name) for name in task_names]
    if any(spec is None or spec.kind == "needle" for spec in specs):
        return None
    ids: set[str] = set()
    for spec in specs:
        problems = load_benchmark(spec.benchmark, data_dir)
        if spec.kind == "fim":
            from eval.fim import single_line_examples

            ids.update(example.task_id for example in single_line_examples(problems))
        else:
            ids.update(problem.task_id for problem in problems)
    return ids


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    task_names = check_arguments(args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.n_samples > 1 and args.temperature == 0:
        args.temperature = 0.8
        logger.warning("n_samples > 1: sampling at temperature 0.8 (set --temperature to change)")

    model = _load_model(args)
    task_names = list(task_names)
    skipped: dict[str, str] = {}
    if args.model == "reference" and not args.samples:
        for name in list(task_names):
            spec = TASK_SPECS.get(name)
            if spec is not None and spec.kind == "multipl_e":
                skipped[name] = "no reference solutions in MultiPL-E"
                task_names.remove(name)
    if not task_names:
        raise SystemExit(f"nothing to evaluate ({skipped})")
    options = _task_options(args, model, task_names)

    started = time.time()
    pipeline = _make_pipeline(task_names, options, model, args.limit, output_dir)
    pipeline.evaluate()
    if args.samples:
        _check_every_sample_was_asked(model, args.limit)
    final = pipeline.get_results()
    records = _records(pipeline)
    summary = summarize(final, records)
    result = {
        "model": args.samples or args.model,
        "mode": args.mode,
        "n_samples": args.n_samples,
        "limit": args.limit,
        "wall_time_s": round(time.time() - started, 2),
        "skipped": skipped,
        "tasks": summary,
    }
    if args.model == "reference" and not args.samples:
        result["failed_references"] = {
            task: metrics["unsolved"] for task, metrics in summary.items() if metrics["unsolved"]
        }
    (output_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    compare = not args.samples and args.model != "reference"
    (output_dir / "results.md").write_text(results_markdown(summary, args.mode, str(result["model"]), compare))
    problems_dir = output_dir / "problems"
    problems_dir.mkdir(exist_ok=True)
    for task, task_records in records.items():
        with open(problems_dir / f"{task}.jsonl", "w", encoding="utf-8") as handle:
            for record in task_records:
                handle.write(json.dumps(record) + "\n")
    return result


def _check_every_sample_was_asked(model: Any, limit: int | None) -> None:
    """Samples whose id no task asked for belong to no selected task (an error, as when the ids are checked up
    front), unless --limit left their problems out (a warning)."""
    from eval.samples import SamplesError, unknown_ids_message

    unused = model.unused_ids()
    if not unused:
        return
    if limit is None:
        raise SamplesError(unknown_ids_message(model.samples.path, unused))
    logger.warning(
        "%s: the samples of %d task id(s) were not evaluated (--limit %d chose other problems, or the ids belong to "
        "no selected task): %s",
        model.samples.path,
        len(unused),
        limit,
        ", ".join(sorted(unused)[:5]),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="reference", help="model path or Hub id, or 'reference' (self-check)")
    parser.add_argument("--tasks", required=True, help=f"comma-separated, or 'all'; known: {', '.join(ALL_TASKS)}")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--base-url", default=None, help="vLLM's OpenAI-compatible server (with --backend vllm)")
    parser.add_argument("--mode", choices=("base", "instruct"), default="base")
    parser.add_argument("--n-samples", type=int, default=1, help="samples per problem (pass@k for k <= n)")
    parser.add_argument("--k", default=None, help="comma-separated k values (default: 1, 10, 100 up to n, and n)")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="evaluate N problems per task: a seeded random subset picked by lighteval (not the first N)",
    )
    parser.add_argument("--task-ids", default=None, help="comma-separated problem ids: evaluate exactly these")
    parser.add_argument("--data-dir", default=None, help="local benchmark directory (else the Hub)")
    parser.add_argument(
        "--samples",
        default=None,
        help="JSONL of {task_id, completion} or EvalPlus-style {task_id, solution}: evaluate these instead",
    )
    parser.add_argument("--tokenizer", default=None, help="tokenizer for FIM tokens/needle lengths without a model")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override every task's generation size")
    parser.add_argument(
        "--max-context", type=int, default=None, help="model context (needle lengths); default: model's"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--workers", type=int, default=None, help="parallel sandbox executions")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    from eval.samples import SamplesError

    try:
        result = evaluate(args)
    except (UsageError, SamplesError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except ConnectionError as error:  # the Hub (benchmarks, a model) cannot be reached: say what to do instead
        parser.exit(2, f"{parser.prog}: error: {error} (offline? give local copies with --data-dir DIR)\n")
    print(Path(args.output_dir, "results.md").read_text())
    if result.get("failed_references"):
        print("references that fail:", json.dumps(result["failed_references"])[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
