"""The tiny end-to-end recipe (`make demo`) runs every stage and leaves each stage's outputs behind."""

import json

from recipes.demo import main


def test_demo_runs_all_stages_end_to_end(tmp_path, benchmarks_dir, monkeypatch, capsys):
    monkeypatch.setenv("SEED_CODER_BENCHMARKS_DIR", str(benchmarks_dir))
    main(["--output", str(tmp_path), "--limit-mb", "3", "--per-language", "150", "--eval-limit", "1"])
    printed = capsys.readouterr().out

    code_files = json.loads((tmp_path / "code_files" / "stats.json").read_text())["total"]
    assert code_files["docs_in"] == code_files["docs_kept"] + code_files["docs_excluded"]
    assert code_files["docs_kept"] > 100 and code_files["docs_excluded"] >= 10  # the planted bad files at least

    scored = json.loads((tmp_path / "quality" / "scored" / "stats.json").read_text())["total"]
    assert scored["docs_in"] == code_files["docs_kept"]
    assert 0.05 <= scored["docs_excluded"] / scored["docs_in"] <= 0.15  # the bottom ~10% by score

    reference = json.loads((tmp_path / "eval" / "eval_reference" / "results.json").read_text())
    assert reference["tasks"]["humaneval"]["num_solved"] == 164
    assert reference["tasks"]["cruxeval_output"]["num_solved"] == 800
    assert (tmp_path / "eval" / "eval_tiny_model" / "results.json").is_file()
    assert "demo finished" in printed and "decontamination" in printed
