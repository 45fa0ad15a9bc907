"""The shared funnel machinery: FunnelFilter accounting, the invariant check, executor flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from datatrove.data import Document

from datatrove_pipelines.executors import (
    ExecutorConfig,
    add_executor_arguments,
    build_executor,
    executor_config_from_args,
)
from datatrove_pipelines.funnel import FunnelFilter, merge_values
from datatrove_pipelines.stats import FunnelInvariantError, check_funnel, format_funnel, write_stats
from datatrove_pipelines.writers import exclusion_writer, kept_writer


class DropOdd(FunnelFilter):
    def check(self, doc: Document) -> str | None:
        if doc.id == "boom":
            raise RuntimeError("bad input")
        return "odd" if int(doc.metadata["size"]) % 2 else None


def make_documents(rank: int):
    for size in range(6):
        yield Document(text="x" * size, id=f"{rank}-{size}", metadata={"size": size})
    yield Document(text="?", id="boom", metadata={"size": 1})


def test_funnel_filter_counts_and_writes_exclusions(tmp_path):
    out = str(tmp_path)

    def reader(data, rank, world_size):
        yield from make_documents(rank)

    executor = build_executor(
        [reader, DropOdd("odd", exclusion_writer(out, "odd")), kept_writer(out)],
        ExecutorConfig(tasks=2, workers=1),
        str(tmp_path / "logs"),
        job_name="t",
    )
    executor.run()
    stats = write_stats(out, [str(tmp_path / "logs")])
    step = stats["steps"]["odd"]
    assert step["docs_in"] == 14 and step["docs_kept"] == 6 and step["docs_excluded"] == 8
    assert step["bytes_in"] == 2 * (15 + 1) and step["bytes_kept"] == 2 * (0 + 2 + 4)
    assert step["reasons"]["error:RuntimeError"]["docs"] == 2  # a crashing check excludes, never crashes
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    assert "odd=6" in format_funnel(stats)
    assert sorted(p.name for p in (tmp_path / "excluded" / "odd").iterdir()) == ["00000.jsonl.gz", "00001.jsonl.gz"]


def test_buffered_stats_equal_per_document_updates():
    """StatsBuffer merges lists of values into datatrove's MetricStats / TimingStats as one update per value would."""
    import random

    from datatrove.utils.stats import MetricStats, TimingStats

    rng = random.Random(0)
    for kind, draw in ((MetricStats, lambda: rng.randint(0, 10**6)), (TimingStats, lambda: rng.random() / 100)):
        one_by_one, merged = kind(), kind()
        for chunk in ([draw() for _ in range(7)], [draw()], [draw() for _ in range(300)]):
            for value in chunk:
                one_by_one.update(value)
            merge_values(merged, chunk)
            assert (merged.n, merged.min, merged.max) == (one_by_one.n, one_by_one.min, one_by_one.max)
            assert merged.total == pytest.approx(one_by_one.total, rel=1e-12)
            assert merged.mean == pytest.approx(one_by_one.mean, rel=1e-9)
            assert merged.variance == pytest.approx(one_by_one.variance, rel=1e-9)
        if kind is TimingStats:
            assert merged.global_mean == merged.global_max == merged.total  # a single task's totals
    step = DropOdd("odd")
    list(step.run(make_documents(0)))
    assert step.stats["funnel/odd/docs_in"].total == 7 and step.stats["funnel/odd/bytes_kept"].total == 0 + 2 + 4
    assert step.stats.time_stats.n == 7  # one timing per checked document, as datatrove's track_time gives


def _step(docs_in, kept, excluded, reasons):
    return {
        "docs_in": docs_in,
        "bytes_in": 0,
        "docs_kept": kept,
        "bytes_kept": 0,
        "docs_excluded": excluded,
        "bytes_excluded": 0,
        "reasons": {name: {"docs": n, "bytes": 0} for name, n in reasons.items()},
        "notes": {},
    }


def test_invariant_violations_are_caught():
    check_funnel({"a": _step(10, 7, 3, {"r": 3}), "b": _step(7, 7, 0, {})})
    with pytest.raises(FunnelInvariantError, match="in != "):
        check_funnel({"a": _step(10, 7, 2, {"r": 2})})
    with pytest.raises(FunnelInvariantError, match="received"):  # documents lost between steps
        check_funnel({"a": _step(10, 7, 3, {"r": 3}), "b": _step(6, 6, 0, {})})
    with pytest.raises(FunnelInvariantError, match="reasons"):
        check_funnel({"a": _step(10, 7, 3, {"r": 1})})


