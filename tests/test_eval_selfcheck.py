"""The harness checks itself: reference solutions must pass, completions of other problems must not."""

from __future__ import annotations

import json

import pytest

from eval.benchmarks import load_benchmark
from eval.run import main


def _run(tmp_path, *args: str) -> dict:
    out = tmp_path / "out"
    assert main([*args, "--output-dir", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert (out / "results.md").read_text().startswith("# Results")
    return result


def test_reference_passes_humaneval_and_both_cruxeval_tasks(tmp_path, benchmarks_dir):
    result = _run(
        tmp_path,
        "--model",
        "reference",
        "--tasks",
        "humaneval,cruxeval_input,cruxeval_output",
        "--data-dir",
        str(benchmarks_dir),
    )
    tasks = result["tasks"]
    assert tasks["humaneval"]["num_solved"] == tasks["humaneval"]["num_problems"] == 164
    assert tasks["cruxeval_input"]["num_solved"] == tasks["cruxeval_input"]["num_problems"] == 800
    assert tasks["cruxeval_output"]["num_solved"] == tasks["cruxeval_output"]["num_problems"] == 800
    assert tasks["humaneval"]["pass@1"] == 1.0
    assert result["failed_references"] == {}
    # per-problem records, one line per problem, with the executed completion and its outcome
    lines = (tmp_path / "out" / "problems" / "humaneval.jsonl").read_text().splitlines()
    assert len(lines) == 164 and json.loads(lines[0])["samples"][0]["status"] == "passed"


def test_completions_of_other_problems_score_about_zero(tmp_path, benchmarks_dir):
    problems = load_benchmark("humaneval", benchmarks_dir)
    samples = tmp_path / "samples.jsonl"
    with open(samples, "w") as handle:
        for index, problem in enumerate(problems):
            other = problems[(index + 1) % len(problems)]
            handle.write(json.dumps({"task_id": problem.task_id, "completion": other.canonical_solution}) + "\n")
            handle.write(json.dumps({"task_id": problem.task_id, "completion": problem.canonical_solution}) + "\n")
    # two samples per problem, one right: pass@1 = 0.5 exactly, pass@2 = 1
    result = _run(
        tmp_path,
        "--samples",
        str(samples),
        "--tasks",
        "humaneval",
        "--n-samples",
        "2",
        "--data-dir",
        str(benchmarks_dir),
    )
    assert result["tasks"]["humaneval"]["pass@1"] == pytest.approx(0.5, abs=0.02)
    assert result["tasks"]["humaneval"]["pass@2"] == 1.0
    with open(samples, "w") as handle:
        for index, problem in enumerate(problems):
            other = problems[(index + 1) % len(problems)]
            handle.write(json.dumps({"task_id": problem.task_id, "completion": other.canonical_solution}) + "\n")
    result = _run(tmp_path, "--samples", str(samples), "--tasks", "humaneval", "--data-dir", str(benchmarks_dir))
    assert result["tasks"]["humaneval"]["pass@1"] <= 0.02


def test_reference_humaneval_plus_subset_and_instruct_mode(tmp_path, benchmarks_dir):
    result = _run(
        tmp_path,
        "--model",
        "reference",
        "--tasks",
        "humaneval_plus,mbpp_sanitized,fim_single_line,needle_in_code",
        "--mode",
        "instruct",
        "--limit",
        "25",
        "--data-dir",
        str(benchmarks_dir),
    )
    for task in ("humaneval_plus", "mbpp_sanitized"):
        assert result["tasks"][task]["pass@1"] == 1.0 and result["tasks"][task]["num_problems"] == 25
    assert result["tasks"]["fim_single_line"]["exact_match"] == 1.0
    assert result["tasks"]["needle_in_code"]["exact_match"] == 1.0


@pytest.mark.slow
def test_reference_full_humaneval_plus_and_mbpp(tmp_path, benchmarks_dir):
    result = _run(
        tmp_path,
        "--model",
        "reference",
        "--tasks",
        "humaneval_plus,mbpp_sanitized,mbpp,mbpp_plus",
        "--data-dir",
        str(benchmarks_dir),
    )
    assert result["tasks"]["humaneval_plus"]["num_solved"] == 164
    assert result["tasks"]["mbpp_sanitized"]["num_solved"] == result["tasks"]["mbpp_sanitized"]["num_problems"]
    # Canonical outputs are computed once per problem, so Mbpp/599 (sums of 10^8 numbers) no longer runs its
    # reference twice per sample: every MBPP+ reference passes.
    assert "mbpp_plus" not in result["failed_references"], result["failed_references"]
    assert result["tasks"]["mbpp"]["num_solved"] >= 495
