"""Test programs for every benchmark, executed in the project's sandbox (``eval.sandbox``).

Each generated sample becomes one :class:`Program`: the solution plus the benchmark's tests, in the task's language.
Two kinds need more than concatenation:

* HumanEval+/MBPP+ follow EvalPlus's differential testing: every ``base_input`` and ``plus_input`` is run through the
  canonical solution and the sample, and the outputs must match (exactly, or within ``atol`` for floats, with
  EvalPlus's special oracles). All inputs of one sample run inside ONE sandbox execution, from a generated harness;
  the inputs travel as a pickle from the host into the sandbox (never the other way: results come back as JSON).
* CRUXEval problems are tiny, so many of them share one interpreter (``batchable``): a harness ``exec``s each in a
  fresh namespace under its own alarm and prints one JSON line per program. If the batch dies (a sample that calls
  ``os._exit``, exhausts memory, or hangs past the alarm), the programs without a result line are re-run one per
  execution, so a bad sample can cost time but never another sample's result. Programs in one batch share a
  process, so this is for short, trusted-shape code; model-written functions always get their own execution.
"""

from __future__ import annotations

import base64
import inspect
import json
import pickle
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.benchmarks import Problem

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
# Differential testing runs the canonical solution too and can have ~1000 inputs.
EVALPLUS_TIMEOUT_S = 60.0
# EvalPlus's default memory cap (EVALPLUS_MAX_MEMORY_BYTES = 4 GiB): some plus inputs need it (e.g. Mbpp/255).
EVALPLUS_MEMORY_MB = 4096
BATCH_SIZE = 100
# EvalPlus's per-input limits (evalplus.config): max(min, factor * time of the canonical solution).
EVALPLUS_MIN_TIME_LIMIT_S = 1.0
EVALPLUS_GT_TIME_LIMIT_FACTOR = 4.0


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


# ---------------------------------------------------------------------------------------------------------------------
# Program construction


def humaneval_program(problem: Problem, solution: str) -> Program:
    return Program("python", f"{solution}\n\n{problem.test}\n\ncheck({problem.entry_point})\n")


def mbpp_program(problem: Problem, solution: str) -> Program:
    return Program("python", f"{solution}\n\n{problem.test}\n")


def multipl_e_program(problem: Problem, solution: str) -> Program:
    return Program(problem.language, f"{solution}\n{problem.test}")


def cruxeval_program(problem: Problem, direction: str, answer: str) -> Program:
    raw = problem.raw
    check = (
        f"assert f({raw['input']}) == {answer}" if direction == "output" else f"assert f({answer}) == {raw['output']}"
    )
    # A prediction that spans lines could inject statements; a literal never needs a newline.
    if "\n" in answer:
        check = "raise AssertionError('prediction spans several lines')"
    return Program("python", f"{problem.prompt}\n{check}\n", timeout_s=5.0, batchable=True)


def _evalplus_oracles() -> tuple[str, dict[str, list[str]]]:
    """EvalPlus's special-oracle helpers (source) and task lists, reused from the installed package."""
    from evalplus.eval import _special_oracle as oracle

    source = "\n\n".join(
        inspect.getsource(fn) for fn in (oracle._poly, oracle._surface_Area, oracle._digit_distance_nums)
    )
    lists = {
        "set_eq": list(oracle.MBPP_OUTPUT_SET_EQ_TASKS),
        "not_none": list(oracle.MBPP_OUTPUT_NOT_NONE_TASKS),
    }
    return source, lists


def evalplus_inputs(problem: Problem) -> list[Any]:
    """base_input + plus_input, deserialised the way EvalPlus does for MBPP+ (tuples, sets, complex numbers)."""
    base, plus = list(problem.raw.get("base_input") or []), list(problem.raw.get("plus_input") or [])
    if problem.task_id.startswith("Mbpp/"):
        from evalplus.data.mbpp import mbpp_deserialize_inputs

        base = mbpp_deserialize_inputs(problem.task_id, base)
        plus = mbpp_deserialize_inputs(problem.task_id, plus) if plus else []
    return base + plus


