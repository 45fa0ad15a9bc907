"""The web stage end to end: train-recall with an LLM judge, then run (dedup, heuristics, per-category quality
score, decontamination), on WARC files built from real local documents. The judge/scorer is a STAND-IN: a real
OpenAI-compatible HTTP server on loopback whose answers follow a documented heuristic (stand_in_judge.py), because no
LLM can run here."""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
from pathlib import Path

import pytest
import yaml
from datatrove.data import Document

from datatrove_pipelines.quality.annotate import read_documents
from datatrove_pipelines.web.__main__ import main
from datatrove_pipelines.web.extract import CodeKeepingExtractor, ExtractionConfig
from datatrove_pipelines.web.recall import FastTextSettings, code_probability, load_model, train_fasttext
from datatrove_pipelines.web.sample_pages import (
    Page,
    bad_pages,
    licence_pages,
    readme_pages,
    stdlib_pages,
    write_warc,
)
from datatrove_pipelines.web.stand_in_judge import stand_in_verdict, start_server
from eval.benchmarks import load_benchmark


def _excluded(output: Path, step: str) -> list[Document]:
    """Every document of excluded/<step>/, also those without text (datatrove's JsonlReader skips those)."""
    docs = []
    for path in sorted((output / "excluded" / step).glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            for line in handle:
                record = json.loads(line)
                docs.append(Document(text=record.get("text", ""), id=record["id"], metadata=record["metadata"]))
    return docs


def _check_accounting(stats: dict, output: Path) -> None:
    total = stats["total"]
    assert total["docs_in"] == total["docs_kept"] + total["docs_excluded"]
    for name, step in stats["steps"].items():
        assert step["docs_in"] == step["docs_kept"] + step["docs_excluded"], name
        assert sum(r["docs"] for r in step["reasons"].values()) == step["docs_excluded"], name
        written = _excluded(output, name)
        assert len(written) == step["docs_excluded"], name  # every exclusion is on disk with its reason
        assert all(d.metadata.get("filter_reason") for d in written)
    assert len(read_documents(str(output / "kept"))) == total["docs_kept"]


@pytest.fixture(scope="module")
def judge():
    server = start_server()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/v1"
    server.shutdown()
    server.server_close()


def _split_pages():
    """Training pages and fresh pages (different packages and modules) for testing the classifier."""
    pages = list(readme_pages()) + list(stdlib_pages()) + list(licence_pages(limit=60))

    def fresh(page) -> bool:  # by the page's own URL, so that installing one more package moves no other page
        return hashlib.sha256(page.url.encode()).digest()[0] % 2 == 1

    return [page for page in pages if not fresh(page)], [page for page in pages if fresh(page)]


FORK_URL = "https://example.org/forked-readme"


def _planted_pages(pages, benchmarks_dir) -> list[Page]:
    """Code pages that pass the rule and must fall at a later step: a near copy of a README page (its prose reworded
    in places), a one-line listing, symbol soup in a <pre>, and a benchmark problem pasted into a tutorial."""
    original = next(p for p in pages if p.kind == "readme-markup" and p.code_blocks)
    fork = original.html.replace("<h1>", "<h1>Fork of ", 1).replace("</article>", "<p>Forked here.</p></article>", 1)
    problem = load_benchmark("humaneval", benchmarks_dir)[2]
    prose = "<p>A worked exercise from a blog post, with the solution explained line by line for beginners.</p>"
    listing = html.escape(f"{problem.prompt}{problem.canonical_solution}")
    soup = "<pre>" + "=== +--+ |  | +--+ ===\n" * 30 + "</pre>"
    return [
        Page(FORK_URL, fork, "near-copy", original.code_blocks),
        Page("https://example.org/one-liner", "<html><body><pre>print(1)</pre></body></html>", "short"),
        Page("https://example.org/ascii-art", f"<html><body>{soup}</body></html>", "symbols"),
        Page(
            "https://example.org/pasted-problem", f"<html><body>{prose}<pre>{listing}</pre>{prose}</body></html>", "x"
        ),
    ]


def test_rule_only_run_small(tmp_path, benchmarks_dir, monkeypatch):
    """No classifier, no LLM: the rule, dedup, heuristics, decontamination; bad records; the funnel invariant."""
    monkeypatch.setenv("SEED_CODER_CACHE_DIR", str(tmp_path / "cache"))
    pages = list(readme_pages(limit=16)) + list(licence_pages(limit=4))
    data = tmp_path / "warcs"
    data.mkdir()
    write_warc(str(data / "a.warc.gz"), pages + bad_pages() + _planted_pages(pages, benchmarks_dir))
    write_warc(str(data / "copy.warc"), pages[:5])  # exact duplicates
    whole = (data / "copy.warc").read_bytes()
    (data / "cut.warc").write_bytes(whole[: len(whole) // 2])  # a truncated file
    (data / "page.html").write_text(pages[0].html)  # a plain HTML file (another duplicate)
    output = tmp_path / "out"
    uploads = []
    monkeypatch.setattr("datatrove_pipelines.stage.push_to_hub", lambda out, repo, private: uploads.append(repo))
    main(
        ["run", "--input", str(data), "--output", str(output), "--no-quality-score"]
        + ["--benchmarks", str(benchmarks_dir), "--tasks", "1", "--push-to-hub", "org/web"]
    )
    stats = json.loads((output / "stats.json").read_text())
    _check_accounting(stats, output)
    steps = stats["steps"]
    assert list(steps) == [
        "page_guard", "extraction", "recall", "exact_dedup", "near_dedup", "heuristics", "category_sample",
        "decontamination",
    ]  # fmt: skip
    assert set(steps["page_guard"]["reasons"]) >= {"non_html:image/png", "empty_payload", "http_status:404"}
    assert any(r.startswith("truncated_record") for r in steps["page_guard"]["reasons"])
    assert steps["exact_dedup"]["docs_excluded"] >= 3 and set(steps["exact_dedup"]["reasons"]) == {"exact_duplicate"}
    assert set(steps["recall"]["reasons"]) == {"not_code_related"}
    # the planted pages: each excluded at its step, with its reason
    original = next(p.url for p in pages if p.kind == "readme-markup" and p.code_blocks)
    near = [d for d in _excluded(output, "near_dedup") if d.metadata["url"] in (original, FORK_URL)]
    assert [d.metadata["filter_reason"] for d in near] == ["near_duplicate"]  # one of the pair (by record id) stays
    planted = {
        "https://example.org/one-liner": ("heuristics", "too_few_words"),
        "https://example.org/ascii-art": ("heuristics", "mostly_symbols"),
        "https://example.org/pasted-problem": ("decontamination", "benchmark:humaneval"),
    }
    for url, (step, reason) in planted.items():
        assert [d.metadata["filter_reason"] for d in _excluded(output, step) if d.metadata["url"] == url] == [reason]
    kept = read_documents(str(output / "kept"))
    assert kept and all(d.metadata["recall"] == "rule" and d.metadata["code_markup"] for d in kept)
    markup_urls = {p.url for p in pages if p.kind == "readme-markup" and p.code_blocks}
    markup_urls -= {d.metadata["url"] for d in near}  # the planted fork's original, when it lost the tie
    assert markup_urls <= {d.metadata["url"] for d in kept} | {
        d.metadata["url"] for d in _excluded(output, "category_sample")
    }
    card = (output / "README.md").read_text()
    assert "Code-related web pages" in card and "page_guard" in card
    assert uploads == ["org/web"]
    # a re-run of the same command skips the completed tasks: nothing lost, nothing duplicated
    main(
        [
            "run",
            "--input",
            str(data),
            "--output",
            str(output),
            "--no-quality-score",
            "--benchmarks",
            str(benchmarks_dir),
        ]
    )
    assert json.loads((output / "stats.json").read_text()) == stats
    assert sorted(d.id for d in read_documents(str(output / "kept"))) == sorted(d.id for d in kept)


def _classifier_recall(model_path: str) -> tuple[float, float, int, int]:
    """Train on rule positives + judged pages, measure on fresh pages: (recall, false positive rate, counts)."""
    train_pages, fresh_pages = _split_pages()
    extractor = CodeKeepingExtractor(ExtractionConfig(sandbox=False))

    def labelled(pages):
        rows = []
        for page in pages:
            text, counts = extractor.extract_page(page.html)
            if text.strip():
                rows.append((text, 1 if counts["code_blocks"] else stand_in_verdict(text), counts["code_blocks"] > 0))
        return rows

    train, fresh = labelled(train_pages), labelled(fresh_pages)
    model = train_fasttext([(t, y) for t, y, _ in train], FastTextSettings(), model_path)
    unmarked_code = [t for t, y, markup in fresh if y and not markup]
    others = [t for t, y, _ in fresh if not y]
    recall = sum(code_probability(model, t) >= 0.5 for t in unmarked_code) / max(1, len(unmarked_code))
    false_positive_rate = sum(code_probability(model, t) >= 0.5 for t in others) / max(1, len(others))
    return recall, false_positive_rate, len(unmarked_code), len(others)


def test_classifier_learns_code_pages_without_markup(tmp_path):
    """fastText (dim 100) on rule positives + judged pages: recall on fresh pages whose code lost its markup."""
    recall, false_positive_rate, n_code, n_others = _classifier_recall(str(tmp_path / "recall.bin"))
    print(f"recall {recall:.3f} on {n_code} unmarked code pages, false positives {false_positive_rate:.3f}")
    assert n_code >= 15 and n_others >= 15
    assert recall >= 0.9
    assert false_positive_rate < 0.5


@pytest.mark.slow
def test_train_recall_then_run(tmp_path, judge, benchmarks_dir, monkeypatch):
    monkeypatch.setenv("SEED_CODER_CACHE_DIR", str(tmp_path / "cache"))
    train_pages, fresh_pages = _split_pages()
    data = tmp_path / "crawl"
    data.mkdir()
    write_warc(str(data / "crawl-0.warc.gz"), train_pages[0::2] + bad_pages())
    write_warc(str(data / "crawl-1.warc"), train_pages[1::2])
    recall_dir = tmp_path / "recall"
    common = ["--base-url", judge, "--model", "stand-in-web-judge"]
    main(
        ["train-recall", "--input", str(data), "--output", str(recall_dir), *common]
        + [
            "--judge-sample",
            "120",
            "--rounds",
            "2",
            "--per-round",
            "40",
            "--confident",
            "0.5",
            "--target-recall",
            "0.99",
        ]
    )
    stats = json.loads((recall_dir / "stats.json").read_text())
    summary = stats["recall"]
    assert summary["gold"]["rule"] > 20 and summary["gold"]["judge_positive"] > 10
    assert summary["gold"]["judge_negative"] > 10
    held_out = summary["gold"]["validation"] / (summary["gold"]["train"] + summary["gold"]["validation"])
    assert 0.2 <= held_out <= 0.4  # the 70/30 split of the gold set (a seeded hash of the id)
    rounds = summary["rounds"]
    assert len(rounds) >= 2 and rounds[0].get("confident_recalls", 0) > 0
    assert rounds[1]["train_pages"] > rounds[0]["train_pages"]  # confirmed recalls were added
    for result in rounds:
        assert result["recall"] >= 0.9 and 0 < result["precision"] <= 1
        assert result["validation_positives"] > 10
    assert summary["threshold"] == rounds[-1]["threshold"]
    assert (recall_dir / "recall_rounds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gold = read_documents(str(recall_dir / "gold"))
    assert {d.metadata["split"] for d in gold} == {"train", "validation"}
    validation_ids = {d.id for d in gold if d.metadata["split"] == "validation"}
    assert not validation_ids & {d.id for d in gold if d.metadata["split"] == "train"}

    # the trained classifier at its operating point, on fresh code pages (other packages) without markup
    model = load_model(str(recall_dir / "recall_model.bin"))
    extractor = CodeKeepingExtractor(ExtractionConfig(sandbox=False))
    fresh = [(p, *extractor.extract_page(p.html)) for p in fresh_pages[:150]]
    unmarked_code = [t for p, t, c in fresh if t.strip() and not c["code_blocks"] and stand_in_verdict(t)]
    assert len(unmarked_code) >= 15
    recall = sum(code_probability(model, t) >= summary["threshold"] for t in unmarked_code) / len(unmarked_code)
    assert recall >= 0.9

    # run with custom categories: per-category thresholds select as configured
    categories = tmp_path / "categories.yaml"
    categories.write_text(
        yaml.safe_dump(
            {
                "default": "other",
                "categories": {
                    "documentation": {"threshold": 7, "domains": ["readthedocs.io", "docs.python.org"]},
                    "code_host": {"threshold": 4, "domains": ["github.com"]},
                    "other": {"threshold": 5, "sampling_rate": 0.5},
                },
            }
        )
    )
    output = tmp_path / "web"
    main(
        ["run", "--input", str(data), "--output", str(output), "--recall-model", str(recall_dir), *common]
        + ["--categories", str(categories), "--benchmarks", str(benchmarks_dir), "--tasks", "2"]
    )
    stats = json.loads((output / "stats.json").read_text())
    _check_accounting(stats, output)
    card = (output / "README.md").read_text()
    assert '"model_path": "recall_model.bin"' in card and '"threshold": 7' in card
    assert f'"threshold": {summary["threshold"]}' in card  # run's default: train-recall's operating point
    thresholds = {"documentation": 7, "code_host": 4, "other": 5}
    kept = read_documents(str(output / "kept"))
    assert {d.metadata["category"] for d in kept} >= {"documentation", "code_host"}
    for doc in kept:
        assert doc.metadata["quality_score"] >= thresholds[doc.metadata["category"]]
        assert doc.metadata["recall"] in ("rule", "classifier")
    below = _excluded(output, "quality_threshold")
    assert below and all(d.metadata["quality_score"] < thresholds[d.metadata["category"]] for d in below)
    assert {d.metadata["filter_reason"] for d in below} <= {f"below_threshold:{c}" for c in thresholds}
    assert any(d.metadata["recall"] == "classifier" for d in kept)
    assert stats["steps"]["quality_score"]["docs_excluded"] == 0  # the stand-in always answers
    with gzip.open(next((output / "kept").glob("*.jsonl.gz")), "rt") as handle:
        assert json.loads(handle.readline())["metadata"]["quality_score"] >= 4


def test_usage_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    with pytest.raises(SystemExit) as error:
        main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "o")])
    assert error.value.code == 2 and "needs an LLM" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        main(
            [
                "run",
                "--input",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
                "--no-quality-score",
                "--recall-model",
                str(tmp_path),
            ]
        )
    assert "no recall model" in capsys.readouterr().err
    model = tmp_path / "recall_model.bin"
    model.write_bytes(b"not read: the threshold is checked first")
    bad = tmp_path / "c.yaml"
    bad.write_text("categories: {other: {threshold: 99}}\n")
    with pytest.raises(SystemExit):
        main(
            [
                "run",
                "--input",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
                "--no-quality-score",
                "--categories",
                str(bad),
            ]
        )
    assert "threshold must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(
            [
                "train-recall",
                "--input",
                str(tmp_path),
                "--output",
                str(tmp_path / "o"),
                "--model",
                "m",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--dim",
                "50",
            ]
        )
    assert "dim must be >= 100" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--no-quality-score"]
             + ["--recall-model", str(model), "--recall-threshold", "1.5"])  # fmt: skip
    assert "recall threshold must be in [0, 1], not 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train-recall", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--model", "m"]
             + ["--base-url", "http://127.0.0.1:9/v1", "--confident", "80"])  # fmt: skip
    assert "confident must be a probability in [0, 1], not 80" in capsys.readouterr().err
    # nothing listening at --base-url: one line before any extraction, not minutes of retries after it
    refused = ["--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    for command in ("train-recall", "run"):
        with pytest.raises(SystemExit, match="no OpenAI-compatible server answers at http://127.0.0.1:9/v1/models"):
            main([command, "--input", str(tmp_path), "--output", str(tmp_path / command), *refused])
        assert not (tmp_path / command).exists()
    assert os.path.isdir(tmp_path)


def test_a_crawl_without_code_pages_ends_empty_not_crashed(tmp_path, judge, monkeypatch):
    """Every page excluded before the LLM score: the later runs read empty folders, the funnel still adds up."""
    monkeypatch.setenv("SEED_CODER_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "warcs"
    data.mkdir()
    write_warc(str(data / "licences.warc.gz"), list(licence_pages(limit=6)) + bad_pages())
    output = tmp_path / "out"
    main(
        ["run", "--input", str(data), "--output", str(output), "--base-url", judge, "--model", "stand-in-web-judge"]
        + ["--no-decontamination", "--tasks", "1"]
    )
    stats = json.loads((output / "stats.json").read_text())
    _check_accounting(stats, output)
    assert stats["total"]["docs_kept"] == 0
    assert stats["steps"]["recall"]["reasons"]["not_code_related"]["docs"] == 6 + 2  # + the two charset pages
