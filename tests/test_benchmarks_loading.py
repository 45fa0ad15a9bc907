import pytest

from eval.benchmarks import BENCHMARKS_DIR_ENV, available_benchmarks, load_benchmark, load_benchmarks

EXPECTED_COUNTS = {
    "humaneval": 164,
    "humaneval_plus": 164,
    "mbpp": 500,  # evaluation split, task ids 11-510
    "mbpp_sanitized": 427,
    "mbpp_plus": 399,
    "cruxeval": 800,
    "multipl_e_cpp": 161,
    "multipl_e_java": 158,
    "multipl_e_js": 161,
    "multipl_e_ts": 159,
    "multipl_e_go": 154,
    "multipl_e_rs": 156,
    "multipl_e_sh": 158,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_every_benchmark_loads_from_the_local_layout(benchmarks_dir, name):
    problems = load_benchmark(name, benchmarks_dir)
    assert len(problems) == EXPECTED_COUNTS[name]
    assert len({p.task_id for p in problems}) == len(problems)
    assert all(p.prompt for p in problems)


def test_languages_are_sandbox_names(benchmarks_dir):
    languages = {load_benchmark(f"multipl_e_{lang}", benchmarks_dir)[0].language for lang in ("go", "rs", "sh", "js")}
    assert languages == {"go", "rust", "bash", "javascript"}


def test_environment_variable_selects_the_directory(benchmarks_dir, monkeypatch):
    monkeypatch.setenv(BENCHMARKS_DIR_ENV, str(benchmarks_dir))
    assert len(load_benchmark("humaneval")) == 164


def test_wrong_usage_is_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("humaneval_typo", tmp_path)
    with pytest.raises(FileNotFoundError, match="humaneval/HumanEval.jsonl.gz"):
        load_benchmark("humaneval", tmp_path)
    assert load_benchmarks(["humaneval"], tmp_path, skip_missing=True) == {}
    assert set(EXPECTED_COUNTS) == set(available_benchmarks())


def test_datasets_json_loader_still_cannot_read_evalplus_files(benchmarks_dir, tmp_path):
    """Why eval.benchmarks reads local files itself: if datasets learns to load these, switch to it."""
    import datasets

    path = benchmarks_dir / "evalplus" / "HumanEvalPlus-v0.1.10.jsonl.gz"
    with pytest.raises(Exception, match="too big|Could not convert|cannot mix|overflow|ArrowInvalid|JSON"):
        datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path))
    assert len(load_benchmark("humaneval_plus", benchmarks_dir)) == 164
