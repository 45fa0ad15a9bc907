"""A real (random, tiny) model through lighteval's transformers backend, end to end on CPU."""

from __future__ import annotations

import json

from eval.run import main


def test_tiny_model_end_to_end_base_mode(tmp_path, tiny_model_dir, benchmarks_dir):
    out = tmp_path / "out"
    argv = [
        "--model",
        str(tiny_model_dir),
        "--backend",
        "transformers",
        "--tasks",
        "humaneval,cruxeval_output,fim_single_line,multipl_e_js",
        "--limit",
        "2",
        "--max-new-tokens",
        "16",
        "--batch-size",
        "2",
        "--data-dir",
        str(benchmarks_dir),
        "--output-dir",
        str(out),
    ]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["tasks"]) == {"humaneval", "cruxeval_output", "fim_single_line", "multipl_e_js"}
    for task, metrics in result["tasks"].items():
        metric = "exact_match" if task == "fim_single_line" else "pass@1"
        records = [json.loads(line) for line in (out / "problems" / f"{task}.jsonl").read_text().splitlines()]
        assert metrics["num_problems"] == len(records) == 2, (task, metrics)
        assert all(isinstance(r["samples"][0]["completion"], str) for r in records)
        # the reported metric is exactly what the per-sample verdicts say (n = 1)
        solved = [r["samples"][0]["passed"] for r in records]
        assert metrics[metric] == sum(solved) / len(solved), (task, metrics, solved)
        assert all(s["passed"] == (s["status"] == "passed") for r in records for s in r["samples"])
    # A random model does not solve HumanEval; every failure carries the sandbox's status.
    records = [json.loads(line) for line in (out / "problems" / "humaneval.jsonl").read_text().splitlines()]
    assert all(r["samples"][0]["status"] != "passed" for r in records)
    assert "Seed-Coder-8B" in (out / "results.md").read_text()


def test_tiny_model_instruct_mode_with_samples(tmp_path, tiny_model_dir, benchmarks_dir):
    out = tmp_path / "out"
    argv = [
        "--model",
        str(tiny_model_dir),
        "--tasks",
        "mbpp_sanitized",
        "--mode",
        "instruct",
        "--limit",
        "1",
        "--n-samples",
        "3",
        "--k",
        "1,3",
        "--max-new-tokens",
        "8",
        "--data-dir",
        str(benchmarks_dir),
        "--output-dir",
        str(out),
    ]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())
    metrics = result["tasks"]["mbpp_sanitized"]
    assert metrics["num_samples"] == 3 and "pass@3" in metrics
    (record,) = [json.loads(line) for line in (out / "problems" / "mbpp_sanitized.jsonl").read_text().splitlines()]
    # three sampled chat answers, each judged on its own; pass@1 = c/n and pass@3 = [c > 0] from those verdicts
    assert record["n"] == 3 and len(record["samples"]) == 3
    correct = sum(s["passed"] for s in record["samples"])
    assert record["correct"] == correct
    assert metrics["pass@1"] == correct / 3 and metrics["pass@3"] == float(correct > 0)
    # a random 8-token answer has no code that could pass: every sample fails with the sandbox's reason
    assert correct == 0 and all(s["status"] != "passed" and s["detail"] for s in record["samples"])
    assert "Seed-Coder-8B" in (out / "results.md").read_text()  # a real model run is set beside the paper
