"""What every curation pipeline shares: executor flags, kept/excluded writers, and the funnel (stats.json).

The funnel is the contract "bad input never vanishes": every step that can drop documents records, per document,
one ``in`` and exactly one of ``kept`` / ``excluded`` (with a reason), both as a document count and as bytes. The
counters live in datatrove's own per-task stats files (``<logging_dir>/stats/<rank>.json``) under keys
``funnel/<step>/...``, so they survive Slurm/Ray runs and re-runs that skip completed tasks. :func:`write_stats`
merges them into ``<output_dir>/stats.json`` and raises if ``documents in != kept + Σ excluded``.

A step joins the funnel by subclassing :class:`FunnelFilter` (a filter: implement ``check``) or by using
:class:`FunnelMixin` directly (for steps whose decisions are not one document at a time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from gzip import GzipFile
from pathlib import Path
from typing import Any

import fsspec.compression
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.batching import batched
from datatrove.utils.stats import MetricStats, TimingStats
from datatrove.utils.typeshelper import StatHints

EXECUTORS = ("local", "slurm", "ray")
FUNNEL_PREFIX = "funnel/"
REASON_KEY = "filter_reason"  # the metadata key datatrove's own filters use for the exclusion reason


# --------------------------------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ExecutorConfig:
    """How to run a pipeline: locally (default), on Slurm or on Ray, through datatrove's executors."""

    executor: str = "local"  # local | slurm | ray
    tasks: int = 1
    workers: int = -1  # simultaneous tasks; -1 = all tasks at once
    partition: str | None = None  # slurm only (required there)
    time: str = "24:00:00"  # slurm only
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    qos: str = "normal"  # slurm only
    venv_path: str | None = None  # slurm only: activated in each job
    sbatch_args: dict[str, str] = field(default_factory=dict)  # slurm only: extra #SBATCH options
    skip_completed: bool = True  # re-runs skip tasks that completed before (datatrove's completions/ markers)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}")
        if self.tasks < 1:
            raise ValueError(f"tasks must be >= 1 (got {self.tasks})")
        if self.workers == 0 or self.workers < -1:
            raise ValueError(f"workers must be -1 (all tasks at once) or >= 1 (got {self.workers})")
        if self.executor == "slurm" and not self.partition:
            raise ValueError("the slurm executor needs a partition: pass --partition NAME")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --executor --tasks --workers --partition --time --cpus-per-task --mem-per-cpu-gb --qos --venv-path."""
    defaults = ExecutorConfig()
    group = parser.add_argument_group("executor")
    group.add_argument("--executor", choices=EXECUTORS, default=defaults.executor, help="where tasks run")
    group.add_argument("--tasks", type=int, default=defaults.tasks, help="number of shards of the input")
    group.add_argument(
        "--workers", type=int, default=defaults.workers, help="tasks run at the same time (-1: all of them)"
    )
    group.add_argument("--partition", default=defaults.partition, help="slurm partition (slurm only)")
    group.add_argument("--time", default=defaults.time, help="slurm time limit per job (slurm only)")
    group.add_argument("--cpus-per-task", type=int, default=defaults.cpus_per_task)
    group.add_argument("--mem-per-cpu-gb", type=float, default=defaults.mem_per_cpu_gb)
    group.add_argument("--qos", default=defaults.qos, help="slurm QOS (slurm only)")
    group.add_argument("--venv-path", default=defaults.venv_path, help="virtualenv activated in slurm jobs")
    group.add_argument(
        "--no-skip-completed",
        dest="skip_completed",
        action="store_false",
        help="re-run tasks even if a previous run completed them",
    )


def executor_config_from_args(args: argparse.Namespace) -> ExecutorConfig:
    """The ExecutorConfig described by the flags of :func:`add_executor_arguments`."""
    names = {f.name for f in fields(ExecutorConfig)}
    return ExecutorConfig(**{name: getattr(args, name) for name in names if hasattr(args, name)})


def build_executor(
    pipeline: list, config: ExecutorConfig, logging_dir: str, job_name: str, depends=None, tasks: int | None = None
):
    """A datatrove executor for ``pipeline``; ``tasks`` overrides ``config.tasks`` (e.g. a single-task stage).

    Re-running with the same ``logging_dir`` skips tasks completed before, unless ``config.skip_completed`` is off.
    """
    n_tasks = tasks if tasks is not None else config.tasks
    workers = config.workers if config.workers == -1 else min(config.workers, n_tasks)
    if config.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(
            pipeline=pipeline,
            tasks=n_tasks,
            workers=workers,
            logging_dir=logging_dir,
            depends=depends,
            skip_completed=config.skip_completed,
        )
    if config.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        return SlurmPipelineExecutor(
            pipeline=pipeline,
            tasks=n_tasks,
            workers=workers,
            time=config.time,
            partition=config.partition,
            cpus_per_task=config.cpus_per_task,
            mem_per_cpu_gb=config.mem_per_cpu_gb,
            qos=config.qos,
            venv_path=config.venv_path,
            sbatch_args=config.sbatch_args or None,
            job_name=job_name,
            logging_dir=logging_dir,
            depends=depends,
            skip_completed=config.skip_completed,
        )
    try:
        import ray  # noqa: F401
    except ImportError as error:
        raise ImportError("the ray executor needs ray: pip install 'seed-coder-recipes[ray]'") from error
    from datatrove.executor.ray import RayPipelineExecutor

    return RayPipelineExecutor(
        pipeline=pipeline,
        tasks=n_tasks,
        workers=workers,
        logging_dir=logging_dir,
        depends=depends,
        skip_completed=config.skip_completed,
        cpus_per_task=config.cpus_per_task,
        mem_per_cpu_gb=config.mem_per_cpu_gb,
    )


# --------------------------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------------------------


# gzip at level 1 (kept/ and excluded/): ~5x faster to write than the default level 9 on code, ~10% larger,
# read by any gzip reader.
# With the optional ``isal`` package (Intel ISA-L), the same gzip format is written ~4x faster than with zlib.
try:
    from isal.igzip import IGzipFile as _FastGzipFile
except ImportError:  # plain zlib
    _FastGzipFile = GzipFile
FAST_GZIP = "gzip_level1"
fsspec.compression.register_compression(
    FAST_GZIP,
    lambda file, mode="rb", **kwargs: _FastGzipFile(fileobj=file, mode=mode, compresslevel=1),
    [],
    force=True,
)


def document_dict(writer: DiskWriter, document: Document) -> dict:
    """A writer adapter equal to datatrove's default one (fields that are set, in field order) without its
    ``dataclasses.asdict`` deep copy of the metadata, which costs more than the JSON encoding."""
    if document.media or writer.expand_metadata:
        return writer._default_adapter(document)
    return {
        key: value
        for key, value in (("text", document.text), ("id", document.id), ("metadata", document.metadata))
        if value
    }


class RankFileJsonlWriter(JsonlWriter):
    """A JsonlWriter with one file per task (``output_filename`` may only use ``${rank}``).

    datatrove fills the file-name template twice per document, from a dict of the document's id and metadata, since a
    template may use them; with only ``${rank}`` the name is the same for every document of a task and is kept."""

    _stats_buffer: StatsBuffer | None = None  # set while ``run`` writes

    def __init__(self, output_folder: str, output_filename: str = "${rank}.jsonl.gz", **kwargs):
        super().__init__(output_folder, output_filename=output_filename, **kwargs)
        extra = set(self.output_filename.get_identifiers()) - {"rank"}
        if extra:
            raise ValueError(f"RankFileJsonlWriter names files by ${{rank}} only, not by {sorted(extra)}")
        self._filenames: dict[str, str] = {}

    def _get_output_filename(self, document: Document, rank: int | str = 0, **kwargs) -> str:
        if kwargs:
            return super()._get_output_filename(document, rank, **kwargs)
        key = str(rank)
        if key not in self._filenames:
            self._filenames[key] = super()._get_output_filename(document, rank)
        return self._filenames[key]

    def write(self, document: Document, rank: int = 0, **kwargs) -> None:
        """DiskWriter.write with its per-document counters (documents per file, total, doc_len) buffered while
        ``run`` is writing; as datatrove's otherwise (split files, extra name fields, exclusion writers)."""
        buffer = self._stats_buffer
        if buffer is None or kwargs or self.max_file_size > 0:
            super().write(document, rank, **kwargs)
            return
        name = self._get_output_filename(document, rank)
        self._write(self.adapter(document), self._get_output_file_with_retry(name), name)
        buffer.add(self._get_output_filename(document, "XXXXX"))
        buffer.add(StatHints.total)
        buffer.add("doc_len", len(document.text))
        if token_count := document.metadata.get("token_count"):
            buffer.add("doc_len_tokens", token_count)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        buffer = self._stats_buffer = StatsBuffer(self)
        clock = time.perf_counter
        try:
            with self:
                for count, document in enumerate(data, start=1):
                    start = clock()
                    self.write(document, rank)
                    buffer.time(clock() - start)
                    if count % buffer.FLUSH_EVERY == 0:
                        buffer.flush()
                    yield document
        finally:
            buffer.flush()
            self._stats_buffer = None