def test_executor_flags_and_errors():
    parser = argparse.ArgumentParser()
    add_executor_arguments(parser)
    config = executor_config_from_args(parser.parse_args(["--tasks", "4", "--workers", "2"]))
    assert (config.executor, config.tasks, config.workers) == ("local", 4, 2)
    with pytest.raises(ValueError, match="partition"):
        ExecutorConfig(executor="slurm")
    with pytest.raises(ValueError, match="unknown executor"):
        ExecutorConfig(executor="spark")
    with pytest.raises(ValueError, match="workers"):
        ExecutorConfig(workers=0)


def test_stage_config_yaml_gives_values_and_the_command_line_wins(tmp_path: Path) -> None:
    from datatrove_pipelines.code_files import parse_args

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "code_files.yaml"
    config = parse_args(["--config", str(recipe)])
    assert config.inputs == ["eval"] and config.output_dir == "outputs/tiny/code_files"
    assert config.guard.max_size_bytes == 1_000_000 and config.decontamination.benchmarks_dir == "../shared/benchmarks"
    overridden = parse_args(["--config", str(recipe), "--output", str(tmp_path), "--max-size-bytes", "5000"])
    assert overridden.output_dir == str(tmp_path) and overridden.guard.max_size_bytes == 5000
    assert overridden.inputs == ["eval"]
    # --input extends a list: given on the command line, it replaces the recipe's inputs instead of adding to them
    assert parse_args(["--config", str(recipe), "--input", "a", "--input", "b"]).inputs == ["a", "b"]


def test_stage_config_yaml_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from datatrove_pipelines.code_files import parse_args

    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [x]\noutput: y\nmax-size: 3\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(bad)])
    assert "unknown keys max_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--config", str(tmp_path / "missing.yaml")])
    assert "--config: cannot read" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------------
# Every stage's input: the fault-tolerant documents reader, the run record, portable paths, the writer
# --------------------------------------------------------------------------------------------------------------------