# Every Python harness gives each test its own time limit inside one sandboxed process: signal.setitimer arms the
# alarm, and this handler turns it into _Timeout, which the harness catches. Spliced in where __ALARM__ stands.
HARNESS_ALARM = """class _Timeout(BaseException):
    pass

def _alarm(signum, frame):
    raise _Timeout()

signal.signal(signal.SIGALRM, _alarm)"""

# The harness mirrors evalplus.eval.unsafe_execute/trusted_exec; numpy is optional inside the sandbox, so
# np.allclose(rtol=1e-7) is re-implemented elementwise for the float/list-of-float outputs it is used on.
EVALPLUS_HARNESS = r"""
import base64, copy, json, math, pickle, signal, sys, time, io, contextlib
__ORACLES__
DATA = pickle.loads(base64.b64decode(__PAYLOAD__))

__ALARM__

def _is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    try:
        import numpy as np
        if isinstance(x, np.ndarray):
            return x.dtype == np.float64 or x.dtype == np.float32
    except ImportError:
        pass
    return False

def _close(out, exp, atol, rtol=1e-07):
    if isinstance(exp, (list, tuple)):
        return isinstance(out, (list, tuple)) and len(out) == len(exp) and all(
            _close(o, e, atol, rtol) for o, e in zip(out, exp))
    return abs(out - exp) <= atol + rtol * abs(exp)

def _report(status, index=None, error=""):
    sys.__stdout__.write(json.dumps({"status": status, "input_index": index, "n_inputs": len(DATA["inputs"]),
                                     "error": error[-300:]}) + "\n")
    sys.__stdout__.flush()
    sys.exit(0 if status == "passed" else 1)

def _run(fn, args, seconds):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)

entry_point, dataset, atol = DATA["entry_point"], DATA["dataset"], DATA["atol"]
reference_ns = {}
exec(DATA["canonical"], reference_ns)
reference = reference_ns[entry_point]
candidate_ns = {"__name__": "__candidate__"}
try:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(DATA["candidate"], "<candidate>", "exec"), candidate_ns)
    candidate = candidate_ns[entry_point]
except BaseException as error:
    _report("failed", None, f"candidate does not load: {type(error).__name__}: {error}")

for index, inp in enumerate(DATA["inputs"]):
    start = time.time()
    exp = reference(*copy.deepcopy(inp))
    limit = max(DATA["min_time_limit"], DATA["gt_factor"] * (time.time() - start))
    if entry_point in DATA["not_none"] and dataset == "mbpp":
        exp = exp is not None
    try:
        out = _run(candidate, copy.deepcopy(inp), limit)
    except _Timeout:
        _report("failed", index, "timeout")
    except BaseException as error:
        _report("failed", index, f"{type(error).__name__}: {error}")
    try:
        exact_match = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":
                exact_match = True
            elif entry_point == "sum_div":
                exact_match = exact_match or out == 0
            elif entry_point == "surface_Area":
                exact_match = exact_match or abs(out - _surface_Area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":
                exact_match = exact_match or out == _digit_distance_nums(*inp)
            elif entry_point in DATA["set_eq"]:
                exact_match = set(out) == set(exp)
            elif entry_point in DATA["not_none"]:
                exact_match = out == exp if isinstance(out, bool) else exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":
            assert abs(_poly(*inp, out)) <= atol
            continue
        tolerance = 1e-6 if atol == 0 and _is_floats(exp) else atol
        if not exact_match and tolerance != 0:
            assert type(out) == type(exp)
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp)
            assert _close(out, exp, tolerance)
        else:
            assert exact_match
    except BaseException as error:
        _report("failed", index, f"output mismatch: {type(error).__name__}: {str(error)[:200]}")
_report("passed")
""".replace("__ALARM__", HARNESS_ALARM)


