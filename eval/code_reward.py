"""Execution feedback for post-training: the fraction of a completion's unit tests that pass, through the sandbox.

One home for "run this model-written solution against these tests" in post-training: the GRPO ``code_execution``
reward (``trl_scripts/rewards.py``), the sandbox self-correction loop of ``datatrove_pipelines.sft_data`` and the
judge of ``datatrove_pipelines.dpo_data`` all call :func:`score_tests`. Every program runs in ``eval.sandbox`` (through
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
* Other sandbox languages (JavaScript, TypeScript, Bash, Go, Rust, Java): one execution per test, judged by eval's
  verdict rule (:mod:`eval.sandbox.end_marker`, checked by the sandbox: exit 0 **and** a fresh marker printed after
  the test). JavaScript/TypeScript/Bash read that marker from stdin before the solution runs (so it is not in the
  source); Go, Rust and Java tests are a ``main`` (a ``Test`` function in Go) of their own, so the marker is placed in
  the source as eval does for MultiPL-E (a last test function, a ``Drop`` guard, a ``finally``): an early
  ``os.Exit(0)``/``std::process::exit(0)``/``System.exit(0)`` scores 0.

Why eval's own verdict path (``eval.execution``) keeps the in-source marker: its programs are whole benchmark test
files of any shape (MultiPL-E's, ``go test`` binaries, Java classes) where no reader of our own runs before the
solution; a stdin marker needs such a reader. The in-source marker proves the tests reached their end; a program that
reads its own source file to fake it is hostile, and the sandbox contains it.

The answer's code is taken with ``eval.prompts.extract_code_block(text, language, last=True)`` (one extractor for
eval and post-training; ``last``: reasoning models sketch first and answer last).

A problem of the sandbox itself (unknown language, missing toolchain, a dead worker) gives reward 0 with the reason
in :attr:`TestRun.reason`; :func:`score_tests` never raises for what a completion or a dataset row contains.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0  # a whole execution (every test of one completion)
DEFAULT_TEST_TIMEOUT_S = 3.0  # one test inside the Python harness
DEFAULT_MEMORY_MB = 1024


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
# Any other sandbox language: one execution per test, each proven by an end marker

# JavaScript, TypeScript, Bash: (prelude, tail). The prelude reads the run's marker from stdin into a randomly named
# variable before the solution runs (so the solution finds stdin empty and the marker is not in the source); the tail
# prints it after the test. Go, Rust and Java tests are a ``main`` (a ``Test`` function in Go) of their own: there
# ``eval.sandbox.end_marker.with_end_marker`` places the marker (a last test function, a ``Drop`` guard, a
# ``finally``), as for eval's MultiPL-E programs. Either way the sandbox gets the marker as the request's
# ``end_marker`` and reports ``passed`` only for exit 0 with the marker in the output.
_STDIN_MARKER_CODE = {
    "javascript": (
        "const __NAME__ = require('fs').readFileSync(0, 'utf8').trim();\n",
        "\nprocess.stdout.write(__NAME__ + '\\n');\n",
    ),
    "typescript": (
        # Declared like MultiPL-E's TypeScript programs do (the sandbox's tsc has no Node typings; a repeated
        # ``declare var`` of the same type compiles).
        "declare var require: any;\ndeclare var process: any;\n"
        "const __NAME__: string = require('fs').readFileSync(0, 'utf8').trim();\n",
        "\nprocess.stdout.write(__NAME__ + '\\n');\n",
    ),
    "bash": ("read -r __NAME__\n", '\necho "$__NAME__"\n'),
}


def _per_test_program(language: str, solution: str, setup: str, test: str, mark: str) -> str:
    """One test's program, printing ``mark`` after the test; raises ``NoPlaceForEndMarker`` (no ``main``)."""
    from eval.sandbox.end_marker import with_end_marker

    program = f"{solution}\n{setup}\n{test}\n"
    code = _STDIN_MARKER_CODE.get(language)
    if code is None:
        return with_end_marker(language, program, mark)
    name = f"__sc_mark_{secrets.token_hex(8)}"
    prelude, tail = (part.replace("__NAME__", name) for part in code)
    return f"{prelude}{program}{tail}"


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
    kind: str  # "harness" (marker lines per test, marker on stdin) or "single" (one test; the sandbox's end marker)
    test_index: int = -1
    error: str = ""  # why this test could not even be built (a Rust/Java test without a main): it fails


def _jobs(index: int, solution: str, tests: CodeTests) -> list[_Job]:
    from eval.sandbox.end_marker import NoPlaceForEndMarker, new_end_marker
    from eval.sandbox.languages import normalize_language

    language = normalize_language(tests.language) or tests.language
    if language == "python":
        code = _python_program(solution, tests)
        timeout = max(tests.timeout_s, tests.test_timeout_s * (len(tests.tests) + 2) + 1.0)
        return [_Job(index, language, code, secrets.token_hex(16), timeout, tests.memory_mb, "harness")]
    if language == "cpp":
        code = _cpp_program(solution, tests)
        return [_Job(index, language, code, secrets.token_hex(16), tests.timeout_s, tests.memory_mb, "harness")]
    jobs = []
    for test_index, test in enumerate(tests.tests):
        mark = new_end_marker()
        try:
            code, error = _per_test_program(language, solution, tests.setup, test, mark), ""
        except NoPlaceForEndMarker as no_main:
            code, error = "", f"compile_error: {no_main}"
        except ValueError:  # a language the sandbox does not know: it answers sandbox_error
            code, error = f"{solution}\n{tests.setup}\n{test}\n", ""
        jobs.append(_Job(index, language, code, mark, tests.timeout_s, tests.memory_mb, "single", test_index, error))
    return jobs


def _request(job: _Job):
    from eval.execution import TEST_KILL_OUTPUT_BYTES
    from eval.sandbox import ExecutionRequest, SandboxLimits

    if job.kind == "harness":  # the harness reads its marker from stdin and prints one marker line per test
        return ExecutionRequest(
            job.language, job.code, stdin=job.mark + "\n", limits=SandboxLimits(job.timeout_s, memory_mb=job.memory_mb)
        )
    # One test: eval's verdict rule, checked by the sandbox (exit 0 and the marker anywhere in the output; output is
    # never a reason to kill a test program). JS/TS/Bash read the marker from stdin, Go/Rust/Java carry it.
    limits = SandboxLimits(job.timeout_s, memory_mb=job.memory_mb, kill_output_bytes=TEST_KILL_OUTPUT_BYTES)
    return ExecutionRequest(job.language, job.code, stdin=job.mark + "\n", limits=limits, end_marker=job.mark)


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


def score_tests(solutions: Sequence[str], tests: Sequence[CodeTests], workers: int | None = None) -> list[TestRun]:
    """How many of ``tests[i]`` ``solutions[i]`` provably passes, all in one parallel sandbox batch; order kept.

    (eval's ``eval.execution.run_tests`` is the all-or-nothing verdict of a whole test program; this one counts
    tests, for partial-credit rewards and for the self-correction loop's error feedback.)
    """
    from eval.sandbox import run_batch

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
    runnable = [job for job in jobs if not job.error]
    try:
        ran = iter(run_batch([_request(job) for job in runnable], workers=workers))
        results = [None if job.error else next(ran) for job in jobs]
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
        if job.error:
            statuses.append("compile_error")
            failures.append(job.error)
            continue
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
            if status == "passed":  # exit 0 and the end marker: the sandbox checked both
                passed.add(job.test_index)
            else:
                failures.append(_sandbox_reason(result))
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
