"""FunnelFilter in real datatrove runs: programming errors fail the run past the error limit (with the step and the
first traceback), datatrove's own filters join the funnel through DatatroveFilter, and the buffered stats are
datatrove's own MetricStats sums."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import GopherRepetitionFilter, LambdaFilter, RegexFilter
from datatrove.utils.stats import MetricStats, TimingStats

from datatrove_pipelines.executors import ExecutorConfig, build_executor
from datatrove_pipelines.funnel import (
    DatatroveFilter,
    ErrorLimit,
    FunnelErrorLimitExceeded,
    FunnelFilter,
    StatsBuffer,
    merge_count,
    merge_values,
)
from datatrove_pipelines.stats import write_stats
from datatrove_pipelines.writers import exclusion_writer, kept_writer

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def documents(count: int, seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(rng.randint(1, 8))]
        if i % 10 == 3:
            lines = ["the same line again"] * 12  # repetitive: Gopher's repetition filter drops it
        if i % 7 == 0:
            lines.append("TODO: finish")
        docs.append(Document(text="\n".join(lines), id=f"doc-{i:04d}", metadata={"n": i}))
    return docs


def run_pipeline(tmp_path: Path, steps: list, docs: list[Document], tasks: int = 1) -> dict:
    """A real datatrove run (LocalPipelineExecutor) of ``steps`` between a reader and the kept writer."""
    out = str(tmp_path)

    def reader(data, rank, world_size):
        for index, doc in enumerate(docs):
            if index % world_size == rank:
                yield Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata))

    executor = build_executor(
        [reader, *steps, kept_writer(out)],
        ExecutorConfig(tasks=tasks, workers=1),
        str(tmp_path / "logs"),
        job_name="t",
    )
    executor.run()
    return write_stats(out, [str(tmp_path / "logs")])


def read_records(folder: Path) -> list[dict]:
    import gzip

    records = []
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            records += [json.loads(line) for line in handle]
    return records


class BuggyLengthFilter(FunnelFilter):
    """A deliberately buggy check: divides by the number of TODOs, so every document without one raises."""

    def check(self, doc: Document) -> str | None:
        ratio = len(doc.text) / doc.text.count("TODO")  # ZeroDivisionError without a TODO: the bug
        return "long_per_todo" if ratio > 80 else None


class RareBugFilter(FunnelFilter):
    """Raises on one chosen document only: bad input (or a rare bug) stays an exclusion."""

    def check(self, doc: Document) -> str | None:
        if doc.metadata["n"] == 5:
            raise KeyError("missing_field")
        return None


def test_a_buggy_filter_fails_the_run_with_its_name_and_first_traceback(tmp_path):
    step = BuggyLengthFilter("buggy_length", exclusion_writer(str(tmp_path), "buggy_length"))
    with pytest.raises(FunnelErrorLimitExceeded) as raised:
        run_pipeline(tmp_path, [step], documents(300))
    message = str(raised.value)
    assert "step 'buggy_length'" in message and "ErrorLimit" in message
    assert "ZeroDivisionError" in message and 'doc.text.count("TODO")' in message  # the first traceback
    assert "document 'doc-0001'" in message  # doc-0000 has a TODO; doc-0001 is the first to raise
    assert not (tmp_path / "logs" / "completions" / "00000").exists()  # the task is not marked done: a rerun redoes it


def test_errors_below_the_limit_stay_counted_exclusions(tmp_path):
    step = RareBugFilter("rare_bug", exclusion_writer(str(tmp_path), "rare_bug"))
    stats = run_pipeline(tmp_path, [step], documents(300))
    funnel = stats["steps"]["rare_bug"]
    assert funnel["docs_in"] == 300 and funnel["docs_kept"] == 299
    assert funnel["reasons"] == {"error:KeyError": {"docs": 1, "bytes": funnel["bytes_excluded"]}}
    [excluded] = read_records(tmp_path / "excluded" / "rare_bug")
    assert excluded["id"] == "doc-0005" and excluded["metadata"]["filter_reason"] == "error:KeyError"


def test_the_error_limit_is_configurable(tmp_path):
    # 4 errors in 300 documents: over the default 1% (judged at the end), within 2%
    class FourBugs(FunnelFilter):
        def check(self, doc: Document) -> str | None:
            if doc.metadata["n"] in (10, 20, 30, 40):
                raise ValueError("bug")
            return None

    with pytest.raises(FunnelErrorLimitExceeded, match="4 of 300 documents"):
        run_pipeline(tmp_path / "default", [FourBugs("three")], documents(300))
    with pytest.raises(FunnelErrorLimitExceeded, match="3 of 31 documents"):
        run_pipeline(
            tmp_path / "tight", [FourBugs("three", error_limit=ErrorLimit(0.05, min_documents=31))], documents(300)
        )
    stats = run_pipeline(tmp_path / "loose", [FourBugs("three", error_limit=ErrorLimit(0.02))], documents(300))
    assert stats["steps"]["three"]["reasons"]["error:ValueError"]["docs"] == 4
    # below min_documents a task is not judged: a handful of bad documents in a small shard is bad input
    stats = run_pipeline(tmp_path / "small", [FourBugs("three")], documents(50))
    assert stats["steps"]["three"]["reasons"]["error:ValueError"]["docs"] == 4
    with pytest.raises(ValueError):
        ErrorLimit(max_fraction=1.5)


def test_batched_checks_that_catch_their_own_errors_count_too(tmp_path):
    class BatchedBug(FunnelFilter):
        def check(self, doc: Document) -> str | None:
            return None

        def check_batch(self, batch: list[Document]) -> list[str | None]:
            reasons = []
            for doc in batch:
                try:
                    reasons.append(None if doc.metadata["n"] % 2 else str(1 / 0))
                except ZeroDivisionError as error:
                    reasons.append(self.error_reason(error, doc))
            return reasons

    with pytest.raises(FunnelErrorLimitExceeded, match="(?s)step 'batched'.*ZeroDivisionError"):
        run_pipeline(tmp_path, [BatchedBug("batched", batch_size=16)], documents(300))


def test_datatrove_filters_join_the_funnel(tmp_path):
    """LambdaFilter (bool), RegexFilter (bool) and GopherRepetitionFilter ((False, reason)) inside the funnel keep
    what they keep when datatrove runs them itself, and every drop lands in excluded/ with its reason."""
    docs = documents(200)
    out = str(tmp_path)
    steps = [
        DatatroveFilter(
            LambdaFilter(lambda doc: len(doc.text) > 40), "long_enough", exclusion_writer(out, "long_enough")
        ),
        DatatroveFilter(RegexFilter(r"TODO"), "no_todo", exclusion_writer(out, "no_todo"), default_reason="todo"),
        DatatroveFilter(GopherRepetitionFilter(), "repetition", exclusion_writer(out, "repetition")),
    ]
    stats = run_pipeline(tmp_path, steps, docs, tasks=2)
    kept_ids = sorted(record["id"] for record in read_records(tmp_path / "kept"))
    # datatrove alone, same filters in a plain pipeline
    alone = [LambdaFilter(lambda doc: len(doc.text) > 40), RegexFilter(r"TODO"), GopherRepetitionFilter()]
    survivors = [Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata)) for doc in docs]
    for datatrove_filter in alone:
        survivors = list(datatrove_filter.run(survivors))
    assert kept_ids == sorted(doc.id for doc in survivors) and 0 < len(kept_ids) < len(docs)
    funnel = stats["steps"]
    assert funnel["no_todo"]["reasons"].keys() == {"todo"} and funnel["long_enough"]["reasons"].keys() == {"dropped"}
    assert {"dup_line_frac"} <= funnel["repetition"]["reasons"].keys()
    assert stats["total"]["docs_in"] == len(docs)
    assert stats["total"]["docs_kept"] + sum(step["docs_excluded"] for step in funnel.values()) == len(docs)
    repetitive = read_records(tmp_path / "excluded" / "repetition")
    assert repetitive and all(record["metadata"]["filter_reason"] for record in repetitive)


def test_a_crashing_datatrove_filter_is_judged_by_the_error_limit(tmp_path):
    broken = DatatroveFilter(LambdaFilter(lambda doc: doc.metadata["missing"] > 0), "broken")
    with pytest.raises(FunnelErrorLimitExceeded, match="(?s)step 'broken'.*KeyError"):
        run_pipeline(tmp_path, [broken], documents(150))
    with pytest.raises(ValueError, match="exclusion writer"):
        DatatroveFilter(LambdaFilter(bool, exclusion_writer=exclusion_writer(str(tmp_path), "x")), "x")


def test_merge_values_is_datatrove_s_own_sum():
    """The buffered merge equals MetricStats.__add__ of stats built by datatrove's update calls, field by field."""
    rng = random.Random(1)
    for kind in (MetricStats, TimingStats):
        merged, parts = kind(), []
        for size in (1, 2, 50, 700):
            values = [rng.uniform(0, 1000) for _ in range(size)]
            merge_values(merged, values)
            part = kind()
            for value in values:
                part.update(value)
            parts.append(part)
        added = parts[0]
        for part in parts[1:]:
            added = MetricStats.__add__(added, part)
        assert (merged.n, merged.min, merged.max) == (added.n, added.min, added.max)
        for name in ("total", "mean", "variance"):
            assert getattr(merged, name) == pytest.approx(getattr(added, name), rel=1e-9)
        assert merged.to_dict().keys() == added.to_dict().keys()