def kept_writer(output_dir: str) -> JsonlWriter:
    """Writes the surviving documents to ``<output_dir>/kept/<rank>.jsonl.gz``."""
    return RankFileJsonlWriter(
        os.path.join(output_dir, "kept"),
        output_filename="${rank}.jsonl.gz",
        compression=FAST_GZIP,
        adapter=document_dict,
    )


def exclusion_writer(output_dir: str, step: str) -> JsonlWriter:
    """Writes the documents ``step`` excluded (reason in ``metadata.filter_reason``) to ``excluded/<step>/``."""
    return RankFileJsonlWriter(
        os.path.join(output_dir, "excluded", step),
        output_filename="${rank}.jsonl.gz",
        compression=FAST_GZIP,
        adapter=document_dict,
    )


# --------------------------------------------------------------------------------------------------------------------
# Funnel accounting inside steps
# --------------------------------------------------------------------------------------------------------------------


def document_bytes(doc: Document) -> int:
    """Bytes a document stands for: ``metadata.size`` when the reader set it (raw file size), else UTF-8 length."""
    size = doc.metadata.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    return len(doc.text.encode("utf-8", errors="surrogatepass"))


def merge_values(metric: MetricStats, values: list[float]) -> None:
    """Add ``values`` to a datatrove ``MetricStats`` (or ``TimingStats``) in place, as that many ``update`` calls
    would (count, total, mean, variance by the parallel formula, min, max; a single task's timing totals)."""
    if not values:
        return
    count = len(values)
    total = sum(values)  # in order, as the updates would add them (exact for the integer counters)
    mean = total / count
    squares = math.fsum((value - mean) ** 2 for value in values)
    n = metric.n + count
    delta = mean - metric.mean
    metric._running_variance += squares + delta * delta * metric.n * count / n
    metric.mean += delta * count / n
    metric.n = n
    metric.total += total
    metric.min = min(metric.min, min(values))
    metric.max = max(metric.max, max(values))
    if isinstance(metric, TimingStats) and metric.n_tasks == 1:
        metric.global_mean = metric.global_min = metric.global_max = metric.total


