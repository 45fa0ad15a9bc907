"""Execution feedback for post-training: the fraction of a completion's unit tests that pass, through the sandbox.

One home for "run this model-written solution against these tests" in post-training: the GRPO ``code_execution``
reward (``trl_scripts/rewards.py``), the sandbox self-correction loop of ``datatrove_pipelines.sft_data`` and the
judge of ``datatrove_pipelines.dpo_data`` all call :func:`run_tests`. Every program runs in ``eval.sandbox`` (through
its batch API ``run_batch``, many completions in parallel, each with its own time and memory limits).

A test counts as passed only when the harness proves it ran it: after each passing test the harness prints a line
with a random marker that is drawn fresh for every execution and handed to the harness on **stdin**, read before any
solution code runs (so it is in neither the source file nor the solution's reach through stdin). A solution that calls
``sys.exit(0)``/``exit(0)`` before the tests, kills its own process, prints fake "passed" lines, forks or loops forever
therefore scores 0 for every test it stopped from running. (A solution that deliberately walks the interpreter's
frames to find the marker is out of this threat model; the sandbox still confines it.)

* Python: one execution per completion; the solution is ``exec``'d in its own namespace with its output swallowed,
  each test runs under its own alarm, failures report the error (fed back to the generator by sft_data).
* C++: one compilation per completion; ``assert`` is redefined for the tests so that a failing test is reported
  and the next one still runs; a crash ends the run (the tests after it count as failed).
* Other sandbox languages (JavaScript, TypeScript, Bash, Go, Rust, Java): one execution per test (solution + test
  + a marker print where the language allows one at the end of the file; Go/Rust/Java tests are a ``main`` of their
  own and count on the sandbox's exit status).

A problem of the sandbox itself (unknown language, missing toolchain, a dead worker) gives reward 0 with the reason
in :attr:`TestRun.reason`; :func:`run_tests` never raises for what a completion or a dataset row contains.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0  # a whole execution (every test of one completion)
DEFAULT_TEST_TIMEOUT_S = 3.0  # one test inside the Python harness
DEFAULT_MEMORY_MB = 1024
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_LANGUAGE_FENCE_NAMES = {
    "python": ("python", "py", "python3"),
    "cpp": ("cpp", "c++", "cc", "cxx"),
    "javascript": ("javascript", "js", "node"),
    "typescript": ("typescript", "ts"),
    "bash": ("bash", "sh", "shell"),
    "go": ("go", "golang"),
    "rust": ("rust", "rs"),
    "java": ("java",),
}


@dataclass
class CodeTests:
    """What a completion is judged against: unit tests in ``language`` (one statement/snippet per test) and code that
    the tests need before them (imports, helpers: MBPP's ``test_setup_code``)."""

    language: str
    tests: list[str]
    setup: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    test_timeout_s: float = DEFAULT_TEST_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass
class TestRun:
    """The verdict on one solution: how many tests provably passed, and why the others did not."""

    passed: int
    total: int
    status: str  # "passed", "failed", or the sandbox status that ended the run ("timeout", "compile_error", ...)
    reason: str = ""  # the first failure's error, or why nothing ran (fed back to generators, logged by rewards)
    failures: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total


def extract_code(completion: str, language: str = "python") -> str:
    """The code of a model's answer: the last fenced block tagged with ``language`` (else the last fenced block, else
    the text up to a closing fence). Why the last: reasoning models sketch first and answer last."""
    blocks = _FENCE.findall(completion)
    if blocks:
        names = _LANGUAGE_FENCE_NAMES.get(language, (language,))
        tagged = [code for tag, code in blocks if tag.lower() in names]
        return (tagged or [code for _, code in blocks])[-1]
    return completion.split("```", 1)[0]


# ---------------------------------------------------------------------------------------------------------------------
# Python: one execution, each test under its own alarm, a marker line per passing test

PYTHON_HARNESS = r"""
import contextlib as _contextlib, io as _io, json as _json, signal as _signal, sys as _sys


def _harness(solution, setup, tests, test_seconds):
    # Everything lives in this function's locals: the solution, exec'd in its own namespace, finds no module-level
    # marker or reporting function through ``import __main__``.
    mark = _sys.stdin.readline().strip()
    _sys.stdin = _io.StringIO()
    out = _sys.__stdout__

    class Timeout(BaseException):
        pass

    def alarm(signum, frame):
        raise Timeout()

    _signal.signal(_signal.SIGALRM, alarm)

    def say(kind, index, error=""):
        out.write(mark + " " + _json.dumps([kind, index, error[-400:]]) + "\n")
        out.flush()

    def run(source, namespace, seconds):
        _signal.setitimer(_signal.ITIMER_REAL, seconds)
        try:
            with _contextlib.redirect_stdout(_io.StringIO()), _contextlib.redirect_stderr(_io.StringIO()):
                exec(compile(source, "<code>", "exec"), namespace)
        finally:
            _signal.setitimer(_signal.ITIMER_REAL, 0)

    def describe(error):
        if isinstance(error, Timeout):
            return "timeout"
        if isinstance(error, SystemExit):
            return "SystemExit: the code called exit(%r)" % (error.code,)
        return "%s: %s" % (type(error).__name__, error)

    namespace = {"__name__": "__main__"}
    try:
        run(solution + "\n" + setup, namespace, test_seconds * 2)
    except BaseException as error:
        say("load", -1, describe(error))
        _sys.exit(1)
    for index, test in enumerate(tests):
        try:
            run(test, namespace, test_seconds)
        except BaseException as error:
            say("fail", index, describe(error) + "\n  test: " + test[:200])
        else:
            say("pass", index)


_harness(__SOLUTION__, __SETUP__, __TESTS__, __TEST_SECONDS__)
"""


def _python_program(solution: str, tests: CodeTests) -> str:
    return (
        PYTHON_HARNESS.replace("__SOLUTION__", repr(solution))
        .replace("__SETUP__", repr(tests.setup))
        .replace("__TESTS__", repr(list(tests.tests)))
        .replace("__TEST_SECONDS__", repr(float(tests.test_timeout_s)))
    )


# ---------------------------------------------------------------------------------------------------------------------
# C++: one compilation; assert() reports instead of aborting, a marker line per passing test

# The marker is read by a static initializer placed before the solution (initializers run in declaration order within
# a file), so a solution's own initializers find stdin empty; its name is random per run.
CPP_PRELUDE = """#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
static std::string __MARK_NAME__ = [] { std::string line; std::getline(std::cin, line); return line; }();
"""

CPP_HARNESS = r"""
#undef assert
static bool __sc_ok = true;
static std::string __sc_error;
#define assert(condition) do { if (!(condition)) { __sc_ok = false; if (__sc_error.empty()) \
    __sc_error = std::string("assertion failed: ") + #condition; } } while (0)
__TESTS__
int main() {
__CALLS__
    return 0;
}
"""


def _cpp_program(solution: str, tests: CodeTests) -> str:
    functions, calls = [], []
    for index, test in enumerate(tests.tests):
        functions.append(f"static void __sc_test_{index}() {{\n{test}\n}}")
        calls.append(
            f"    __sc_ok = true; __sc_error.clear(); __sc_test_{index}();\n"
            f'    std::cout << __MARK_NAME__ << (__sc_ok ? " pass " : " fail ") << {index} << " " << __sc_error'
            " << std::endl;"
        )
    harness = CPP_HARNESS.replace("__TESTS__", "\n".join(functions)).replace("__CALLS__", "\n".join(calls))
    name = f"__sc_mark_{secrets.token_hex(8)}"
    return f"{CPP_PRELUDE}{solution}\n{tests.setup}\n{harness}".replace("__MARK_NAME__", name)


# ---------------------------------------------------------------------------------------------------------------------
# Any other sandbox language: one execution per test

# (prelude, tail) per language: the prelude reads the marker from stdin into a randomly named variable before the
# solution runs (so the solution finds stdin empty), the tail prints it after the test. Languages without an entry
# (Go, Rust, Java: the test is a ``main`` of its own) are judged by the sandbox's exit status alone.
_MARKER_CODE = {
    "javascript": (
        "const __NAME__ = require('fs').readFileSync(0, 'utf8').trim();\n",
        "\nprocess.stdout.write(__NAME__ + ' pass\\n');\n",
    ),
    "typescript": (
        "const __NAME__: string = require('fs').readFileSync(0, 'utf8').trim();\n",
        "\nprocess.stdout.write(__NAME__ + ' pass\\n');\n",
    ),
    "bash": ("read -r __NAME__\n", '\necho "$__NAME__ pass"\n'),
}


def _per_test_programs(solution: str, tests: CodeTests) -> list[tuple[str, bool]]:
    """(program, marker expected) for each test."""
    code = _MARKER_CODE.get(tests.language)
    if code is None:
        return [(f"{solution}\n{tests.setup}\n{test}\n", False) for test in tests.tests]
    programs = []
    for test in tests.tests:
        name = f"__sc_mark_{secrets.token_hex(8)}"
        prelude, tail = (part.replace("__NAME__", name) for part in code)
        programs.append((f"{prelude}{solution}\n{tests.setup}\n{test}\n{tail}", True))
    return programs


# ---------------------------------------------------------------------------------------------------------------------
# Running


@dataclass
class _Job:
    """One sandbox execution and how to read it back into a solution's verdict."""

    solution: int
    language: str
    code: str
    mark: str
    timeout_s: float
    memory_mb: int
    kind: str  # "harness" (marker lines per test) or "single" (one test; index given)
    test_index: int = -1
    expect_marker: bool = True


def _normalize_language(language: str) -> str | None:
    from eval.sandbox.languages import normalize_language

    return normalize_language(language)


def _jobs(index: int, solution: str, tests: CodeTests) -> list[_Job]:
    language = _normalize_language(tests.language) or tests.language
    mark = secrets.token_hex(16)
    if language == "python":
        code = _python_program(solution, tests)
        timeout = max(tests.timeout_s, tests.test_timeout_s * (len(tests.tests) + 2) + 1.0)
        return [_Job(index, language, code, mark, timeout, tests.memory_mb, "harness")]
    if language == "cpp":
        code = _cpp_program(solution, tests)
        return [_Job(index, language, code, mark, tests.timeout_s, tests.memory_mb, "harness")]
    normalized = CodeTests(language, tests.tests, tests.setup, tests.timeout_s, tests.test_timeout_s, tests.memory_mb)
    return [
        _Job(index, language, code, secrets.token_hex(16), tests.timeout_s, tests.memory_mb, "single", i, marker)
        for i, (code, marker) in enumerate(_per_test_programs(solution, normalized))
    ]


def _marker_lines(stdout: str, mark: str) -> list[list]:
    lines = []
    for line in stdout.splitlines():
        if not line.startswith(mark + " "):
            continue
        rest = line[len(mark) + 1 :]
        try:
            record = json.loads(rest)
        except ValueError:  # the C++ harness prints "pass 3 <error>"
            kind, _, tail = rest.partition(" ")
            number, _, error = tail.partition(" ")
            record = [kind, int(number) if number.lstrip("-").isdigit() else -2, error]
        if isinstance(record, list) and len(record) == 3:
            lines.append(record)
    return lines


def _sandbox_reason(result) -> str:
    status = str(getattr(result.status, "value", result.status))
    text = (result.error or result.stderr or result.stdout or "").strip()
    return f"{status}: {text[-400:]}" if text else status


def run_tests(solutions: Sequence[str], tests: Sequence[CodeTests], workers: int | None = None) -> list[TestRun]:
    """Judge ``solutions[i]`` against ``tests[i]`` in the sandbox, all in one parallel batch; order kept."""
    from eval.sandbox import ExecutionRequest, SandboxLimits, run_batch

    if len(solutions) != len(tests):
        raise ValueError(f"{len(solutions)} solutions for {len(tests)} test sets")
    verdicts: list[TestRun | None] = [None] * len(solutions)
    jobs: list[_Job] = []
    for index, (solution, spec) in enumerate(zip(solutions, tests, strict=True)):
        if not isinstance(solution, str) or not spec.tests:
            reason = "no tests" if isinstance(solution, str) else "solution is not text"
            verdicts[index] = TestRun(0, len(spec.tests), "sandbox_error", reason)
            continue
        jobs.extend(_jobs(index, solution, spec))
    requests = [
        ExecutionRequest(
            job.language, job.code, stdin=job.mark + "\n", limits=SandboxLimits(job.timeout_s, memory_mb=job.memory_mb)
        )
        for job in jobs
    ]
    try:
        results = run_batch(requests, workers=workers)
    except Exception as error:  # the sandbox itself failed: every solution gets 0 with the reason, never a crash
        log.warning("sandbox batch failed: %s", error)
        results = [None] * len(jobs)

    per_solution: dict[int, list[tuple[_Job, object]]] = {}
    for job, result in zip(jobs, results, strict=True):
        per_solution.setdefault(job.solution, []).append((job, result))
    for index, pairs in per_solution.items():
        verdicts[index] = _verdict(pairs, len(tests[index].tests))
    return [v if v is not None else TestRun(0, 0, "sandbox_error", "missing") for v in verdicts]


def _verdict(pairs: list[tuple[_Job, object]], total: int) -> TestRun:
    passed: set[int] = set()
    failures: list[str] = []
    statuses: list[str] = []
    for job, result in pairs:
        if result is None:
            statuses.append("sandbox_error")
            failures.append("sandbox_error: the sandbox batch failed")
            continue
        status = str(getattr(result.status, "value", result.status))
        statuses.append(status)
        if job.kind == "harness":
            for kind, test_index, error in _marker_lines(result.stdout or "", job.mark):
                if kind == "pass" and 0 <= test_index < total:
                    passed.add(test_index)
                elif kind in ("fail", "load"):
                    failures.append(str(error) or f"test {test_index} failed")
            if len(passed) < total and not failures:
                ended = "the program exited before its tests ran to the end" if status == "passed" else ""
                failures.append(ended or _sandbox_reason(result))
        else:
            proven = not job.expect_marker or f"{job.mark} pass" in (result.stdout or "")
            if status == "passed" and proven:
                passed.add(job.test_index)
            else:
                failures.append(_sandbox_reason(result) if status != "passed" else "tests did not run to the end")
    count = len(passed)
    if count == total:
        status = "passed"
    else:
        status = next((s for s in statuses if s not in ("passed", "failed")), "failed")
    return TestRun(count, total, status, failures[0] if failures else "", failures)


def mbpp_tests(test_list: Sequence[str], setup: str = "", imports: Sequence[str] = ()) -> CodeTests:
    """MBPP-style rows (``test_list`` of asserts, ``test_setup_code``, ``test_imports``) as :class:`CodeTests`."""
    prefix = "\n".join([*imports, setup]).strip("\n")
    return CodeTests("python", [t for t in test_list if t.strip()], prefix)
