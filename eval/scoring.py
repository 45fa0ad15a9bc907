"""From a model's completion to a verdict: assemble the solution for the prompt mode, build its test, judge it.

A task's documents carry ``specific`` = {kind, benchmark, task_id, mode, ...}; the heavy problem data (tests,
EvalPlus inputs) is looked up here by benchmark and id, so documents stay small. Each kind of check has a program
builder registered under its name (:func:`register_program_builder`); a module that adds a kind (LiveCodeBench)
registers its own builder, so this module never imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from eval.benchmarks import Problem, load_benchmark
from eval.execution import Outcome, Program, execute
from eval.fim import line_matches
from eval.needle import recalled
from eval.programs import (
    brace_body,
    cruxeval_program,
    ensure_ground_truth,
    evalplus_program,
    humaneval_program,
    last_code_line,
    mbpp_program,
    multipl_e_program,
)
from eval.prompts import base_prompt, cruxeval_answer, defines, extract_code_block, python_imports

# Kinds judged by comparing text, not by running code.
EXACT_MATCH_KINDS = ("fim", "needle")

ProgramBuilder = Callable[[dict[str, Any], str], Program]
PROGRAM_BUILDERS: dict[str, ProgramBuilder] = {}


def register_program_builder(kind: str) -> Callable[[ProgramBuilder], ProgramBuilder]:
    """Decorator: ``builder(specific, completion) -> Program`` judges documents whose ``specific["kind"]`` is kind."""

    def register(builder: ProgramBuilder) -> ProgramBuilder:
        PROGRAM_BUILDERS[kind] = builder
        return builder

    return register


@lru_cache(maxsize=32)
def _problems(benchmark: str, data_dir: str | None) -> dict[str, Problem]:
    return {p.task_id: p for p in load_benchmark(benchmark, data_dir)}


def problem_for(specific: dict[str, Any]) -> Problem:
    data_dir = specific.get("data_dir")
    return _problems(specific["benchmark"], os.fspath(data_dir) if data_dir else None)[specific["task_id"]]


def solution_code(problem: Problem, completion: str, mode: str) -> str:
    """The program text a completion stands for: prompt + continuation (base) or the answer's code (instruct).

    ``mode="solution"`` (EvalPlus-style given solutions) is assembled as an instruct answer without a code fence.
    """
    if mode == "base":
        if problem.benchmark.startswith("mbpp"):
            return base_prompt(problem) + completion
        return problem.prompt + completion
    code = completion if mode == "solution" else extract_code_block(completion, problem.language)
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


def _cruxeval(specific: dict[str, Any], completion: str) -> Program:
    direction = specific["kind"].rsplit("_", 1)[1]
    text = completion if specific["mode"] == "instruct" else "f(" + completion
    return cruxeval_program(problem_for(specific), direction, cruxeval_answer(text, direction))


def _solution_builder(build: Callable[[Problem, str], Program]) -> ProgramBuilder:
    def builder(specific: dict[str, Any], completion: str) -> Program:
        problem = problem_for(specific)
        mode = "solution" if specific.get("given") == "solution" else specific["mode"]
        return build(problem, solution_code(problem, completion, mode))

    return builder


for _kind, _build in (
    ("humaneval", humaneval_program),
    ("mbpp", mbpp_program),
    ("evalplus", evalplus_program),
    ("multipl_e", multipl_e_program),
):
    register_program_builder(_kind)(_solution_builder(_build))
register_program_builder("cruxeval_input")(_cruxeval)
register_program_builder("cruxeval_output")(_cruxeval)


def sample_program(specific: dict[str, Any], completion: str) -> Program:
    kind = specific["kind"]
    if kind not in PROGRAM_BUILDERS:
        raise ValueError(f"unknown check kind {kind!r}; registered: {', '.join(sorted(PROGRAM_BUILDERS))}")
    return PROGRAM_BUILDERS[kind](specific, completion)


def exact_match(specific: dict[str, Any], completion: str) -> Outcome:
    if specific["kind"] == "fim":
        ok = line_matches(completion, specific["expected"])
    else:
        ok = recalled(completion, specific["expected"])
    return Outcome(ok, "passed" if ok else "failed", "" if ok else f"expected {specific['expected']!r}")


def judge(samples: Sequence[tuple[dict[str, Any], str]], workers: int | None = None) -> list[Outcome]:
    """Verdicts for (document.specific, completion) pairs, order kept; executed kinds go through the sandbox."""
    outcomes: list[Outcome | None] = [None] * len(samples)
    # EvalPlus problems: canonical outputs computed once per problem, all in one parallel sandbox run.
    evalplus = {}
    for specific, _ in samples:
        if specific["kind"] == "evalplus":
            try:
                problem = problem_for(specific)
            except (KeyError, ValueError, OSError):
                continue  # reported per sample below
            evalplus[(problem.benchmark, problem.task_id)] = problem
    ensure_ground_truth(evalplus.values(), workers=workers)
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