class StatsBuffer:
    """Per-document numbers for one step's datatrove stats, kept in lists and merged in with ``flush``.

    A ``stat_update`` or timer costs a few microseconds; with ~25 of them per document over a pipeline they cost more
    than the checks themselves on small files. The merged stats are the same (counts, totals, means, variances,
    extremes), so stats.json and datatrove's logs read as before."""

    FLUSH_EVERY = 4096  # documents

    def __init__(self, step: PipelineStep):
        self.step = step
        self.values: dict[str, list[float]] = {}
        self.times: list[float] = []

    def add(self, key: str, value: float = 1) -> None:
        values = self.values.get(key)
        if values is None:
            values = self.values[key] = []
        values.append(value)

    def time(self, seconds: float) -> None:
        self.times.append(seconds)

    def flush(self) -> None:
        metrics = self.step.stats.stats
        for key, values in self.values.items():
            merge_values(metrics[key], values)
            values.clear()
        merge_values(self.step.stats.time_stats, self.times)
        self.times.clear()


class FunnelMixin:
    """Funnel counters for a PipelineStep; ``funnel_step`` names the step in stats.json and in ``excluded/``.

    While a ``StatsBuffer`` is active (``_stats_buffer``, set by FunnelFilter.run), counts go through it."""

    funnel_step: str
    _stats_buffer: StatsBuffer | None = None

    def _keys(self, label: str) -> tuple[str, str]:
        """(docs key, bytes key) of a funnel label: built once per step and label."""
        keys = self.__dict__.setdefault("_funnel_keys", {})
        if label not in keys:
            prefix = f"{FUNNEL_PREFIX}{self.funnel_step}/"
            if label.startswith("note/"):
                keys[label] = (f"{prefix}{label}/docs", f"{prefix}{label}/bytes")
            else:
                keys[label] = (f"{prefix}docs_{label}", f"{prefix}bytes_{label}")
        return keys[label]

    def _count(self, label: str, size: int) -> None:
        docs_key, bytes_key = self._keys(label)
        if self._stats_buffer is not None:
            self._stats_buffer.add(docs_key)
            self._stats_buffer.add(bytes_key, size)
            return
        metrics = self.stats  # type: ignore[attr-defined]
        metrics[docs_key].update(1)
        metrics[bytes_key].update(size)

    def funnel_in(self, doc: Document) -> None:
        self._count("in", document_bytes(doc))

    def funnel_keep(self, doc: Document) -> None:
        self._count("kept", document_bytes(doc))

    def funnel_exclude(self, doc: Document, reason: str, writer: DiskWriter | None, rank: int) -> None:
        """Count ``doc`` as excluded for ``reason`` and write it (with the reason) through ``writer``."""
        step: PipelineStep = self  # type: ignore[assignment]
        size = document_bytes(doc)
        self._count("excluded", size)
        prefix = f"{FUNNEL_PREFIX}{self.funnel_step}/reason/{reason}/"
        step.stat_update(prefix + "docs")
        step.stat_update(prefix + "bytes", value=size)
        doc.metadata[REASON_KEY] = reason
        doc.metadata["excluded_by"] = self.funnel_step
        if writer is not None:
            writer.write(doc, rank)

    def funnel_note(self, label: str, doc: Document) -> None:
        """An extra per-step counter (e.g. ``unchecked`` documents of the syntax step); not part of the invariant."""
        self._count(f"note/{label}", document_bytes(doc))


