"""The FIM stage on real code: 2,000 stdlib snippets through the CLI (datatrove's local executor), read back."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest
from documents import read_docs, write_docs

from datatrove_pipelines.fim import FimConfig, FimStep, fim_format, fim_reassemble, fim_split, main
from datatrove_pipelines.tokenizer import FIM_MIDDLE_TOKEN, FIM_PREFIX_TOKEN, FIM_SUFFIX_TOKEN

STDLIB = Path(sysconfig.get_paths()["stdlib"])
N_DOCS = 2000


def stdlib_snippets(n: int) -> list[dict]:
    """``n`` real code documents: stdlib modules cut into pieces of 200-3000 characters."""
    docs: list[dict] = []
    for path in sorted(STDLIB.glob("*/*.py")) + sorted(STDLIB.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for start in range(0, len(text), 3000):
            piece = text[start : start + 3000]
            if len(piece) >= 200:
                docs.append(
                    {
                        "text": piece,
                        "id": f"stdlib/{path.relative_to(STDLIB)}#{start}",
                        "metadata": {"path": path.name},
                    }
                )
            if len(docs) == n:
                return docs
    return docs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, list[dict]]:
    docs = stdlib_snippets(N_DOCS)
    assert len(docs) == N_DOCS
    extra = [
        {"text": "x = 1", "id": "short", "metadata": {}},
        {"text": f"s = '{FIM_PREFIX_TOKEN}' # a file that talks about FIM markers", "id": "marker", "metadata": {}},
    ]
    return write_docs(tmp_path_factory.mktemp("fim-in"), docs + extra, per_file=500), docs + extra


@pytest.fixture(scope="module")
def spm_run(inputs, tmp_path_factory) -> tuple[Path, dict]:
    folder, _ = inputs
    out = tmp_path_factory.mktemp("fim-out")
    main(["--input", str(folder), "--output", str(out), "--rate", "0.5", "--seed", "0"])
    return out, json.loads((out / "stats.json").read_text())


def test_every_fim_document_reassembles_exactly_and_the_rate_holds(inputs, spm_run):
    _, originals = inputs
    by_id = {doc["id"]: doc["text"] for doc in originals}
    out, stats = spm_run
    kept = read_docs(out / "kept")
    assert len(kept) == len(originals) and not (out / "excluded").exists()
    assert all("fim" in doc["metadata"] for doc in kept)
    transformed = [doc for doc in kept if doc["metadata"]["fim"]]
    for doc in transformed:
        text = doc["text"]
        assert text.startswith(FIM_SUFFIX_TOKEN)
        assert text.index(FIM_SUFFIX_TOKEN) < text.index(FIM_PREFIX_TOKEN) < text.index(FIM_MIDDLE_TOKEN)
        assert fim_reassemble(text) == by_id[doc["id"]]
    for doc in kept:
        if not doc["metadata"]["fim"]:
            assert doc.get("text", "") == by_id[doc["id"]]
    real = [doc for doc in transformed if doc["id"] in by_id and doc["id"].startswith("stdlib/")]
    assert abs(len(real) / N_DOCS - 0.5) <= 0.05
    notes = stats["steps"]["fim"]["notes"]
    assert notes["transformed"]["docs"] == len(transformed)
    assert notes["too_short"]["docs"] == 1  # "x = 1"
    assert notes["contains_fim_token"]["docs"] == 1
    assert stats["total"]["docs_in"] == stats["total"]["docs_kept"] == len(originals)


def test_split_is_deterministic_per_id_and_seed_and_independent_of_tasks(inputs, spm_run, tmp_path):
    folder, _ = inputs
    out, _ = spm_run
    again = tmp_path / "again"
    main(["--input", str(folder), "--output", str(again), "--rate", "0.5", "--seed", "0", "--tasks", "2"])
    first = {doc["id"]: doc.get("text") for doc in read_docs(out / "kept")}
    second = {doc["id"]: doc.get("text") for doc in read_docs(again / "kept")}
    assert first == second
    config0, config1 = FimConfig(rate=1.0, seed=0), FimConfig(rate=1.0, seed=1)
    text = (STDLIB / "os.py").read_text()
    cuts = {fim_split(text, f"doc{i}", config0) for i in range(20)}
    assert len(cuts) == 20  # ids give different cuts
    assert fim_split(text, "doc0", config0) != fim_split(text, "doc0", config1)  # seeds too


def test_cut_points_cover_the_document_uniformly():
    """Character-level cuts: the middle's start is uniform-ish over the text (not snapped to lines)."""
    text = "a" * 1000
    starts = [len(fim_split(text, f"id{i}", FimConfig(rate=1.0))[0]) for i in range(4000)]
    # the smaller of two uniform cuts has mean n/3
    assert abs(sum(starts) / len(starts) - 1001 / 3) < 15
    assert any(s % 10 for s in starts)


def test_psm_mode_and_rates_zero_and_one(tmp_path):
    docs = stdlib_snippets(200)
    folder = write_docs(tmp_path / "in", docs, per_file=500)
    main(["--input", str(folder), "--output", str(tmp_path / "psm"), "--rate", "1", "--mode", "psm"])
    kept = read_docs(tmp_path / "psm" / "kept")
    by_id = {doc["id"]: doc["text"] for doc in docs}
    assert all(doc["metadata"]["fim"] for doc in kept)
    for doc in kept:
        assert doc["text"].startswith(FIM_PREFIX_TOKEN)
        assert fim_reassemble(doc["text"], mode="psm") == by_id[doc["id"]]
    main(["--input", str(folder), "--output", str(tmp_path / "none"), "--rate", "0"])
    assert not any(doc["metadata"]["fim"] for doc in read_docs(tmp_path / "none" / "kept"))


def test_exact_spm_format_worked_example():
    assert fim_format("def f(", "x", "):\n") == "<[fim-suffix]>):\n<[fim-prefix]>def f(<[fim-middle]>x"
    with pytest.raises(ValueError):
        fim_reassemble("no markers at all")


def test_the_worked_example_of_the_docs_is_what_the_code_does():
    """docs/fim.md: document ``example/1``, seed 0, rate 0.5 — its documented FIM text, read from the page."""
    import ast

    page = (Path(__file__).resolve().parents[1] / "docs" / "fim.md").read_text()
    documented = next(line for line in page.splitlines() if line.startswith('"<[fim-suffix]>'))
    text = "def add(a, b):\n    return a + b\n"
    parts = fim_split(text, "example/1", FimConfig(rate=0.5, seed=0))
    assert parts == ("def ", "add(a, b):\n    return ", "a + b\n")
    assert fim_format(*parts) == ast.literal_eval(documented)


def test_step_marks_every_document(tmp_path):
    from datatrove.data import Document

    step = FimStep(FimConfig(rate=1.0))
    docs = list(step.run([Document(text="abc", id="1"), Document(text="print('hello world')\n", id="2")]))
    assert [doc.metadata["fim"] for doc in docs] == [False, True]


@pytest.mark.parametrize("flags", [["--rate", "1.5"], ["--rate", "-0.1"], ["--mode", "xyz"]])
def test_wrong_usage_is_a_one_line_error(flags, tmp_path, capsys):
    folder = write_docs(tmp_path / "in", stdlib_snippets(3))
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(folder), "--output", str(tmp_path / "out"), *flags])
    assert raised.value.code == 2
    assert "error:" in capsys.readouterr().err
