"""The samples interface of ``eval.run``: what a user hands in is checked before anything runs, and judged as given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.benchmarks import load_benchmark
from eval.run import main
from eval.samples import SamplesError, read_samples


def _write(path, records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return str(path)


def _fails(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"task_id": "HumanEval/0", "completion": None}, "completion must be a string, got NoneType"),
        ({"task_id": "HumanEval/0", "completion": 3}, "completion must be a string, got int"),
        ({"task_id": "HumanEval/0", "completion": ["x"]}, "completion must be a string, got list"),
        (["HumanEval/0", "x"], "expected a JSON object, got list"),
        ("{not json", "not JSON"),
        ({"task_id": None, "completion": "x"}, "task_id must be a string"),
        ({"task_id": "HumanEval/0"}, "expected exactly one of completion or solution"),
        ({"task_id": "HumanEval/0", "completion": "x", "solution": "y"}, "expected exactly one of"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/1", "completion": "    return []\n"}, "", bad])
    with pytest.raises(SamplesError) as error:
        read_samples(path)
    assert str(error.value).startswith(f"{path}:3: ") and message in str(error.value)


def test_bytes_that_are_not_utf8_name_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"task_id": "HumanEval/0", "completion": "x"}\n\xff\xfe{"task_id": "HumanEval/1"}\n')
    with pytest.raises(SamplesError, match=f"^{path}:2: not UTF-8 text"):
        read_samples(path)


@pytest.mark.parametrize(
    ("k", "n", "message"),
    [("abc", "1", "expected comma-separated whole numbers"), ("5", "1", "between 1 and --n-samples (1)")]
    + [("0,1", "2", "between 1 and --n-samples (2)"), (",", "1", "between 1 and --n-samples")],
)
def test_bad_k_is_a_usage_error_before_anything_heavy(tmp_path, capsys, benchmarks_dir, k, n, message):
    """--k abc once crashed with a traceback, and --k 5 with one sample once failed only after the whole run."""
    samples = _write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "    return False\n"}])
    args = ["--samples", samples, "--tasks", "humaneval", "--task-ids", "HumanEval/0", "--k", k, "--n-samples", n]
    err = _fails(capsys, *args, "--output-dir", str(tmp_path / "out"), "--data-dir", str(benchmarks_dir))
    assert message in err and "Traceback" not in err


def test_errors_come_before_any_execution(tmp_path, capsys, benchmarks_dir, monkeypatch):
    monkeypatch.setenv("SEED_CODER_BENCHMARKS_DIR", str(benchmarks_dir))  # offline: the local copies, not the Hub
    out = tmp_path / "out"
    bad = _write(tmp_path / "bad.jsonl", [{"task_id": "HumanEval/0", "completion": None}])
    err = _fails(
        capsys, "--samples", bad, "--tasks", "humaneval", "--output-dir", str(out), "--data-dir", str(benchmarks_dir)
    )
    assert f"{bad}:1: completion must be a string" in err and "Traceback" not in err
    assert not (out / "results.json").exists()
    # ids: unknown to the task, and selected problems without a sample, are errors (not silent 0% or empty code)
    unknown = _write(
        tmp_path / "u.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}, {"task_id": "Nope/1", "completion": "x"}]
    )
    err = _fails(
        capsys,
        "--samples",
        unknown,
        "--tasks",
        "humaneval",
        "--task-ids",
        "HumanEval/0",
        "--output-dir",
        str(out),
        "--data-dir",
        str(benchmarks_dir),
    )
    assert "belong to none of the selected tasks: Nope/1" in err
    missing = _write(tmp_path / "m.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}])
    err = _fails(
        capsys,
        "--samples",
        missing,
        "--tasks",
        "humaneval",
        "--output-dir",
        str(out),
        "--data-dir",
        str(benchmarks_dir),
    )
    assert "no sample for 163 selected problem(s)" in err
    err = _fails(
        capsys,
        "--samples",
        missing,
        "--tasks",
        "humaneval",
        "--task-ids",
        "HumanEval/0,HumanEval/999",
        "--output-dir",
        str(out),
        "--data-dir",
        str(benchmarks_dir),
    )
    assert "--task-ids: not in the selected tasks: HumanEval/999" in err
    err = _fails(capsys, "--model", str(tmp_path / "no-such-model"), "--tasks", "humaneval", "--output-dir", str(out))
    assert "no such model directory" in err
    err = _fails(capsys, "--tasks", "humaneval,nonsense", "--output-dir", str(out))
    assert "unknown task(s) nonsense" in err


def test_solution_lines_task_ids_and_report(tmp_path, benchmarks_dir):
    problems = {p.task_id: p for p in load_benchmark("humaneval", benchmarks_dir)}
    chosen = ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    # EvalPlus-style: a complete program per line (prompt + body), one right and one wrong per problem
    lines = []
    for task_id in chosen:
        p = problems[task_id]
        lines.append({"task_id": task_id, "solution": p.prompt + p.canonical_solution})
        lines.append({"task_id": task_id, "solution": p.prompt + "    return None\n"})
    samples = _write(tmp_path / "solutions.jsonl", lines)
    out = tmp_path / "out"
    args = ["--samples", samples, "--tasks", "humaneval", "--task-ids", ",".join(chosen), "--n-samples", "2"]
    assert main([*args, "--output-dir", str(out), "--data-dir", str(benchmarks_dir)]) == 0
    result = json.loads((out / "results.json").read_text())["tasks"]["humaneval"]
    assert result["num_problems"] == 3 and result["pass@1"] == pytest.approx(0.5) and result["pass@2"] == 1.0
    report = (out / "results.md").read_text()
    assert "Seed-Coder-8B" not in report and "not of a model run" in report
    # the same programs as completions (the body only) score the same
    completions = _write(
        tmp_path / "completions.jsonl",
        [{"task_id": t, "completion": problems[t].canonical_solution} for t in chosen],
    )
    out2 = tmp_path / "out2"
    assert (
        main(
            [
                "--samples",
                completions,
                "--tasks",
                "humaneval",
                "--task-ids",
                ",".join(chosen),
                "--output-dir",
                str(out2),
                "--data-dir",
                str(benchmarks_dir),
            ]
        )
        == 0
    )
    assert json.loads((out2 / "results.json").read_text())["tasks"]["humaneval"]["pass@1"] == 1.0


def test_help_and_argument_checks_import_nothing_heavy():
    code = (
        "import sys\nfrom eval import run\nrun.build_parser().format_help()\n"
        "try:\n    run.selected_tasks(run.build_parser().parse_args(['--tasks', 'x', '--output-dir', 'o']))\n"
        "except run.UsageError:\n    pass\n"
        "print(sorted(m for m in ('lighteval', 'torch', 'transformers', 'datasets') if m in sys.modules))\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    assert proc.stdout.strip() == "[]"


def test_limit_picks_problems_and_missing_samples_are_an_error(tmp_path, capsys, benchmarks_dir):
    """--limit N: lighteval's seeded subset, not the first N; samples for other problems do not fill it silently."""
    first = _write(tmp_path / "first.jsonl", [{"task_id": "HumanEval/0", "completion": "    return False\n"}])
    common = ["--tasks", "humaneval", "--data-dir", str(benchmarks_dir), "--output-dir", str(tmp_path / "out")]
    err = _fails(capsys, "--samples", first, "--limit", "3", *common)
    assert "no sample for" in err and "selected problem(s)" in err and "Traceback" not in err