class FunnelFilter(FunnelMixin, PipelineStep):
    """A filter that takes part in the funnel: implement ``check(doc) -> reason | None`` (None keeps the document).

    ``check_batch`` may be overridden to decide a batch at once (set ``batch_size``). Exceptions raised by ``check``
    do not crash the pipeline: the document is excluded with reason ``error:<ExceptionType>``.
    """

    type = "🔻 - FILTER"

    def __init__(self, funnel_step: str, exclusion_writer: DiskWriter | None = None, batch_size: int = 1):
        self.funnel_step = funnel_step
        self.name = funnel_step
        super().__init__()
        self.exclusion_writer = exclusion_writer
        self.batch_size = batch_size

    @abstractmethod
    def check(self, doc: Document) -> str | None:
        """The reason to exclude ``doc``, or None to keep it."""

    def check_batch(self, batch: list[Document]) -> list[str | None]:
        return [self._safe_check(doc) for doc in batch]

    def _safe_check(self, doc: Document) -> str | None:
        try:
            return self.check(doc)
        except Exception as error:  # bad input must be excluded, not crash the task
            return f"error:{type(error).__name__}"

    def _decisions(self, data: DocumentsPipeline, buffer: StatsBuffer) -> Iterator[tuple[Document, str | None]]:
        """(document, reason) pairs: one check at a time when batch_size is 1 (no one-document batches), else batches.
        Each check's time goes to ``buffer`` (datatrove's per-document time stats, merged at flush)."""
        clock = time.perf_counter
        if self.batch_size == 1 and type(self).check_batch is FunnelFilter.check_batch:
            for doc in data or ():
                start = clock()
                reason = self._safe_check(doc)
                buffer.time(clock() - start)
                yield doc, reason
            return
        for batch in batched(data, self.batch_size):
            with self.track_time("batch" if self.batch_size > 1 else None):
                reasons = self.check_batch(batch)
            yield from zip(batch, reasons, strict=True)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer_context = self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext()
        buffer = self._stats_buffer = StatsBuffer(self)
        docs_in, bytes_in = self._keys("in")
        docs_kept, bytes_kept = self._keys("kept")
        with writer_context as writer:
            try:
                for count, (doc, reason) in enumerate(self._decisions(data, buffer), start=1):
                    if count % buffer.FLUSH_EVERY == 0:
                        buffer.flush()
                    size = document_bytes(doc)
                    buffer.add(docs_in)
                    buffer.add(bytes_in, size)
                    if reason is None:
                        buffer.add(docs_kept)
                        buffer.add(bytes_kept, size)
                        yield doc
                    else:
                        self.funnel_exclude(doc, reason, writer, rank)
            finally:  # also when the consumer stops early: the generator is closed and the counts still land
                buffer.flush()
                self._stats_buffer = None


