"""Benchmark problem loading: the one place that knows where each benchmark lives and how its records look.

Every benchmark loads from its Hugging Face Hub dataset by default, or from a local directory laid out like the
project's offline copies (``humaneval/HumanEval.jsonl.gz``, ``evalplus/…``, ``mbpp/…``, ``cruxeval/…``,
``multipl-e/humaneval-<lang>.jsonl``). Evaluation tasks, the sandbox tests and training-data decontamination all go
through :func:`load_benchmark` so that a benchmark is parsed one way only.

The local directory is chosen by, in order: the ``data_dir`` argument, the ``SEED_CODER_BENCHMARKS_DIR`` environment
variable. With neither, the Hub is used (which needs network access). :func:`local_benchmarks_dir` is the one place
that also knows the development layout (``../shared/benchmarks`` beside the checkout): tests, the demo and the speed
scripts find the offline copies through it.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from datatrove_pipelines.languages import language_key

BENCHMARKS_DIR_ENV = "SEED_CODER_BENCHMARKS_DIR"

MULTIPL_E_LANGUAGES = ("cpp", "java", "js", "ts", "go", "rs", "sh")
# MultiPL-E's short language names -> the sandbox's language names.


@dataclass
class Problem:
    """One benchmark problem in a shape every consumer understands; ``raw`` keeps the original record."""

    task_id: str
    benchmark: str
    language: str
    prompt: str
    canonical_solution: str = ""
    test: str = ""
    entry_point: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """The texts a training document must not share n-grams with (prompt, solution, tests)."""
        return [t for t in (self.prompt, self.canonical_solution, self.test) if t]


@dataclass(frozen=True)
class BenchmarkSource:
    """Where a benchmark lives on the Hub and in the local layout, and how to turn a record into a Problem."""

    hub_id: str
    hub_config: str | None
    hub_split: str
    local_path: str
    to_problem: Callable[[dict[str, Any], str], Problem]
    keep: Callable[[dict[str, Any]], bool] = lambda record: True


def _humaneval(record: dict[str, Any], name: str) -> Problem:
    return Problem(
        task_id=record["task_id"],
        benchmark=name,
        language="python",
        prompt=record["prompt"],
        canonical_solution=record["canonical_solution"],
        test=record.get("test", ""),
        entry_point=record["entry_point"],
        raw=record,
    )


def _mbpp(record: dict[str, Any], name: str) -> Problem:
    setup = record.get("test_setup_code", "") or ""
    tests = "\n".join(record.get("test_imports", []) + [setup] + list(record["test_list"])).strip("\n")
    return Problem(
        task_id=str(record["task_id"]),
        benchmark=name,
        language="python",
        prompt=record.get("text") or record.get("prompt", ""),
        canonical_solution=record["code"].replace("\r\n", "\n"),
        test=tests,
        raw=record,
    )


def _mbpp_plus(record: dict[str, Any], name: str) -> Problem:
    """EvalPlus's MBPP+ records are HumanEval's shape, with the base tests in ``assertion``."""
    return replace(_humaneval(record, name), test=record.get("assertion") or record.get("test", ""))


def _cruxeval(record: dict[str, Any], name: str) -> Problem:
    return Problem(
        task_id=record["id"],
        benchmark=name,
        language="python",
        prompt=record["code"],
        canonical_solution=record["output"],
        test=f"assert f({record['input']}) == {record['output']}",
        entry_point="f",
        raw=record,
    )


def _multipl_e(record: dict[str, Any], name: str) -> Problem:
    short = name.rsplit("_", 1)[-1]
    return Problem(
        task_id=record.get("task_id") or record["name"],
        benchmark=name,
        language=language_key(short) or short,  # MultiPL-E's "rs" -> "rust" (datatrove_pipelines.languages)
        prompt=record["prompt"],
        test=record.get("tests") or record.get("test", ""),
        raw=record,
    )


BENCHMARK_SOURCES: dict[str, BenchmarkSource] = {
    "humaneval": BenchmarkSource("openai/openai_humaneval", None, "test", "humaneval/HumanEval.jsonl.gz", _humaneval),
    "humaneval_plus": BenchmarkSource(
        "evalplus/humanevalplus", None, "test", "evalplus/HumanEvalPlus-v0.1.10.jsonl.gz", _humaneval
    ),
    # The MBPP evaluation split is task ids 11-510 of the full set.
    "mbpp": BenchmarkSource(
        "google-research-datasets/mbpp",
        "full",
        "test",
        "mbpp/mbpp.jsonl",
        _mbpp,
        keep=lambda r: 11 <= int(r["task_id"]) <= 510,
    ),
    "mbpp_sanitized": BenchmarkSource(
        "google-research-datasets/mbpp", "sanitized", "test", "mbpp/sanitized-mbpp.json", _mbpp
    ),
    "mbpp_plus": BenchmarkSource(
        "evalplus/mbppplus", None, "test", "evalplus/MbppPlus-prerelease-767efcc.jsonl.gz", _mbpp_plus
    ),
    "cruxeval": BenchmarkSource("cruxeval-org/cruxeval", None, "test", "cruxeval/cruxeval.jsonl", _cruxeval),
    **{
        f"multipl_e_{lang}": BenchmarkSource(
            "nuprl/MultiPL-E", f"humaneval-{lang}", "test", f"multipl-e/humaneval-{lang}.jsonl", _multipl_e
        )
        for lang in MULTIPL_E_LANGUAGES
    },
}

# Training splits of the same files, for post-training seeds (datatrove_pipelines.post_training.seeds). Kept apart
# from BENCHMARK_SOURCES so that they are never evaluated on nor indexed as "benchmark text" by decontamination;
# load_benchmark reads both.
MBPP_TRAIN = "mbpp_train"
MBPP_TRAIN_IDS = (601, 974)  # MBPP's training split: task ids 601-974 of the full set
TRAINING_SOURCES: dict[str, BenchmarkSource] = {
    MBPP_TRAIN: BenchmarkSource(
        "google-research-datasets/mbpp",
        "full",
        "train",
        "mbpp/mbpp.jsonl",
        _mbpp,
        keep=lambda r: MBPP_TRAIN_IDS[0] <= int(r["task_id"]) <= MBPP_TRAIN_IDS[1],
    ),
}

# The local file of mbpp_sanitized holds only the hand-verified subset; on the Hub the sanitized config's test split
# is a part of it. Both are accepted as "the sanitized problems".


REPO_ROOT = Path(__file__).resolve().parents[1]


def local_benchmarks_dir() -> str | None:
    """The offline benchmark copies: ``$SEED_CODER_BENCHMARKS_DIR``, else ``../shared/benchmarks`` beside the
    checkout; None when neither is a directory (then loading falls back to the Hub)."""
    candidate = os.environ.get(BENCHMARKS_DIR_ENV) or str(REPO_ROOT.parent / "shared" / "benchmarks")
    return candidate if Path(candidate).is_dir() else None


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The local benchmark directory to use, or None for the Hub."""
    chosen = data_dir if data_dir is not None else os.environ.get(BENCHMARKS_DIR_ENV)
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"benchmark directory {path} does not exist (from --data-dir or ${BENCHMARKS_DIR_ENV})"
        )
    return path


