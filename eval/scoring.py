"""From a model's completion to a verdict: assemble the solution for the prompt mode, build its test, judge it.

A task's documents carry ``specific`` = {kind, benchmark, task_id, mode, ...}; the heavy problem data (tests,
EvalPlus inputs) is looked up here by benchmark and id, so documents stay small.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from eval.benchmarks import Problem, load_benchmark
from eval.execution import (
    Outcome,
    Program,
    brace_body,
    cruxeval_program,
    evalplus_program,
    execute,
    humaneval_program,
    last_code_line,
    mbpp_program,
    multipl_e_program,
)
from eval.fim import line_matches
from eval.needle import recalled
from eval.prompts import base_prompt, cruxeval_answer, defines, extract_code_block, python_imports

# Kinds of check, as documents name them.
EXECUTED_KINDS = ("humaneval", "mbpp", "evalplus", "multipl_e", "cruxeval_input", "cruxeval_output", "lcb")
EXACT_MATCH_KINDS = ("fim", "needle")


@lru_cache(maxsize=32)
def _problems(benchmark: str, data_dir: str | None) -> dict[str, Problem]:
    return {p.task_id: p for p in load_benchmark(benchmark, data_dir)}


def problem_for(specific: dict[str, Any]) -> Problem:
    data_dir = specific.get("data_dir")
    return _problems(specific["benchmark"], os.fspath(data_dir) if data_dir else None)[specific["task_id"]]


def solution_code(problem: Problem, completion: str, mode: str) -> str:
    """The program text a completion stands for: prompt + continuation (base) or the answer's code (instruct)."""
    if mode == "base":
        if problem.benchmark.startswith("mbpp"):
            return base_prompt(problem) + completion
        return problem.prompt + completion
    code = extract_code_block(completion, problem.language)
    if problem.language == "python":
        if problem.entry_point and defines(code, problem.entry_point, "python"):
            return python_imports(problem.prompt) + code
        if problem.benchmark.startswith("mbpp"):
            return code
        return problem.prompt + code
    # MultiPL-E: its tests close the prompt's function, so keep the prompt and splice in the answer's body.
    body = brace_body(code, last_code_line(problem.prompt))
    if body is None:
        return problem.prompt + code
    # Most MultiPL-E test suites start by closing the function (their base stop sequence is "\n}"); JS/TS do not.
    return problem.prompt + body + ("" if problem.test.lstrip().startswith("}") else "\n}\n")


def sample_program(specific: dict[str, Any], completion: str) -> Program:
    kind, mode = specific["kind"], specific["mode"]
    if kind == "lcb":
        from eval.livecodebench import extract_answer_code, livecodebench_program

        return livecodebench_program(
            extract_answer_code(completion), specific["inputs"], specific["outputs"], specific.get("fn_name")
        )
    problem = problem_for(specific)
    if kind in ("cruxeval_input", "cruxeval_output"):
        direction = kind.rsplit("_", 1)[1]
        text = completion if mode == "instruct" else "f(" + completion
        return cruxeval_program(problem, direction, cruxeval_answer(text, direction))
    solution = solution_code(problem, completion, mode)
    if kind == "humaneval":
        return humaneval_program(problem, solution)
    if kind == "mbpp":
        return mbpp_program(problem, solution)
    if kind == "evalplus":
        return evalplus_program(problem, solution)
    if kind == "multipl_e":
        return multipl_e_program(problem, solution)
    raise ValueError(f"unknown check kind {kind!r}")


def exact_match(specific: dict[str, Any], completion: str) -> Outcome:
    if specific["kind"] == "fim":
        ok = line_matches(completion, specific["expected"])
    else:
        ok = recalled(completion, specific["expected"])
    return Outcome(ok, "passed" if ok else "failed", "" if ok else f"expected {specific['expected']!r}")


def judge(samples: Sequence[tuple[dict[str, Any], str]], workers: int | None = None) -> list[Outcome]:
    """Verdicts for (document.specific, completion) pairs, order kept; executed kinds go through the sandbox."""
    outcomes: list[Outcome | None] = [None] * len(samples)
    to_run: list[int] = []
    programs: list[Program] = []
    for index, (specific, completion) in enumerate(samples):
        if specific["kind"] in EXACT_MATCH_KINDS:
            outcomes[index] = exact_match(specific, completion)
            continue
        try:
            programs.append(sample_program(specific, completion))
            to_run.append(index)
        except Exception as error:  # a completion that cannot even be turned into a program fails, with a reason
            outcomes[index] = Outcome(False, "invalid", f"{type(error).__name__}: {error}")
    for index, outcome in zip(to_run, execute(programs, workers=workers), strict=True):
        outcomes[index] = outcome
    return [o if o is not None else Outcome(False, "missing") for o in outcomes]