# --------------------------------------------------------------------------------------------------------------------
# stats.json and the funnel
# --------------------------------------------------------------------------------------------------------------------


class FunnelInvariantError(RuntimeError):
    """Documents were lost or invented between steps: in != kept + Σ excluded."""


def _metric_total(value: Any) -> float:
    """The summed value of one datatrove MetricStats entry as stored in a stats json (a number or a dict)."""
    if isinstance(value, dict):
        return value.get("total", 0)
    return value or 0


def _as_int(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _empty_step() -> dict[str, Any]:
    return {
        "docs_in": 0,
        "bytes_in": 0,
        "docs_kept": 0,
        "bytes_kept": 0,
        "docs_excluded": 0,
        "bytes_excluded": 0,
        "reasons": {},
        "notes": {},
    }


def _read_task_stats(logging_dir: str) -> list[list[dict[str, Any]]]:
    """Per-task stats of one datatrove run: ``<logging_dir>/stats/<rank>.json`` (each a list of per-step dicts)."""
    folder = get_datafolder(logging_dir)
    if not folder.isdir("stats"):
        return []
    tasks = []
    for name in sorted(folder.list_files("stats", glob_pattern="*.json")):
        with folder.open(name, "rt") as handle:
            tasks.append(json.load(handle))
    return tasks


def collect_funnel(logging_dirs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per funnel step (in pipeline order), the summed counters of every task of every run in ``logging_dirs``."""
    steps: dict[str, dict[str, Any]] = {}
    for logging_dir in logging_dirs:
        for task_stats in _read_task_stats(logging_dir):
            for step_stats in task_stats:
                for key, value in step_stats.get("stats", {}).items():
                    if not key.startswith(FUNNEL_PREFIX):
                        continue
                    step_name, _, rest = key[len(FUNNEL_PREFIX) :].partition("/")
                    entry = steps.setdefault(step_name, _empty_step())
                    total = _metric_total(value)
                    if rest.startswith("reason/") or rest.startswith("note/"):
                        kind, name_and_unit = rest.split("/", 1)
                        name, _, unit = name_and_unit.rpartition("/")
                        bucket = entry["reasons" if kind == "reason" else "notes"].setdefault(
                            name, {"docs": 0, "bytes": 0}
                        )
                        bucket[unit] = _as_int(bucket[unit] + total)
                    elif rest in entry:
                        entry[rest] = _as_int(entry[rest] + total)
    return steps


def check_funnel(steps: dict[str, dict[str, Any]]) -> None:
    """Raise FunnelInvariantError unless every step and the whole funnel satisfy in = kept + Σ excluded."""
    problems = []
    for name, step in steps.items():
        reasons_docs = sum(r["docs"] for r in step["reasons"].values())
        if step["docs_in"] != step["docs_kept"] + step["docs_excluded"]:
            problems.append(f"{name}: {step['docs_in']} in != {step['docs_kept']} kept + {step['docs_excluded']} excl")
        if reasons_docs != step["docs_excluded"]:
            problems.append(f"{name}: reasons add up to {reasons_docs}, excluded is {step['docs_excluded']}")
    ordered = list(steps.items())
    for (prev_name, prev), (name, step) in zip(ordered, ordered[1:], strict=False):
        if prev["docs_kept"] != step["docs_in"]:
            problems.append(f"{prev_name} kept {prev['docs_kept']} but {name} received {step['docs_in']}")
    if ordered:
        first, last = ordered[0][1], ordered[-1][1]
        excluded = sum(step["docs_excluded"] for step in steps.values())
        if first["docs_in"] != last["docs_kept"] + excluded:
            problems.append(f"total: {first['docs_in']} in != {last['docs_kept']} kept + {excluded} excluded")
    if problems:
        raise FunnelInvariantError("funnel invariant violated: " + "; ".join(problems))


def write_stats(output_dir: str, logging_dirs: list[str]) -> dict[str, Any]:
    """Merge the funnel counters of ``logging_dirs`` (in stage order) into ``<output_dir>/stats.json``.

    Raises FunnelInvariantError (after writing the file, so it can be inspected) if documents in != kept + Σ excluded.
    """
    steps = collect_funnel(logging_dirs)
    ordered = list(steps.values())
    stats: dict[str, Any] = {
        "steps": steps,
        "total": {
            "docs_in": ordered[0]["docs_in"] if ordered else 0,
            "bytes_in": ordered[0]["bytes_in"] if ordered else 0,
            "docs_kept": ordered[-1]["docs_kept"] if ordered else 0,
            "bytes_kept": ordered[-1]["bytes_kept"] if ordered else 0,
            "docs_excluded": sum(s["docs_excluded"] for s in ordered),
            "bytes_excluded": sum(s["bytes_excluded"] for s in ordered),
        },
    }
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with open(os.path.join(output_dir, "stats.json"), "w") as handle:
        json.dump(stats, handle, indent=2)
    check_funnel(steps)
    return stats


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def format_funnel(stats: dict[str, Any], top_reasons: int = 4) -> str:
    """A table of the funnel: per step documents and bytes in / kept / excluded, and the main reasons."""
    header = f"{'step':<16} {'docs in':>9} {'kept':>9} {'excluded':>9} {'bytes in':>10} {'bytes kept':>10}  reasons"
    lines = [header, "-" * len(header)]
    for name, step in stats["steps"].items():
        reasons = sorted(step["reasons"].items(), key=lambda item: -item[1]["docs"])
        shown = ", ".join(f"{reason}={counts['docs']}" for reason, counts in reasons[:top_reasons])
        if len(reasons) > top_reasons:
            shown += f", … ({len(reasons) - top_reasons} more)"
        notes = ", ".join(f"{note}={counts['docs']}" for note, counts in step["notes"].items())
        if notes:
            shown = f"{shown}  [{notes}]" if shown else f"[{notes}]"
        lines.append(
            f"{name:<16} {step['docs_in']:>9} {step['docs_kept']:>9} {step['docs_excluded']:>9} "
            f"{_human_bytes(step['bytes_in']):>10} {_human_bytes(step['bytes_kept']):>10}  {shown}"
        )
    total = stats["total"]
    lines.append("-" * len(header))
    kept_share = 100 * total["bytes_kept"] / total["bytes_in"] if total["bytes_in"] else 0.0
    lines.append(
        f"{'total':<16} {total['docs_in']:>9} {total['docs_kept']:>9} {total['docs_excluded']:>9} "
        f"{_human_bytes(total['bytes_in']):>10} {_human_bytes(total['bytes_kept']):>10}  "
        f"({kept_share:.1f}% of bytes kept)"
    )
    return "\n".join(lines)
