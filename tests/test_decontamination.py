"""10-gram decontamination on the real offline benchmark copies and real stdlib files."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from datatrove.data import Document

from datatrove_pipelines.decontamination import (
    BenchmarkNGramIndex,
    DecontaminationConfig,
    DecontaminationFilter,
    normalize_tokens,
)
from eval.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def index(benchmarks_dir) -> BenchmarkNGramIndex:
    return BenchmarkNGramIndex.from_benchmarks(DecontaminationConfig(benchmarks_dir=str(benchmarks_dir)))


def test_normalization_lowercases_and_splits_on_non_word_characters():
    assert normalize_tokens("def Foo(x_1):\n    return x_1+2") == ["def", "foo", "x_1", "return", "x_1", "2"]


def test_pasted_benchmark_solutions_are_found(index, benchmarks_dir):
    humaneval = load_benchmark("humaneval", benchmarks_dir)
    problem = humaneval[0]
    pasted = "import os\n\n" + problem.prompt + problem.canonical_solution + "\n\nprint('done')\n"
    match = index.first_match(pasted)
    assert match is not None and match.benchmark in ("humaneval", "humaneval_plus")
    # formatting changes do not hide it: the normalization ignores case, whitespace and punctuation
    assert index.first_match(problem.canonical_solution.upper().replace("    ", "\t")) is not None
    java = load_benchmark("multipl_e_java", benchmarks_dir)[3]
    assert index.first_match(java.prompt + "\n    return 0;\n  }\n" + java.test) is not None


def test_boilerplate_ngrams_are_pruned(index):
    # MultiPL-E Java prompts all start with the same imports: not evidence of contamination
    imports = (
        "import java.util.*;\nimport java.lang.reflect.*;\nimport org.javatuples.*;\nimport java.security.*;\n"
        "import java.math.*;\nimport java.io.*;\nimport java.util.stream.*;\nclass Main {}\n"
    )
    assert index.first_match(imports) is None
    assert index.first_match('if __name__ == "__main__":\n    import doctest\n    doctest.testmod()\n') is None


def test_stdlib_is_not_dropped_en_masse(index):
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(root.glob("*.py"))][:150]
    flagged = [p.name for p in files if index.first_match(p.read_text(errors="replace"))]
    assert len(files) > 50
    assert len(flagged) <= 2, flagged


def test_filter_excludes_with_reason_and_match(index, benchmarks_dir, tmp_path):
    problem = load_benchmark("mbpp", benchmarks_dir)[0]
    step = DecontaminationFilter(index=index)
    dirty = Document(text=problem.canonical_solution + "\n" + problem.test, id="r/a.py", metadata={"size": 10})
    clean = Document(text="def add(a, b):\n    return a + b\n", id="r/b.py", metadata={"size": 10})
    kept = list(step.run([dirty, clean]))
    assert [d.id for d in kept] == ["r/b.py"]
    assert dirty.metadata["filter_reason"].startswith("benchmark:mbpp")
    assert dirty.metadata["contamination"]["task_id"] == problem.task_id


def test_missing_benchmarks_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="none of the benchmarks"):
        BenchmarkNGramIndex.from_benchmarks(DecontaminationConfig(benchmarks_dir=str(tmp_path)))
