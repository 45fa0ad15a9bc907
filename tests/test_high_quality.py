"""The high-quality subset on real code: the stdlib's Python files through the CLI (real tree-sitter comment counts,
real fastText rounds). ``metadata.quality_score`` is a STAND-IN: the stand-in oracle's documented rating rule
(``stand_in_rating``), since a trained scorer over every stdlib file would take minutes here."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest
from documents import read_docs, write_docs

from datatrove_pipelines.high_quality import main
from datatrove_pipelines.high_quality.comments import CommentCounter, line_comment_ratio
from datatrove_pipelines.high_quality.rounds import Candidate, HighQualityConfig, precision_recall, select_seeds
from datatrove_pipelines.quality.stand_in_oracle import stand_in_rating

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def stdlib_docs(limit: int | None = None, scored: bool = True) -> list[dict]:
    docs = []
    for path in sorted(STDLIB.rglob("*.py")):
        parts = path.relative_to(STDLIB).parts
        if "site-packages" in parts or "__pycache__" in parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not text.strip():
            continue
        metadata = {"path": str(path.relative_to(STDLIB)), "language": "Python", "repo": "cpython"}
        if scored:
            metadata["quality_score"] = float(stand_in_rating(text))
        docs.append({"text": text, "id": f"cpython/{metadata['path']}", "metadata": metadata})
        if limit and len(docs) >= limit:
            break
    return docs


@pytest.mark.slow
def test_later_rounds_beat_round_one_on_heldout_precision_or_recall(tmp_path):
    docs = stdlib_docs()
    assert len(docs) > 1000
    out = tmp_path / "hq"
    main(
        [
            "--input",
            str(write_docs(tmp_path / "in", docs, per_file=400)),
            "--output",
            str(out),
            "--seeds-per-language",
            "100",
        ]
    )
    stats = json.loads((out / "stats.json").read_text())
    rounds = stats["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    first = rounds[0]
    assert first["heldout_positives"] > 20 and first["positives"] == stats["seeds"] == 100
    assert any(r["precision"] > first["precision"] or r["recall"] > first["recall"] for r in rounds[1:]), rounds
    assert rounds[1]["positives"] > first["positives"]  # confident recalls joined the seeds
    assert (out / "rounds.png").read_bytes().startswith(PNG_MAGIC)
    assert all((out / "models" / f"round{i}.bin").is_file() for i in (1, 2, 3))
    kept = read_docs(out / "kept")
    assert kept and all(doc["metadata"]["hq_probability"] >= 0.5 for doc in kept)
    assert stats["steps"]["high_quality"]["reasons"]["below_threshold"]["docs"] > len(kept)
    assert stats["total"]["docs_in"] == len(docs) == len(kept) + stats["total"]["docs_excluded"]
    # the subset is better than the input by the score it was seeded with
    mean = sum(d["metadata"]["quality_score"] for d in docs) / len(docs)
    assert sum(d["metadata"]["quality_score"] for d in kept) / len(kept) > mean


def test_input_without_quality_score_is_a_clear_error_naming_the_command(tmp_path):
    folder = write_docs(tmp_path / "in", stdlib_docs(20, scored=False))
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(folder), "--output", str(tmp_path / "out")])
    message = str(raised.value)
    assert "metadata.quality_score" in message and "python -m datatrove_pipelines.quality score" in message
    assert "\n" not in message and not (tmp_path / "out").exists()


def test_unscored_and_empty_files_among_scored_ones_are_excluded_with_reasons(tmp_path):
    docs = stdlib_docs(150)
    docs[5]["metadata"].pop("quality_score")
    docs[6]["metadata"]["quality_score"] = "high"  # careless input: not a number
    docs[7]["text"] = "   \n"
    out = tmp_path / "out"
    args = ["--input", str(write_docs(tmp_path / "in", docs, per_file=400)), "--output", str(out)]
    main([*args, "--seeds-per-language", "20", "--rounds", "2", "--epochs", "3"])
    stats = json.loads((out / "stats.json").read_text())
    reasons = {k: v["docs"] for k, v in stats["steps"]["hq_input"]["reasons"].items()}
    assert reasons == {"no_quality_score": 2, "empty_text": 1}
    assert len(stats["rounds"]) == 2
    assert stats["total"]["docs_in"] == 150 == stats["total"]["docs_kept"] + stats["total"]["docs_excluded"]
    excluded = read_docs(out / "excluded" / "hq_input")
    assert sorted(d["metadata"]["filter_reason"] for d in excluded) == ["empty_text", "no_quality_score"] + [
        "no_quality_score"
    ]


def test_no_commented_file_to_seed_from_is_a_clear_error(tmp_path, capsys):
    docs = [
        {"text": f"x{i} = {i}\n", "id": str(i), "metadata": {"quality_score": 5.0, "path": f"m{i}.py"}}
        for i in range(20)
    ]
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(write_docs(tmp_path / "in", docs, per_file=400)), "--output", str(tmp_path / "out")])
    assert "no seed candidates" in str(raised.value) and "\n" not in str(raised.value)
    # raised inside the train task: the one-line error, not datatrove's logged traceback, on the console
    assert "Traceback" not in capsys.readouterr().err
    assert "Traceback" in (tmp_path / "out" / "logs" / "train" / "logs" / "task_00000.log").read_text()


def test_careless_records_before_the_first_score_do_not_break_the_input_check(tmp_path):
    """Records the reader counts (metadata not an object, not JSON, a JSON list) come before any scored one."""
    docs = stdlib_docs(60)
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "00000.jsonl", "w") as handle:
        handle.write(json.dumps({"text": "x = 1\n", "id": "m", "metadata": "not an object"}) + "\n")
        handle.write(json.dumps({"text": "y = 2\n", "id": "l", "metadata": [1, 2]}) + "\n")
        handle.write("not json at all\n[1, 2]\n")
        handle.writelines(json.dumps(doc) + "\n" for doc in docs)
    out = tmp_path / "out"
    main(["--input", str(folder), "--output", str(out), "--seeds-per-language", "10", "--rounds", "1"])
    stats = json.loads((out / "stats.json").read_text())
    assert {k: v["docs"] for k, v in stats["steps"]["read"]["reasons"].items()} == {
        "malformed_json": 1,
        "not_an_object": 1,
    }
    assert stats["steps"]["hq_input"]["reasons"]["no_quality_score"]["docs"] == 2
    assert stats["total"]["docs_in"] == 64 == stats["total"]["docs_kept"] + stats["total"]["docs_excluded"]


def test_comment_ratio_counts_comments_and_docstrings_not_strings():
    counter = CommentCounter()
    code = 'x = "# not a comment"\ny = """not a docstring either"""\n'
    assert counter.ratio(code, "python") == 0.0
    documented = 'def f():\n    """Explain f."""\n    return 1  # one\n'
    assert 0.3 < counter.ratio(documented, "python") < 0.7
    assert counter.ratio("int x; /* note */\n// more\n", "c") > 0.4
    assert counter.ratio("class A { /** doc */ }", "java") > 0.3
    assert counter.ratio('const s = "// no";', "javascript") == 0.0
    assert line_comment_ratio("-- a comment\nSELECT 1;\n") > 0.5  # no grammar: line markers
    assert counter.ratio("def broken(:\n  # still a comment\n", "python") > 0.3  # unparseable source


def test_seeds_are_the_top_commented_files_per_language():
    config = HighQualityConfig(seeds_per_language=2, min_comment_ratio=0.05)
    pool = [
        Candidate("a", "Python", "", 9.0, 0.3),
        Candidate("b", "Python", "", 10.0, 0.0),  # best score but no comments: never a seed
        Candidate("c", "Python", "", 7.0, 0.2),
        Candidate("d", "Python", "", 2.0, 0.1),
        Candidate("e", "C", "", 5.0, 0.2),
    ]
    from datatrove_pipelines.high_quality.rounds import prepare

    prepare(pool, config)
    assert [c.id for c in select_seeds(pool, config)] == ["e", "a", "c"]


def test_previous_round_low_score_recalls_become_hard_negatives(tmp_path):
    """Every file is commented, so no "high score, no comments" hard negative exists; the files look alike, so round 1
    recalls low-score ones too: round 2's hard negatives can only be those recalls."""
    from datatrove_pipelines.high_quality.rounds import run_rounds

    pool = [
        Candidate(
            f"f{i:03d}", "Python", f"# helper\ndef compute(values):\n    return sum(values) * {i % 3}\n", i % 10, 0.3
        )
        for i in range(300)
    ]
    config = HighQualityConfig(seeds_per_language=40, epochs=5, negatives_per_positive=0.5, rounds=2)
    first, second = run_rounds(pool, config, str(tmp_path)).reports
    assert first.hard_negatives == 0 and first.recalled > 0
    assert second.hard_negatives > 0


def test_precision_recall():
    assert precision_recall([True, True, False, False], [True, False, True, False]) == (0.5, 0.5, 0.5)
    assert precision_recall([True], [False]) == (0.0, 0.0, 0.0)


WRONG_FLAGS = [
    ["--dim", "50"],
    ["--rounds", "0"],
    ["--heldout-fraction", "1.5"],
    ["--threshold", "1.5"],  # would silently keep nothing
    ["--confident", "-0.1"],
    ["--comment-weight", "2"],
    ["--negatives-per-positive", "-1"],  # was a traceback inside the train task
    ["--epochs", "0"],
    ["--max-pool-docs", "0"],
]


@pytest.mark.parametrize("flags", WRONG_FLAGS)
def test_wrong_usage(flags, tmp_path):
    folder = write_docs(tmp_path / "in", stdlib_docs(5))
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(folder), "--output", str(tmp_path / "out"), *flags])
    assert raised.value.code == 2
