"""Throughput of the code-file pipeline vs. a read + tree-sitter-parse baseline on the same files, same process.

    python benchmarks/code_files.py [--limit-mb 32] [--tasks 1]

Input: a copy of this Python's standard library .py files (as in ``recipes.demo``, no planted files). Both runs use
one worker, so MB/s is per worker. The pipeline run includes every stage (reading, guard, language, signatures,
the intermediate file, buckets, cluster, filters, syntax check, decontamination with the index build, writing) and
datatrove's executor overhead. Target: pipeline / baseline >= 0.6.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove_pipelines.code_files import CodeFilesConfig, run_code_files  # noqa: E402
from datatrove_pipelines.code_readers import list_source_files  # noqa: E402
from datatrove_pipelines.common import ExecutorConfig  # noqa: E402
from datatrove_pipelines.decontamination import DecontaminationConfig  # noqa: E402
from datatrove_pipelines.languages import detect_language, grammar_for  # noqa: E402
from recipes.demo import find_benchmarks_dir, stdlib_python_files  # noqa: E402


def baseline(root: Path) -> tuple[int, float]:
    """Read every file and parse it with its tree-sitter grammar: the floor any syntax-checking pipeline pays."""
    from tree_sitter_language_pack import get_parser

    parsers = {}
    total = 0
    start = time.perf_counter()
    for _, relative, file_path, _ in list_source_files(str(root)):
        data = Path(file_path).read_bytes()
        total += len(data)
        grammar = grammar_for(detect_language(relative), relative)
        if grammar is None:
            continue
        if grammar not in parsers:
            parsers[grammar] = get_parser(grammar)
        parsers[grammar].parse(data)
    return total, time.perf_counter() - start


def pipeline(root: Path, output: Path, tasks: int) -> tuple[int, float, dict]:
    config = CodeFilesConfig(
        inputs=[str(root)],
        output_dir=str(output),
        decontamination=DecontaminationConfig(benchmarks_dir=find_benchmarks_dir()),
        decontaminate=find_benchmarks_dir() is not None,
        executor=ExecutorConfig(tasks=tasks, workers=1),
    )
    start = time.perf_counter()
    stats = run_code_files(config)
    return stats["total"]["bytes_in"], time.perf_counter() - start, stats


def step_times(output: Path) -> dict[str, float]:
    """Seconds per step, summed over tasks, from datatrove's per-stage stats.json."""
    import json

    times: dict[str, float] = {}
    for stats_file in sorted((output / "logs").glob("*/stats.json")):
        for step in json.loads(stats_file.read_text()):
            total = step["time_stats"].get("total", 0) if isinstance(step["time_stats"], dict) else 0
            times[f"{stats_file.parent.name}/{step['name']}"] = total
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit-mb", type=float, default=32.0)
    parser.add_argument("--tasks", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    os.environ.setdefault("DATATROVE_COLORIZE_LOGS", "0")
    from loguru import logger

    logger.remove()
    with tempfile.TemporaryDirectory(prefix="bench-code-files-") as scratch:
        root = Path(scratch) / "repos"
        for source, relative in stdlib_python_files(int(args.limit_mb * 1e6)):
            target = root / "cpython" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        base_bytes, base_seconds = baseline(root)
        pipe_bytes, pipe_seconds, stats = pipeline(root, Path(scratch) / "out", args.tasks)
        base_rate = base_bytes / 1e6 / base_seconds
        pipe_rate = pipe_bytes / 1e6 / pipe_seconds
        print(f"input: {base_bytes / 1e6:.1f} MB, {stats['total']['docs_in']} files (stdlib .py copy), 1 worker")
        print(f"baseline (read + tree-sitter parse): {base_seconds:6.1f} s  {base_rate:6.2f} MB/s per worker")
        print(
            f"pipeline (all stages, {args.tasks} task(s)):   {pipe_seconds:6.1f} s  {pipe_rate:6.2f} MB/s per worker"
        )
        print(f"ratio pipeline / baseline: {pipe_rate / base_rate:.2f}  (target >= 0.6)")
        print("time per step (s):")
        for name, seconds in step_times(Path(scratch) / "out").items():
            if seconds >= 0.05:
                print(f"  {name:<40} {seconds:6.2f}")


if __name__ == "__main__":
    main()
