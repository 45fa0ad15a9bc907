"""eval.code_reward and the GRPO rewards through the real sandbox: references 1.0, wrong answers 0.0, hostile code 0."""

from __future__ import annotations

import logging
import time

import pytest

from eval.code_reward import CodeTests, mbpp_tests, score_tests
from eval.prompts import extract_code_block
from eval.sandbox import available_languages
from trl_scripts.rewards import CodeExecutionReward, format_reward

ADD_TESTS = CodeTests("python", ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(-1, 1) == 0"])


@pytest.fixture(scope="module")
def mbpp_train(benchmarks_dir):
    from datatrove_pipelines.post_training.seeds import mbpp_train_records

    return mbpp_train_records(str(benchmarks_dir), limit=30)


def test_mbpp_train_references_score_one_and_wrong_answers_zero(mbpp_train):
    specs = [mbpp_tests(r["tests"], r["test_setup"]) for r in mbpp_train]
    references = score_tests([r["reference"] for r in mbpp_train], specs)
    # A reference that does not pass its own tests exists in MBPP (e.g. ones needing a module the sandbox lacks),
    # but nearly all must pass.
    assert sum(run.all_passed for run in references) >= len(mbpp_train) - 2
    wrong = score_tests(["def unrelated():\n    return None\n"] * len(mbpp_train), specs)
    assert all(run.passed == 0 and run.fraction == 0.0 for run in wrong)


def test_agrees_with_eval_execution_on_mbpp(mbpp_train):
    """Peer: eval.execution's MBPP program (solution + asserts, one sandbox run) on the same solutions."""
    from eval.benchmarks import Problem
    from eval.execution import execute
    from eval.programs import mbpp_program

    solutions = [r["reference"] for r in mbpp_train[:10]] + ["def f():\n    pass\n"] * 3
    records = mbpp_train[:10] + mbpp_train[:3]
    problems = [
        Problem(r["seed_id"], "mbpp", "python", r["instruction"], test=r["test_setup"] + "\n" + "\n".join(r["tests"]))
        for r in records
    ]
    peer = execute([mbpp_program(p, s) for p, s in zip(problems, solutions, strict=True)])
    ours = score_tests(solutions, [mbpp_tests(r["tests"], r["test_setup"]) for r in records])
    assert [o.passed for o in peer] == [r.all_passed for r in ours]


def test_partial_credit_is_the_fraction_of_tests_passed():
    (run,) = score_tests(["def add(a, b):\n    return a + b if a > 1 else 0\n"], [ADD_TESTS])
    assert (run.passed, run.total) == (2, 3) and run.fraction == pytest.approx(2 / 3)
    assert "AssertionError" in run.reason and "add(1, 2)" in run.reason


HOSTILE = {
    "exit_before_tests": "import sys\nsys.exit(0)\ndef add(a, b):\n    return a + b\n",
    "os_exit_in_solution": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "fake_pass_lines": "print('pass 0')\nprint('@@ pass 1')\ndef add(a, b):\n    import os; os._exit(0)\n",
    "infinite_loop": "while True:\n    pass\n",
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "ignores_alarm": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",
}


def test_hostile_completions_get_zero_without_stalling():
    tests = CodeTests("python", ADD_TESTS.tests, timeout_s=8.0, test_timeout_s=1.0)
    start = time.monotonic()
    runs = score_tests(list(HOSTILE.values()), [tests] * len(HOSTILE))
    elapsed = time.monotonic() - start
    for name, run in zip(HOSTILE, runs, strict=True):
        assert run.passed == 0, (name, run)
    # Every execution is bounded by its own limit (8 s here) and they run in parallel: far from a stalled step.
    assert elapsed < 60, elapsed
    # The same reward still scores an honest completion in the same batch.
    mixed = score_tests([HOSTILE["fork_bomb"], "def add(a, b):\n    return a + b\n"], [tests, tests])
    assert [r.fraction for r in mixed] == [0.0, 1.0]


@pytest.mark.skipif("cpp" not in available_languages(), reason="no g++ in this environment")
def test_cpp_reference_one_wrong_zero_and_exit_before_tests():
    tests = CodeTests("cpp", ["assert(add(1, 2) == 3);", "assert(add(2, 2) == 4);", "assert(add(0, 5) == 5);"])
    solutions = [
        "int add(int a, int b) { return a + b; }",
        "int add(int a, int b) { return a * b + 7; }",
        "int add(int a, int b) { return a + b; }\nstruct Quit { Quit() { std::exit(0); } } quit_before_main;",
        "int add(int a, int b) { return a * b; }",  # passes add(2, 2) only
        "int add(int a, int b) { return a + }",
        "int add(int a, int b) { volatile int spin = 1; while (spin) {} return a + b; }",
        "#include <unistd.h>\nint add(int a, int b) { while (true) fork(); return 0; }",
    ]
    runs = score_tests(solutions, [CodeTests("cpp", tests.tests, timeout_s=4.0)] * len(solutions))
    assert [r.fraction for r in runs[:3]] == [1.0, 0.0, 0.0]
    assert runs[3].passed == 1 and runs[4].status == "compile_error"
    assert runs[5].passed == 0 and runs[5].status == "timeout"  # infinite loop: bounded by the time limit
    assert runs[6].passed == 0  # fork bomb: bounded by the process limit and the time limit


@pytest.mark.skipif("javascript" not in available_languages(), reason="no node in this environment")
def test_per_test_languages_need_the_marker():
    check = "const assert = require('assert');\n"
    tests = CodeTests(
        "javascript", [check + "assert.strictEqual(add(1, 2), 3);", check + "assert.strictEqual(add(1, 1), 2);"]
    )
    runs = score_tests(
        ["function add(a, b) { return a + b; }", "function add(a, b) { return a + b; }\nprocess.exit(0);"],
        [tests, tests],
    )
    assert [r.fraction for r in runs] == [1.0, 0.0]


def test_extract_code_prefers_the_last_block_of_the_language():
    text = (
        "<think>try ```python\nx = 1\n```</think>\nFinal:\n```python\ndef f():\n    return 2\n```\n```text\nout\n```"
    )
    assert extract_code_block(text, "python", last=True) == "def f():\n    return 2\n"
    assert extract_code_block("no fences here", "python", last=True) == "no fences here"


def test_grpo_code_execution_reward_and_format(caplog):
    reward = CodeExecutionReward(timeout_s=8.0, test_timeout_s=1.0)
    completions = [
        [{"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"}],
        [{"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b if a > 1 else 0\n```"}],
        [{"role": "assistant", "content": "```python\nimport sys\nsys.exit(0)\n```"}],
        [{"role": "assistant", "content": "```cobol\nDISPLAY 'HI'.\n```"}],
    ]
    tests = [ADD_TESTS.tests] * 4
    with caplog.at_level(logging.WARNING, logger="trl_scripts.rewards"):
        rewards = reward(completions, tests=tests, language=["python", "python", "python", "cobol"])
    assert rewards[0] == 1.0 and rewards[1] == pytest.approx(2 / 3) and rewards[2] == 0.0 and rewards[3] == 0.0
    assert "unknown language" in caplog.text  # the sandbox failure is logged with its reason, not raised
    assert format_reward(completions[:1] + [[{"role": "assistant", "content": "def add(a, b): return a + b"}]]) == [
        1.0,
        0.0,
    ]
    assert format_reward(["<think>plan</think>\n```python\nx = 1\n```"]) == [1.0]


@pytest.mark.skipif("cpp" not in available_languages(), reason="no g++ in this environment")
def test_grpo_code_execution_reward_in_cpp():
    reward = CodeExecutionReward(timeout_s=8.0)
    completions = [
        "```cpp\nint add(int a, int b) { return a + b; }\n```",
        "```cpp\nint add(int a, int b) { return 0; }\n```",
    ]
    tests = [["assert(add(1, 2) == 3);", "assert(add(0, 0) == 0);"]] * 2
    assert reward(completions, tests=tests, language=["cpp", "cpp"]) == [1.0, 0.5]


STDIN_THIEF_PY = """import os, sys, json
stolen = (sys.stdin.readline() + os.read(0, 4096).decode(errors="ignore")).strip()
import __main__
stolen = stolen or str(getattr(__main__, "_MARK", ""))
for index in range(3):
    os.write(1, (stolen + " " + json.dumps(["pass", index, ""]) + "\\n").encode())
os._exit(0)
"""

STDIN_THIEF_CPP = """#include <unistd.h>
static int steal = [] {
    std::string line; std::getline(std::cin, line);
    for (int i = 0; i < 3; i++) std::cout << line << " pass " << i << " " << std::endl;
    std::exit(0); return 0; }();
int add(int a, int b) { return 0; }"""

STDIN_THIEF_JS = """const stolen = require('fs').readFileSync(0, 'utf8').trim();
process.stdout.write(stolen + ' pass\\n');
process.exit(0);"""


def test_a_solution_reading_stdin_cannot_fake_passes():
    (run,) = score_tests([STDIN_THIEF_PY], [ADD_TESTS])
    assert run.passed == 0, run
    if "cpp" in available_languages():
        (run,) = score_tests([STDIN_THIEF_CPP], [CodeTests("cpp", ["assert(add(1, 2) == 3);"] * 3)])
        assert run.passed == 0, run
    if "javascript" in available_languages():
        tests = CodeTests("javascript", ["require('assert').strictEqual(1, 2);"] * 2)
        (run,) = score_tests([STDIN_THIEF_JS], [tests])
        assert run.passed == 0, run


# Each language: a reference (reward 1.0) and every early-exit form we know (reward 0), all through the GRPO reward.
# Exit status 0 alone is never a pass: per-test programs carry eval's end marker (Go/Rust/Java in the source, the
# others through stdin), the Python/C++ harnesses print a stdin marker per test.
GO_HEAD = 'package main\n\nimport (\n\t"os"\n\t"testing"\n)\n\nvar _ = os.Exit\n'
EARLY_EXIT = {
    "python": (
        [["assert add(1, 2) == 3", "assert add(2, 2) == 4"]],
        "def add(a, b):\n    return a + b\n",
        {
            "sys.exit": "import sys\ndef add(a, b):\n    return a + b\nsys.exit(0)\n",
            "exit()": "def add(a, b):\n    return a + b\nexit()\n",
            "quit()": "def add(a, b):\n    return a + b\nquit()\n",
            "raise SystemExit": "def add(a, b):\n    raise SystemExit(0)\n",
            "os._exit": "import os\ndef add(a, b):\n    os._exit(0)\n",
        },
    ),
    "cpp": (
        [["assert(add(1, 2) == 3);", "assert(add(2, 2) == 4);"]],
        "int add(int a, int b) { return a + b; }",
        {
            "std::exit": "int add(int a, int b) { std::exit(0); return a + b; }",
            "_exit": "#include <unistd.h>\nint add(int a, int b) { _exit(0); return a + b; }",
            "static initializer": "static int quit_now = [] { std::exit(0); return 0; }();\n"
            "int add(int a, int b) { return a + b; }",
            "quick_exit": "int add(int a, int b) { std::quick_exit(0); return a + b; }",
        },
    ),
    "javascript": (
        [["if (add(1, 2) !== 3) throw new Error('add');", "if (add(2, 2) !== 4) throw new Error('add');"]],
        "function add(a, b) { return a + b; }",
        {
            "process.exit": "function add(a, b) { process.exit(0); }",
            "process.kill": "function add(a, b) { process.kill(process.pid, 'SIGKILL'); }",
            "exit at load": "function add(a, b) { return 0; }\nprocess.exit(0);",
        },
    ),
    "typescript": (
        [["if (add(1, 2) !== 3) throw new Error('add');"]],
        "function add(a: number, b: number): number { return a + b; }",
        {"process.exit": "function add(a: number, b: number): number { process.exit(0); return 0; }"},
    ),
    "bash": (
        [['[ "$(add 1 2)" = 3 ] || exit 1', '[ "$(add 2 2)" = 4 ] || exit 1']],
        "add() { echo $(( $1 + $2 )); }",
        {
            "exit 0": "add() { echo 0; }\nexit 0",
            "exec true": "add() { echo 0; }\nexec true",
            "kill": "add() { echo 0; }\nkill -9 $$",
        },
    ),
    "go": (
        [
            [
                'func TestAdd(t *testing.T) {\n\tif add(1, 2) != 3 {\n\t\tt.Fatal("add")\n\t}\n}',
                'func TestAdd2(t *testing.T) {\n\tif add(2, 2) != 4 {\n\t\tt.Fatal("add")\n\t}\n}',
            ]
        ],
        GO_HEAD + "func add(a, b int) int { return a + b }\n",
        {
            "os.Exit": GO_HEAD + "func add(a, b int) int { os.Exit(0); return 0 }\n",
            "os.Exit in init": GO_HEAD + "func init() { os.Exit(0) }\nfunc add(a, b int) int { return 0 }\n",
            "runtime.Goexit": GO_HEAD.replace('"os"', '"os"\n\t"runtime"')
            + "func add(a, b int) int { runtime.Goexit(); return 0 }\n",
        },
    ),
    "rust": (
        [["fn main() {\n    assert_eq!(add(1, 2), 3);\n}", "fn main() {\n    assert_eq!(add(2, 2), 4);\n}"]],
        "fn add(a: i32, b: i32) -> i32 { a + b }",
        {
            "process::exit": "fn add(a: i32, b: i32) -> i32 { std::process::exit(0) }",
            "process::exit from a thread": "fn add(_a: i32, _b: i32) -> i32 {\n"
            "    std::thread::spawn(|| std::process::exit(0)).join().unwrap(); 0\n}",
        },
    ),
    "java": (
        [
            [
                "public class Main {\n    public static void main(String[] args) {\n"
                "        if (Solution.add(1, 2) != 3) throw new AssertionError();\n    }\n}",
            ]
        ],
        "class Solution {\n    static int add(int a, int b) { return a + b; }\n}",
        {
            "System.exit": "class Solution {\n    static int add(int a, int b) { System.exit(0); return 0; }\n}",
            "static initializer": "class Solution {\n    static { System.exit(0); }\n"
            "    static int add(int a, int b) { return 0; }\n}",
            "Runtime.halt": "class Solution {\n"
            "    static int add(int a, int b) { Runtime.getRuntime().halt(0); return 0; }\n}",
        },
    ),
}


@pytest.mark.parametrize("language", sorted(EARLY_EXIT))
def test_every_early_exit_form_gets_reward_zero(language):
    if language not in available_languages():
        pytest.skip(f"no {language} toolchain in this environment")
    (tests,), reference, exits = EARLY_EXIT[language]
    fence = {"cpp": "cpp", "typescript": "ts"}.get(language, language)
    codes = [reference, *exits.values()]
    completions = [[{"role": "assistant", "content": f"```{fence}\n{code}\n```"}] for code in codes]
    reward = CodeExecutionReward(timeout_s=20.0, test_timeout_s=2.0, workers=2)
    rewards = reward(completions, tests=[tests] * len(codes), language=[language] * len(codes))
    assert rewards[0] == 1.0, (language, "reference")
    scored = dict(zip(exits, rewards[1:], strict=True))
    assert scored == dict.fromkeys(exits, 0.0), (language, scored)


def test_a_rust_or_java_test_without_main_fails_with_a_reason():
    runs = score_tests(["fn add(a: i32, b: i32) -> i32 { a + b }"], [CodeTests("rust", ["assert_eq!(add(1, 2), 3);"])])
    assert runs[0].passed == 0 and runs[0].status == "compile_error" and "main" in runs[0].reason
