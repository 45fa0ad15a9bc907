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


def test_stage_config_yaml_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from datatrove_pipelines.code_files import parse_args

    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [x]\noutput: y\nmax-size: 3\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(bad)])
    assert "unknown keys max_size" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--config", str(tmp_path / "missing.yaml")])
    assert "cannot read --config" in capsys.readouterr().err
