"""The Seed-Coder evaluation suite as lighteval custom tasks.

``build_task_configs(TaskOptions(...))`` returns ``LightevalTaskConfig`` objects whose rows come from
:func:`eval.benchmarks.load_benchmark` (Hub or ``--data-dir``), whose prompt function formats a row for the chosen
mode (base completion or instruct chat), and whose metrics execute samples in the sandbox (:mod:`eval.metrics`).
There is no static ``TASKS_TABLE``: the configs depend on the run (mode, n, the model's FIM tokens and context
length), and lighteval's CLI imports every built-in task and fails offline, so the suite runs through
``python -m eval.run``, which registers only these configs in lighteval's Registry.
"""

from __future__ import annotations

import os
from typing import Any

from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc

from eval.benchmarks import Problem, load_benchmark
from eval.fim import problem_id, single_line_examples
from eval.metrics import SampleJudge, code_metrics
from eval.needle import build_examples
from eval.prompts import (
    CRUXEVAL_STOP_SEQUENCES,
    base_prompt,
    cruxeval_prompt,
    instruct_prompt,
    stop_sequences,
)
from eval.suite import ALL_TASKS, LIVECODEBENCH_TASK, TASK_SPECS, TaskOptions, TaskSpec

# ---------------------------------------------------------------------------------------------------------------------
# Rows: one dict per document, with the query already formatted and the reference completion (if any).


def _reference_completion(problem: Problem, spec: TaskSpec, mode: str) -> str | None:
    """What a perfect model would answer in this mode (for the ``--model reference`` self-check)."""
    if spec.kind in ("cruxeval_input", "cruxeval_output"):
        raw = problem.raw
        if mode == "instruct":
            return f"[ANSWER]\nassert f({raw['input']}) == {raw['output']}\n[/ANSWER]"
        return f"{raw['input']}) == {raw['output']}\n[/ANSWER]"
    if not problem.canonical_solution:
        return None  # MultiPL-E ships no solutions
    fence = "python" if problem.language == "python" else problem.language
    if spec.kind == "evalplus" and problem.benchmark == "mbpp_plus":
        code = problem.canonical_solution  # a complete function
        return f"```{fence}\n{code}\n```" if mode == "instruct" else code
    if problem.benchmark.startswith("mbpp"):
        code = problem.canonical_solution
        return f"```{fence}\n{code}\n```" if mode == "instruct" else code
    if mode == "instruct":
        return f"```{fence}\n{problem.prompt}{problem.canonical_solution}\n```"
    return problem.canonical_solution


def _problem_rows(spec: TaskSpec, options: TaskOptions) -> list[dict[str, Any]]:
    problems = load_benchmark(spec.benchmark, options.data_dir)
    mode = options.mode
    rows = []
    for problem in problems:
        if spec.kind in ("cruxeval_input", "cruxeval_output"):
            query = cruxeval_prompt(problem, spec.kind.rsplit("_", 1)[1], instruct=mode == "instruct")
        else:
            query = instruct_prompt(problem) if mode == "instruct" else base_prompt(problem)
        rows.append(
            {
                "query": query,
                "reference": _reference_completion(problem, spec, mode),
                "specific": {
                    "kind": spec.kind,
                    "benchmark": spec.benchmark,
                    "task_id": problem.task_id,
                    "mode": mode,
                    "data_dir": os.fspath(options.data_dir) if options.data_dir else None,
                },
            }
        )
    return rows


def _fim_rows(spec: TaskSpec, options: TaskOptions) -> list[dict[str, Any]]:
    problems = load_benchmark("humaneval", options.data_dir)
    return [
        {
            "query": options.fim_format.prompt(example.prefix, example.suffix),
            "reference": example.middle,
            "specific": {"kind": "fim", "task_id": example.task_id, "mode": "base", "expected": example.middle},
        }
        for example in single_line_examples(problems)
    ]


def _needle_rows(spec: TaskSpec, options: TaskOptions) -> list[dict[str, Any]]:
    return [
        {
            "query": example.prompt,
            "reference": example.answer,
            "specific": {
                "kind": "needle",
                "task_id": example.task_id,
                "mode": "base",
                "expected": example.answer,
                "context_tokens": example.context_tokens,
                "depth": example.depth,
            },
        }
        for example in build_examples(options.max_context, options.count_tokens)
    ]


def task_rows(name: str, options: TaskOptions) -> list[dict[str, Any]]:
    """All rows of a task, or only those of ``options.task_ids`` (matched by problem id)."""
    spec = TASK_SPECS[name]
    if spec.kind == "fim":
        rows = _fim_rows(spec, options)
    elif spec.kind == "needle":
        rows = _needle_rows(spec, options)
    else:
        rows = _problem_rows(spec, options)
    if options.task_ids is not None:
        rows = [row for row in rows if problem_id(str(row["specific"]["task_id"])) in options.task_ids]
    return rows


def row_to_doc(row: dict[str, Any], task_name: str) -> Doc:
    """lighteval prompt function: the query as formatted for the mode; the reference completion as the gold."""
    return Doc(
        task_name=task_name,
        query=row["query"],
        choices=[row["reference"] or ""],
        gold_index=0,
        specific={**row["specific"], "has_reference": row["reference"] is not None},
    )


def _stop_sequences(spec: TaskSpec, options: TaskOptions) -> list[str]:
    if spec.kind == "fim" or spec.kind == "needle":
        return ["\n"]
    if spec.kind.startswith("cruxeval"):
        return [] if options.mode == "instruct" else list(CRUXEVAL_STOP_SEQUENCES)
    if options.mode == "instruct":
        return []  # chat answers end at EOS; the code block is extracted afterwards
    first = load_benchmark(spec.benchmark, options.data_dir)[0]
    return list(stop_sequences(first))


def build_task_config(name: str, options: TaskOptions) -> LightevalTaskConfig:
    if name == LIVECODEBENCH_TASK:
        from eval.livecodebench import livecodebench_config

        return livecodebench_config(options)
    if name not in TASK_SPECS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(ALL_TASKS)}")
    spec = TASK_SPECS[name]
    n = 1 if spec.exact_match else options.n_samples
    ks = [k for k in options.ks if k <= n] or [1]
    metric_name = "exact_match" if spec.exact_match else "pass@{k}"
    generation_size = options.max_new_tokens or (spec.generation_size * (2 if options.mode == "instruct" else 1))
    return LightevalTaskConfig(
        name=name,
        prompt_function=row_to_doc,
        hf_repo=f"seed-coder-recipes/{spec.benchmark}",  # informational: rows come from eval.benchmarks
        hf_subset="default",
        hf_avail_splits=["train", "test"],  # "train" only silences a few-shot warning; 0-shot
        evaluation_splits=["test"],
        metrics=code_metrics(ks if not spec.exact_match else [1], SampleJudge(options.workers), name=metric_name),
        generation_size=generation_size,
        stop_sequence=_stop_sequences(spec, options),
        num_samples=[n],
        version=1,
    )


def build_task_configs(names: list[str], options: TaskOptions) -> list[LightevalTaskConfig]:
    return [build_task_config(name, options) for name in names]