def write_faulty_documents(folder: Path) -> dict[tuple[str, int], str]:
    """Documents files with one fault of each kind; returns {(file, line): reason} of the bad records."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    good = [json.dumps({"text": f"document {i}", "id": f"d{i}", "metadata": {"n": i}}).encode() for i in range(30)]
    lines = list(good)
    faults = {
        3: (b'{"text": "bad \xff byte", "id": "x"}', "invalid_utf8"),
        7: (b'{"text": "cut in the mid', "malformed_json"),
        11: (b"[1, 2, 3]", "not_an_object"),
        13: (b'{"id": "no text"}', "missing_text"),
        17: (b'{"text": {"nested": 1}, "id": "obj"}', "non_string_content"),
        19: (b'{"text": "", "id": "empty"}', "empty_text"),
    }
    for position, (line, _) in faults.items():
        lines[position] = line
    (folder / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    archive = gzip.compress(b"".join(line + b"\n" for line in good))
    (folder / "b.jsonl.gz").write_bytes(archive[: len(archive) * 2 // 3])
    return {("a.jsonl", position + 1): reason for position, (_, reason) in faults.items()}


def run_documents_stage(input_dir: Path, output: Path, **executor) -> dict:
    """A minimal stage on the shared runner: documents_reader -> kept writer."""
    from datatrove_pipelines.stage import StageCard, StageOutput, StageRun, documents_reader, run_stage

    runs = [StageRun("copy", [documents_reader(str(input_dir)), kept_writer(str(output))])]
    card = StageCard("Copy", "Copies documents.", settings={"input": str(input_dir)})
    return run_stage(runs, ExecutorConfig(workers=1, **executor), StageOutput(str(output), card), "copy")


def test_documents_reader_counts_every_record_of_every_stage(tmp_path):
    import gzip

    faults = write_faulty_documents(tmp_path / "docs")
    stats = run_documents_stage(tmp_path / "docs", tmp_path / "out")
    read = stats["steps"]["read"]
    excluded = []
    for path in sorted((tmp_path / "out" / "excluded" / "read").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            excluded += [json.loads(line) for line in handle]
    where = {(r["metadata"]["source_file"], r["metadata"]["line"]): r["metadata"]["filter_reason"] for r in excluded}
    cut = [key for key, reason in where.items() if reason == "truncated_archive"]
    assert {key: reason for key, reason in where.items() if key[0] == "a.jsonl"} == faults
    assert len(cut) == 1 and cut[0][0] == "b.jsonl.gz"
    complete = cut[0][1] - 1  # every line before the cut was read
    assert read["docs_in"] == 30 + complete + 1 and read["docs_excluded"] == len(faults) + 1
    assert stats["total"]["docs_kept"] == 30 - len(faults) + complete
    with gzip.open(tmp_path / "out" / "kept" / "00000.jsonl.gz", "rt") as handle:
        kept = [json.loads(line) for line in handle]
    assert all("file_path" not in record.get("metadata", {}) for record in kept)
    assert kept[0] == {"text": "document 0", "id": "d0", "metadata": {"n": 0}}


def test_the_run_record_guards_every_stage(tmp_path):
    write_faulty_documents(tmp_path / "docs")
    first = run_documents_stage(tmp_path / "docs", tmp_path / "out")
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["stage"] == "copy" and record["runs"] == [
        {"name": "copy", "tasks": 1, "steps": record["runs"][0]["steps"]}
    ]
    assert run_documents_stage(tmp_path / "docs", tmp_path / "out") == first
    (tmp_path / "docs" / "c.jsonl").write_text('{"text": "late", "id": "late"}\n')
    with pytest.raises(SystemExit, match="different inputs.*--overwrite"):
        run_documents_stage(tmp_path / "docs", tmp_path / "out")
    late = (tmp_path / "docs" / "c.jsonl").read_bytes()
    (tmp_path / "docs" / "c.jsonl").unlink()
    with pytest.raises(SystemExit, match="task counts"):
        run_documents_stage(tmp_path / "docs", tmp_path / "out", tasks=2)
    (tmp_path / "docs" / "c.jsonl").write_bytes(late)
    again = run_documents_stage(tmp_path / "docs", tmp_path / "out", overwrite=True)
    assert again["total"]["docs_kept"] == first["total"]["docs_kept"] + 1


def test_paths_in_published_settings_are_portable(tmp_path, monkeypatch):
    from datatrove_pipelines.run_record import portable_paths
    from datatrove_pipelines.stage import command_line

    monkeypatch.chdir(tmp_path)
    inside, outside = str(tmp_path / "data" / "in"), "/somewhere/else/benchmarks"
    assert portable_paths({"a": inside, "b": [outside, "rel/x", "s3://bucket/key"], "n": 3}) == {
        "a": "data/in",
        "b": ["benchmarks", "rel/x", "s3://bucket/key"],
        "n": 3,
    }
    assert command_line("m", ["--input", inside, f"--out={outside}"]) == "python -m m --input data/in --out=benchmarks"


def test_rank_file_writer_writes_what_datatroves_jsonl_writer_writes(tmp_path):
    """RankFileJsonlWriter restates DiskWriter.write (buffered stats, one file per task): the same bytes as
    datatrove's own JsonlWriter, with the default adapter and with the pipeline's adapter, and the same stats."""
    import gzip

    from datatrove.pipeline.writers.jsonl import JsonlWriter

    from datatrove_pipelines.writers import RankFileJsonlWriter, document_dict

    def documents():
        return [
            Document(text="plain", id="a", metadata={"size": 5, "language": "Python"}),
            Document(text="unicode ✓ \u00e9\n\ttabs", id="b", metadata={"nested": {"k": [1, 2]}, "token_count": 4}),
            Document(text="no metadata", id="c", metadata={}),
            Document(text="", id="d", metadata={"empty": ""}),
        ]

    for adapter in (None, document_dict):
        options = {} if adapter is None else {"adapter": adapter}
        ours = RankFileJsonlWriter(str(tmp_path / "ours"), **options)
        theirs = JsonlWriter(str(tmp_path / "theirs"), output_filename="${rank}.jsonl.gz", **options)
        list(ours.run(documents(), rank=3))
        list(theirs.run(documents(), rank=3))
        with (
            gzip.open(tmp_path / "ours" / "00003.jsonl.gz", "rt") as a,
            gzip.open(tmp_path / "theirs" / "00003.jsonl.gz", "rt") as b,
        ):
            assert a.read() == b.read()
        for key in ("total", "doc_len", "doc_len_tokens"):
            assert ours.stats.stats[key].total == theirs.stats.stats[key].total, key
            assert ours.stats.stats[key].n == theirs.stats.stats[key].n, key


@pytest.mark.parametrize("text", ["${rank}.jsonl.gz", "${rank}_$language/${id}.jsonl", "$$rank.jsonl", "plain.jsonl"])
def test_template_identifiers_match_the_3_11_method(text: str) -> None:
    """writers.template_identifiers (works on Python 3.10) agrees with ``Template.get_identifiers`` (3.11+)."""
    from string import Template

    from datatrove_pipelines.writers import template_identifiers

    assert template_identifiers(Template(text)) == set(Template(text).get_identifiers())


@pytest.mark.parametrize(
    "given",
    ["http://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/"],
)
def test_openai_base_urls_with_or_without_v1_name_the_same_routes(given: str) -> None:
    from datatrove_pipelines.openai_api import api_root, api_url

    assert api_root(given) == "http://127.0.0.1:8000"
    assert api_url(given, "chat/completions") == "http://127.0.0.1:8000/v1/chat/completions"
    assert api_url(given) == "http://127.0.0.1:8000/v1"
