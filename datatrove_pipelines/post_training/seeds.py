"""Seed problems for post-training data: MBPP's training split offline, or any documents folder / Hub dataset.

MBPP's training split (task ids 601-974) is read from the local benchmark copies through ``eval.benchmarks`` (the one
place that parses benchmark files; it is never copied into the repository). Its problems are decontaminated by the
data stages (``DecontaminationFilter``) or by :func:`decontaminate` against the evaluation benchmarks' test splits:
MBPP+ and sanitized MBPP reuse some training-split problems, which must not leak into training.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datatrove.data import Document

from eval.benchmarks import MBPP_TRAIN, MBPP_TRAIN_IDS

SEED_SOURCES = (MBPP_TRAIN,)
__all__ = ["MBPP_TRAIN", "MBPP_TRAIN_IDS", "SEED_SOURCES", "load_mbpp_train", "mbpp_train_records"]


def load_mbpp_train(data_dir: str | None = None) -> list:
    """MBPP's training split (task ids 601-974) as ``eval.benchmarks.Problem``s (``eval.benchmarks.TRAINING_SOURCES``)."""
    from eval.benchmarks import load_benchmark

    return load_benchmark(MBPP_TRAIN, data_dir)


def problem_record(problem: Any) -> dict[str, Any]:
    """A seed problem as a flat record: instruction, reference solution, tests (MBPP asserts), language."""
    raw = problem.raw
    return {
        "seed_id": f"mbpp/{problem.task_id}",
        "instruction": problem.prompt,
        "reference": problem.canonical_solution,
        "tests": list(raw.get("test_list") or []),
        "test_setup": "\n".join([*(raw.get("test_imports") or []), raw.get("test_setup_code") or ""]).strip("\n"),
        "language": problem.language,
    }


def mbpp_train_records(data_dir: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    records = [problem_record(p) for p in load_mbpp_train(data_dir)]
    return records[:limit] if limit else records


def seed_documents(records: list[dict[str, Any]]) -> Iterator[Document]:
    """Seed records as datatrove Documents (text = the instruction, which decontamination looks at with the tests)."""
    for record in records:
        text = "\n".join([record["instruction"], record.get("reference", ""), *record.get("tests", [])])
        yield Document(text=text, id=record["seed_id"], metadata={"seed": record})


def decontaminate(records: list[dict[str, Any]], benchmarks_dir: str | None = None) -> list[dict[str, Any]]:
    """The records sharing no word 10-gram with an evaluation benchmark (the project's decontamination index)."""
    from datatrove_pipelines.decontamination import BenchmarkNGramIndex, DecontaminationConfig

    index = BenchmarkNGramIndex.cached(DecontaminationConfig(benchmarks_dir=benchmarks_dir))
    texts = ["\n".join([r["instruction"], r.get("reference", ""), *r.get("tests", [])]) for r in records]
    return [record for record, match in zip(records, index.first_matches(texts), strict=True) if match is None]