def test_code_and_fim_ids_are_checked_up_front_together(tmp_path, capsys, benchmarks_dir):
    """With a FIM task beside a code task the ids were not checked at all (a stray id was silently ignored)."""
    fim_rows = ["HumanEval/0/L0", "HumanEval/0/L1"]
    lines = [{"task_id": "HumanEval/0", "completion": "x"}] + [{"task_id": r, "completion": "x"} for r in fim_rows]
    common = ["--tasks", "humaneval,fim_single_line", "--task-ids", "HumanEval/0", "--data-dir", str(benchmarks_dir)]
    common += ["--output-dir", str(tmp_path / "out")]
    stray = _write(tmp_path / "stray.jsonl", [*lines, {"task_id": "Nope/1", "completion": "x"}])
    err = _fails(capsys, "--samples", stray, *common)
    assert "1 task id(s) belong to none of the selected tasks: Nope/1" in err and "Traceback" not in err
    short = _write(tmp_path / "short.jsonl", lines)
    err = _fails(capsys, "--samples", short, *common)
    assert "no sample for" in err and "HumanEval/0/L2" in err and "HumanEval/0/L0" not in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_ids_known_only_at_run_time_are_checked_after_answering(tmp_path, capsys, benchmarks_dir):
    """The needle's ids depend on the model's window, so they cannot be checked up front; a sample that no task
    asked for is still an error after the run (it was ignored), and only a warning when --limit chose problems."""
    from eval.needle import build_examples

    answers = [{"task_id": e.task_id, "completion": e.answer} for e in build_examples(1200)]
    out = tmp_path / "out"
    common = ["--tasks", "needle_in_code", "--max-context", "1200", "--data-dir", str(benchmarks_dir)]
    common += ["--output-dir", str(out)]
    stray = _write(tmp_path / "stray.jsonl", [*answers, {"task_id": "needle/7/0.5", "completion": "1"}])
    err = _fails(capsys, "--samples", stray, *common)
    assert "1 task id(s) belong to none of the selected tasks: needle/7/0.5" in err and "Traceback" not in err
    assert not (out / "results.json").exists()
    assert main(["--samples", _write(tmp_path / "answers.jsonl", answers), *common]) == 0
    result = json.loads((out / "results.json").read_text())["tasks"]["needle_in_code"]
    assert result["num_problems"] == len(answers) == 10 and result["exact_match"] == 1.0 and not result["unsolved"]
    assert main(["--samples", stray, *common, "--limit", "2"]) == 0  # other problems' samples: a warning
    assert json.loads((out / "results.json").read_text())["tasks"]["needle_in_code"]["num_problems"] == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--max-context", "-5"], "--max-context must be at least 1, got -5"),
        (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1, got 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--top-p", "0"], "--top-p must lie in (0, 1]"),
        (["--temperature", "nan"], "--temperature must be >= 0, got nan"),
        (["--model", "DIR"], "a directory without config.json, not a saved model"),
        (["--model", "FILE"], "a file, not a model directory"),
        (["--data-dir", "DIR"], "benchmark 'humaneval' expected at"),
    ],
)
def test_careless_arguments_are_one_line_errors(tmp_path, capsys, arguments, message):
    """Values that once crashed late (a folder that is not a model: transformers' ValueError after the imports; an
    empty --data-dir: a FileNotFoundError traceback) or were taken silently (--max-context -5, --top-p 0)."""
    (tmp_path / "file.txt").write_text("x")
    given = [{"DIR": str(tmp_path), "FILE": str(tmp_path / "file.txt")}.get(a, a) for a in arguments]
    err = _fails(capsys, "--tasks", "humaneval", "--output-dir", str(tmp_path / "out"), *given)
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_an_unreachable_hub_is_one_line_that_says_what_to_do(tmp_path, capsys, monkeypatch):
    """Offline without local copies: the Hub look-up fails (here forced offline, so nothing touches the network)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.delenv("SEED_CODER_BENCHMARKS_DIR", raising=False)
    samples = _write(tmp_path / "s.jsonl", [{"task_id": "HumanEval/0", "completion": "x"}])
    err = _fails(capsys, "--samples", samples, "--tasks", "humaneval", "--output-dir", str(tmp_path / "out"))
    assert "Couldn't reach" in err and "--data-dir" in err and "Traceback" not in err