def test_merge_count_equals_merging_a_list_of_ones():
    """``merge_count`` (a document counter without its list of ones) leaves exactly what ``merge_values`` of that
    many ones leaves, into empty and non-empty stats; ``StatsBuffer.count``/``extend`` flush as ``add`` would."""
    for kind in (MetricStats, TimingStats):
        for start_values in ([], [1], [3.5, 7.25, 1]):
            for count in (0, 1, 2, 4096):
                by_count, by_list = kind(), kind()
                merge_values(by_count, start_values)
                merge_values(by_list, start_values)
                merge_count(by_count, count)
                merge_values(by_list, [1] * count)
                assert by_count.to_dict() == by_list.to_dict()
                assert (by_count.total, by_count.n, by_count.mean, by_count.variance) == (
                    by_list.total,
                    by_list.n,
                    by_list.mean,
                    by_list.variance,
                )

    class Step(FunnelFilter):
        def check(self, doc):
            return None

    bulk, single = Step("bulk"), Step("single")
    sizes = [5, 17, 3, 3, 900]
    buffer = StatsBuffer(bulk)
    buffer.count("docs", len(sizes))
    buffer.extend("bytes", sizes)
    buffer.flush()
    reference = StatsBuffer(single)
    for size in sizes:
        reference.add("docs")
        reference.add("bytes", size)
    reference.flush()
    assert bulk.stats.stats.to_dict() == single.stats.stats.to_dict()