def evalplus_program(problem: Problem, solution: str) -> Program:
    """One execution that checks a sample on all base+plus inputs against the canonical solution."""
    oracle_source, oracle_lists = _evalplus_oracles()
    payload = {
        "entry_point": problem.entry_point,
        "dataset": "mbpp" if problem.task_id.startswith("Mbpp/") else "humaneval",
        "atol": float(problem.raw.get("atol") or 0),
        "canonical": problem.prompt + problem.canonical_solution,
        "candidate": solution,
        "inputs": evalplus_inputs(problem),
        "min_time_limit": EVALPLUS_MIN_TIME_LIMIT_S,
        "gt_factor": EVALPLUS_GT_TIME_LIMIT_FACTOR,
        **oracle_lists,
    }
    encoded = base64.b64encode(pickle.dumps(payload, protocol=4)).decode("ascii")
    code = EVALPLUS_HARNESS.replace("__ORACLES__", "import math\n" + oracle_source).replace(
        "__PAYLOAD__", repr(encoded)
    )
    return Program("python", code, timeout_s=EVALPLUS_TIMEOUT_S, memory_mb=EVALPLUS_MEMORY_MB)


# ---------------------------------------------------------------------------------------------------------------------
# Execution

BATCH_HARNESS = r"""
import contextlib, io, json, signal, sys
_PROGRAMS = __PROGRAMS__
_MARK = __MARK__
__ALARM__
_out = sys.__stdout__
for _index, (_source, _seconds) in enumerate(_PROGRAMS):
    _status, _error = "passed", ""
    signal.setitimer(signal.ITIMER_REAL, _seconds)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(_source, f"<program-{_index}>", "exec"), {"__name__": "__main__"})
    except _Timeout:
        _status, _error = "timeout", "timeout"
    except AssertionError as error:
        _status, _error = "failed", f"AssertionError: {error}"
    except BaseException as error:
        _status, _error = "runtime_error", f"{type(error).__name__}: {error}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    _out.write(_MARK + json.dumps({"index": _index, "status": _status, "error": _error[-300:]}) + "\n")
    _out.flush()
""".replace("__ALARM__", HARNESS_ALARM)


def _batch_harness(programs: Sequence[Program], mark: str) -> str:
    listed = [(p.code, p.timeout_s) for p in programs]
    return BATCH_HARNESS.replace("__PROGRAMS__", repr(listed)).replace("__MARK__", repr(mark))


def _outcome(result: Any) -> Outcome:
    status = str(getattr(result.status, "value", result.status))
    detail = "" if status == "passed" else (result.stderr or result.stdout or "")[-500:]
    return Outcome(status == "passed", status, detail, float(result.wall_time_s or 0.0))


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
    """Run every program in the sandbox (order kept); batchable Python programs share interpreters."""
    from eval.sandbox import ExecutionRequest, SandboxLimits, run_batch

    def request(language: str, code: str, timeout_s: float, memory_mb: int) -> Any:
        return ExecutionRequest(language, code, limits=SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb))

    outcomes: list[Outcome | None] = [None] * len(programs)
    singles = [i for i, p in enumerate(programs) if not (p.batchable and p.language == "python")]
    batchable = [i for i, p in enumerate(programs) if p.batchable and p.language == "python"]
    batches = [batchable[start : start + batch_size] for start in range(0, len(batchable), batch_size)]
    mark = f"@@result-{secrets.token_hex(8)}@@"

    requests = [
        request(programs[i].language, programs[i].code, programs[i].timeout_s, programs[i].memory_mb) for i in singles
    ]
    for batch in batches:
        members = [programs[i] for i in batch]
        # Not the sum of the members' limits: a batch stuck in C code must not hold a worker for minutes; what it
        # leaves unreported is re-run one by one.
        timeout = max(p.timeout_s for p in members) + 10.0 + 0.1 * len(members)
        requests.append(request("python", _batch_harness(members, mark), timeout, max(p.memory_mb for p in members)))
    results = run_batch(requests, workers=workers) if requests else []

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
        again = run_batch(
            [request("python", programs[i].code, programs[i].timeout_s, programs[i].memory_mb) for i in rerun],
            workers=workers,
        )
        for index, result in zip(rerun, again, strict=True):
            outcomes[index] = _outcome(result)
    return [outcome if outcome is not None else Outcome(False, "missing") for outcome in outcomes]


def brace_body(code: str, signature: str) -> str | None:
    """For brace languages: the body after ``signature`` up to (not including) the brace that closes it."""
    start = code.find(signature)
    if start < 0:
        return None
    rest = code[start + len(signature) :]
    depth = 1
    for position, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[:position].rstrip(" \t")
    return rest


def last_code_line(prompt: str) -> str:
    lines = [line for line in prompt.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