def _read_local(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a local JSON/JSONL(.gz) file, as plain Python objects.

    Not ``datasets.load_dataset("json", ...)``: its Arrow reader rejects the EvalPlus files (integers beyond 64 bits
    and inputs whose shape differs from problem to problem: "Value is too big!"), and would cast the others' values
    to one schema per column. tests/test_benchmarks_loading.py checks that this is still so.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        if path.name.endswith(".json") or path.name.endswith(".json.gz"):
            yield from json.load(handle)
            return
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _read_hub(source: BenchmarkSource) -> Iterator[dict[str, Any]]:
    from datasets import load_dataset  # imported lazily: local loading must not pay for it

    dataset = load_dataset(source.hub_id, source.hub_config, split=source.hub_split)
    yield from dataset


def available_benchmarks() -> list[str]:
    return sorted(BENCHMARK_SOURCES)


def local_benchmark_path(name: str, data_dir: Path) -> Path:
    """Where benchmark ``name`` lies under the local benchmark directory; FileNotFoundError (naming the expected
    layout) when it is not there."""
    source = BENCHMARK_SOURCES.get(name) or TRAINING_SOURCES[name]
    path = data_dir / source.local_path
    if not path.exists():
        raise FileNotFoundError(f"benchmark {name!r} expected at {path} (layout: <data_dir>/{source.local_path})")
    return path


def load_benchmark(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Problem]:
    """Load one benchmark's problems (or a training split of :data:`TRAINING_SOURCES`), from ``data_dir`` (or
    ``$SEED_CODER_BENCHMARKS_DIR``) or else the Hub."""
    source = BENCHMARK_SOURCES.get(name) or TRAINING_SOURCES.get(name)
    if source is None:
        known = ", ".join([*available_benchmarks(), *sorted(TRAINING_SOURCES)])
        raise ValueError(f"unknown benchmark {name!r}; known: {known}")
    local_dir = resolve_data_dir(data_dir)
    if local_dir is not None:
        records: Iterable[dict[str, Any]] = _read_local(local_benchmark_path(name, local_dir))
    else:
        records = _read_hub(source)
    return [source.to_problem(dict(record), name) for record in records if source.keep(record)]


def load_benchmarks(
    names: Iterable[str], data_dir: str | os.PathLike[str] | None = None, skip_missing: bool = False
) -> dict[str, list[Problem]]:
    """Load several benchmarks; with ``skip_missing`` a benchmark absent from the local directory is left out."""
    loaded: dict[str, list[Problem]] = {}
    for name in names:
        try:
            loaded[name] = load_benchmark(name, data_dir)
        except FileNotFoundError:
            if not skip_missing:
                raise
    return loaded
