"""Rewards per second of the GRPO ``code_execution`` reward vs a plain subprocess-per-completion reward.

The baseline is what a local fallback of open-r1's code reward would do: for each completion, one fresh
``python -c`` process (no sandbox) running the solution and then every test, printing the fraction passed. Ours is
``trl_scripts.rewards.CodeExecutionReward`` (eval.code_reward: the sandbox's pre-forked workers, one batch per step,
per-test markers). Both get the same completions (MBPP train: each reference solution fenced as a model would write
it, plus a wrong answer per problem) and the same number of parallel workers; rounds alternate, medians count, and
both must agree on every reward.

    python benchmarks/code_reward.py [--problems N] [--workers W] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove_pipelines.post_training.seeds import mbpp_train_records  # noqa: E402
from eval.prompts import extract_code_block  # noqa: E402
from trl_scripts.rewards import CodeExecutionReward  # noqa: E402

BASELINE_RUNNER = """
import sys
solution, setup, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
namespace = {"__name__": "__main__"}
passed = 0
try:
    exec(solution + "\\n" + setup, namespace)
    for test in tests:
        try:
            exec(test, namespace)
            passed += 1
        except Exception:
            pass
except BaseException:
    pass
print(passed / len(tests))
"""


def baseline_reward(completions: list[str], tests: list[list[str]], setups: list[str], workers: int) -> list[float]:
    """One subprocess per completion (no sandbox, no reuse)."""

    def one(args: tuple[str, list[str], str]) -> float:
        completion, test_list, setup = args
        code = extract_code_block(completion, "python", last=True)
        try:
            result = subprocess.run(
                [sys.executable, "-c", BASELINE_RUNNER, code, setup, *test_list],
                capture_output=True,
                text=True,
                timeout=10,
            )
            return float(result.stdout.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            return 0.0

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, zip(completions, tests, setups, strict=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=150)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--benchmarks", default=os.environ.get("SEED_CODER_BENCHMARKS_DIR"))
    args = parser.parse_args(argv)
    benchmarks = args.benchmarks or str(Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
    records = mbpp_train_records(benchmarks, limit=args.problems)
    completions, tests, setups = [], [], []
    for record in records:
        for solution in (record["reference"], "def wrong_answer():\n    return None"):
            completions.append(f"Here is the solution:\n```python\n{solution}\n```")
            tests.append(record["tests"])
            setups.append(record["test_setup"])

    reward = CodeExecutionReward(workers=args.workers)
    ours_reward = lambda: reward(completions, tests=tests, language=["python"] * len(tests), test_setup=setups)  # noqa: E731
    base_reward = lambda: baseline_reward(completions, tests, setups, args.workers)  # noqa: E731
    ours_values, base_values = ours_reward(), base_reward()  # warm-up (and the agreement check)
    disagree = sum(abs(a - b) > 1e-9 for a, b in zip(ours_values, base_values, strict=True))
    ours_times, base_times = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        ours_reward()
        ours_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        base_reward()
        base_times.append(time.perf_counter() - start)
    n = len(completions)
    ours_rate, base_rate = n / statistics.median(ours_times), n / statistics.median(base_times)
    print(f"{n} completions ({len(records)} MBPP train problems), {args.workers} workers, {args.rounds} rounds")
    print(f"rewards disagreeing with the baseline: {disagree}")
    print(
        f"code_execution (sandbox batch): {ours_rate:8.1f} rewards/s  (median {statistics.median(ours_times):.2f} s)"
    )
    print(
        f"subprocess per completion:      {base_rate:8.1f} rewards/s  (median {statistics.median(base_times):.2f} s)"
    )
    print(f"ratio: {ours_rate / base_rate:.2f}x")


if __name__ == "__main__":
    main()
