"""Test programs run in the real sandbox: EvalPlus-style differential testing, batched CRUXEval, MultiPL-E."""

from __future__ import annotations

import pytest

from eval.benchmarks import load_benchmark
from eval.execution import Program, execute
from eval.programs import cruxeval_program, evalplus_program, multipl_e_program
from eval.scoring import solution_code


def _problem(benchmark: str, task_id: str, data_dir):
    return next(p for p in load_benchmark(benchmark, data_dir) if p.task_id == task_id)


def test_evalplus_harness_checks_plus_inputs_and_float_tolerance(benchmarks_dir):
    problem = _problem("humaneval_plus", "HumanEval/4", benchmarks_dir)  # mean_absolute_deviation, floats
    exact = problem.prompt + problem.canonical_solution
    # Within EvalPlus's float tolerance (1e-6 enforced for float outputs): passes.
    nudged = exact.replace(
        "return sum(abs(x - mean) for x in numbers) / len(numbers)",
        "return sum(abs(x - mean) for x in numbers) / len(numbers) + 1e-9",
    )
    assert nudged != exact
    # Correct on the original HumanEval tests but wrong on an edge case only plus inputs contain: fails.
    far_off = nudged.replace("+ 1e-9", "+ (1e-3 if len(numbers) > 6 else 0)")
    outcomes = execute([evalplus_program(problem, code) for code in (exact, nudged, far_off)], workers=2)
    assert [o.passed for o in outcomes] == [True, True, False]
    assert "mismatch" in outcomes[2].detail


def test_evalplus_mbpp_inputs_are_deserialised(benchmarks_dir):
    problem = _problem("mbpp_plus", "Mbpp/2", benchmarks_dir)  # tuple inputs, set-equality oracle
    reordered = "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n"
    wrong = "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n"
    outcomes = execute([evalplus_program(problem, reordered), evalplus_program(problem, wrong)], workers=2)
    assert [o.passed for o in outcomes] == [True, False]


def test_batched_programs_keep_per_program_results_when_the_batch_dies(benchmarks_dir):
    problem = load_benchmark("cruxeval", benchmarks_dir)[0]
    good = cruxeval_program(problem, "output", problem.raw["output"])
    bad = cruxeval_program(problem, "output", "None")
    killer = Program("python", "import os\nos._exit(0)\n", timeout_s=5.0, batchable=True)  # ends the shared process
    hang = Program("python", "while True:\n    pass\n", timeout_s=1.0, batchable=True)
    programs = [good, bad, killer, good, hang, good]
    outcomes = execute(programs, workers=2, batch_size=6)
    passed = [o.passed for o in outcomes]
    assert passed[0] and not passed[1] and passed[3] and passed[5]
    assert not passed[4] and outcomes[4].status == "timeout"
    # os._exit(0) inside a shared interpreter ends the batch; re-run alone it exits 0 before the end marker: failed
    assert outcomes[2].status == "failed" and "end marker" in outcomes[2].detail


def test_multiline_cruxeval_predictions_are_rejected(benchmarks_dir):
    problem = load_benchmark("cruxeval", benchmarks_dir)[0]
    injected = cruxeval_program(problem, "output", "1\nimport sys; sys.exit(0)")
    assert execute([injected])[0].passed is False


@pytest.mark.parametrize(
    ("short", "completion"),
    [
        ("js", "    return string.length;\n}\n"),
        ("cpp", "    return string.size();\n}\n"),
        ("sh", '    echo -n "$1" | wc -c\n}\n'),
    ],
)
def test_multipl_e_programs_run_in_their_language(benchmarks_dir, short, completion):
    from eval.sandbox import available_languages

    problem = _problem(f"multipl_e_{short}", "HumanEval_23_strlen", benchmarks_dir)
    if problem.language not in available_languages():
        pytest.skip(f"{problem.language} toolchain not installed")
    # Most MultiPL-E tests close the function themselves (completions stop before the brace); JS's do not.
    body = completion if not problem.test.lstrip().startswith("}") else completion.rsplit("}", 1)[0]
    right = multipl_e_program(problem, problem.prompt + body)
    wrong = multipl_e_program(
        problem,
        problem.prompt
        + body.replace("length", "length + 1").replace("size()", "size() + 1").replace("wc -c", "wc -l"),
    )
    # The instruct path: a whole function in a code block is spliced into the prompt the same way.
    answer = f"Sure:\n```{problem.language}\n{problem.prompt.splitlines()[-1]}\n{completion.rsplit('}', 1)[0]}}}\n```"
    spliced = multipl_e_program(problem, solution_code(problem, answer, "instruct"))
    outcomes = execute([right, wrong, spliced], workers=2)
    assert outcomes[0].passed, outcomes[0].detail
    assert not outcomes[1].passed
    assert outcomes[2].passed, outcomes[2].detail
