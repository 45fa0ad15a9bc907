"""The funnel inside steps: the contract "bad input never vanishes".

Every step that can drop documents records, per document, one ``in`` and exactly one of ``kept`` / ``excluded`` (with
a reason), both as a document count and as bytes. The counters live in datatrove's own per-task stats files
(``<logging_dir>/stats/<rank>.json``) under keys ``funnel/<step>/...``, so they survive Slurm/Ray runs and re-runs that
skip completed tasks; :mod:`datatrove_pipelines.stats` merges them into ``stats.json`` and checks them.

A step joins the funnel by subclassing :class:`FunnelFilter` (a filter: implement ``check``), by wrapping any datatrove
``BaseFilter`` in :class:`DatatroveFilter`, or by using :class:`FunnelMixin` directly (for steps whose decisions are
not one document at a time). An exception in a check excludes the document as ``error:<ExceptionType>``; more of them
than the step's :class:`ErrorLimit` allows fails the run (a bug must not quietly exclude a corpus).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import traceback
from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.batching import batched
from datatrove.utils.stats import MetricStats, TimingStats

if TYPE_CHECKING:  # datatrove.pipeline.filters imports every filter (nltk, regex ...): not for each stage
    from datatrove.pipeline.filters.base_filter import BaseFilter

FUNNEL_PREFIX = "funnel/"
REASON_KEY = "filter_reason"  # the metadata key datatrove's own filters use for the exclusion reason


def document_bytes(doc: Document) -> int:
    """Bytes a document stands for: ``metadata.size`` when the reader set it (raw file size), else UTF-8 length."""
    size = doc.metadata.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    text = doc.text
    # ASCII text is one byte a character: ``isascii`` scans without building the encoded copy (funnels count every
    # document twice or more); ``document_bytes_plain`` is the reference
    return len(text) if text.isascii() else len(text.encode("utf-8", errors="surrogatepass"))


def document_bytes_plain(doc: Document) -> int:
    """``document_bytes`` by always encoding."""
    size = doc.metadata.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    return len(doc.text.encode("utf-8", errors="surrogatepass"))


def merge_values(metric: MetricStats, values: list[float]) -> None:
    """Add ``values`` to a datatrove ``MetricStats`` (or ``TimingStats``) in place, as that many ``update`` calls
    would: the values become one ``MetricStats`` (its public ``from_dict`` form) added with datatrove's own
    ``MetricStats.__add__`` (the parallel formula for mean and variance). A ``TimingStats`` stays one task's timing."""
    if not values:
        return
    count = len(values)
    total = sum(values)  # in order, as the updates would add them (exact for the integer counters)
    mean = total / count
    variance = math.fsum((value - mean) ** 2 for value in values) / (count - 1) if count > 1 else 0.0
    _merge_summary(metric, total, count, mean, variance, min(values), max(values))


def merge_count(metric: MetricStats, count: int) -> None:
    """``merge_values(metric, [1] * count)`` without the list: a document counter (every value 1) only needs how
    many there were (total = n = count, mean 1.0, variance 0.0, min = max = 1)."""
    if count:
        _merge_summary(metric, count, count, count / count, 0.0, 1, 1)


def _merge_summary(
    metric: MetricStats, total: float, count: int, mean: float, variance: float, low: float, high: float
) -> None:
    chunk = type(metric).from_dict(
        {"total": total, "n": count, "mean": mean, "variance": variance, "min": low, "max": high}
    )
    merged = MetricStats.__add__(metric, chunk)  # TimingStats.__add__ would count the chunk as another task
    for metric_field in dataclasses.fields(MetricStats):  # in place: the step's stats dict holds ``metric``
        setattr(metric, metric_field.name, getattr(merged, metric_field.name))
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
        self.counts: dict[str, int] = {}  # counters whose every value is 1 (``count``), merged by ``merge_count``
        self.times: list[float] = []

    def add(self, key: str, value: float = 1) -> None:
        values = self.values.get(key)
        if values is None:
            values = self.values[key] = []
        values.append(value)

    def extend(self, key: str, values: list[float]) -> None:
        """``add(key, value)`` for each of ``values``, in order."""
        self.values.setdefault(key, []).extend(values)

    def count(self, key: str, documents: int) -> None:
        """``add(key)`` (value 1) ``documents`` times: the same merged stats, without a list of ones."""
        self.counts[key] = self.counts.get(key, 0) + documents

    def time(self, seconds: float) -> None:
        self.times.append(seconds)

    def flush(self) -> None:
        metrics = self.step.stats.stats
        for key, count in self.counts.items():
            merge_count(metrics[key], count)
        self.counts.clear()
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


@dataclasses.dataclass(frozen=True)
class ErrorLimit:
    """When a step's check errors stop being bad input and become a bug: an exception in a check excludes its document
    as ``error:<ExceptionType>``, but once a task has seen ``min_documents`` documents, more than ``max_fraction`` of
    them excluded so fails the run (checked at each error and at the end of the task). ``max_fraction=1`` turns the
    limit off."""

    max_fraction: float = 0.01
    min_documents: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.max_fraction <= 1 or self.min_documents < 1:
            raise ValueError(f"ErrorLimit needs 0 <= max_fraction <= 1 and min_documents >= 1, got {self}")

    def exceeded(self, errors: int, documents: int) -> bool:
        return documents >= self.min_documents and errors > self.max_fraction * documents


class FunnelErrorLimitExceeded(RuntimeError):
    """A step excluded more documents for errors in its checks than its ``ErrorLimit`` allows: a bug, not bad input."""


ERROR_REASON_PREFIX = "error:"


class FunnelFilter(FunnelMixin, PipelineStep):
    """A filter that takes part in the funnel: implement ``check(doc) -> reason | None`` (None keeps the document).

    ``check_batch`` may be overridden to decide a batch at once (set ``batch_size``). An exception raised by ``check``
    does not crash the pipeline: the document is excluded with reason ``error:<ExceptionType>``; a task whose error
    exclusions exceed ``error_limit`` (default ``FunnelFilter.default_error_limit``) fails with
    ``FunnelErrorLimitExceeded``, naming the step and giving the first traceback.
    """

    type = "🔻 - FILTER"
    default_error_limit = ErrorLimit()
    _first_error: str | None = None

    def __init__(
        self,
        funnel_step: str,
        exclusion_writer: DiskWriter | None = None,
        batch_size: int = 1,
        *,
        error_limit: ErrorLimit | None = None,
    ):
        self.funnel_step = funnel_step
        self.name = funnel_step
        super().__init__()
        self.exclusion_writer = exclusion_writer
        self.batch_size = batch_size
        self.error_limit = error_limit
        self._first_error: str | None = None

    @abstractmethod
    def check(self, doc: Document) -> str | None:
        """The reason to exclude ``doc``, or None to keep it."""

    def check_batch(self, batch: list[Document]) -> list[str | None]:
        return [self._safe_check(doc) for doc in batch]

    def _safe_check(self, doc: Document) -> str | None:
        try:
            return self.check(doc)
        except Exception as error:  # bad input must be excluded, not crash the task (unless it is most of them)
            return self.error_reason(error, doc)

    def error_reason(self, error: BaseException, doc: Document) -> str:
        """The exclusion reason of ``doc`` for ``error`` raised while checking it; keeps the first traceback for
        ``FunnelErrorLimitExceeded``. For ``check_batch`` overrides that catch exceptions themselves."""
        if self._first_error is None:
            trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self._first_error = f"document {doc.id!r}:\n{trace}"
        return f"{ERROR_REASON_PREFIX}{type(error).__name__}"

    def _check_error_limit(self, errors: int, documents: int) -> None:
        limit = self.error_limit or self.default_error_limit
        if limit.exceeded(errors, documents):
            raise FunnelErrorLimitExceeded(
                f"step {self.funnel_step!r}: {errors} of {documents} documents were excluded for exceptions in its "
                f"check (more than {limit.max_fraction:.1%}, after at least {limit.min_documents} documents: "
                f"ErrorLimit). That is a bug, not bad input. First error, {self._first_error or 'no traceback kept'}"
            )

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
        sizes_in: list[int] = []  # this chunk's documents in and kept, moved into the buffer before each flush
        sizes_kept: list[int] = []

        def flush() -> None:
            for docs_key, bytes_key, sizes in ((docs_in, bytes_in, sizes_in), (docs_kept, bytes_kept, sizes_kept)):
                if sizes:
                    buffer.count(docs_key, len(sizes))
                    buffer.extend(bytes_key, sizes)
                    sizes.clear()
            buffer.flush()

        errors = documents = 0
        with writer_context as writer:
            try:
                for documents, (doc, reason) in enumerate(self._decisions(data, buffer), start=1):
                    if documents % buffer.FLUSH_EVERY == 0:
                        flush()
                    size = document_bytes(doc)
                    sizes_in.append(size)
                    if reason is None:
                        sizes_kept.append(size)
                        yield doc
                    else:
                        self.funnel_exclude(doc, reason, writer, rank)
                        if reason.startswith(ERROR_REASON_PREFIX):
                            errors += 1
                            self._check_error_limit(errors, documents)
                self._check_error_limit(errors, documents)
            finally:  # also when the consumer stops early: the generator is closed and the counts still land
                flush()
                self._stats_buffer = None


class DatatroveFilter(FunnelFilter):
    """Any datatrove ``BaseFilter`` (``LambdaFilter``, ``RegexFilter``, ``FastTextClassifierFilter``, the Gopher and
    C4 filters, ...) as a funnel step: ``filter()`` returning True keeps a document, ``(False, reason)`` excludes it
    with that reason and a bare False with ``default_reason``. Its ``filter_batch`` and ``batch_size`` are used; its
    own stats (e.g. ``dropped_<reason>``) join this step's. Give the exclusion writer to the adapter, not the filter.

        DatatroveFilter(LambdaFilter(lambda doc: "TODO" not in doc.text), "no_todo", exclusion_writer(out, "no_todo"))
    """

    def __init__(
        self,
        base_filter: BaseFilter,
        funnel_step: str,
        exclusion_writer: DiskWriter | None = None,
        *,
        default_reason: str = "dropped",
        error_limit: ErrorLimit | None = None,
    ):
        if base_filter.exclusion_writer is not None:
            raise ValueError(f"{funnel_step}: give the exclusion writer to DatatroveFilter, not to the wrapped filter")
        super().__init__(funnel_step, exclusion_writer, batch_size=base_filter.batch_size, error_limit=error_limit)
        self.base_filter = base_filter
        self.default_reason = default_reason

    def _reason(self, result: bool | tuple[bool, str]) -> str | None:
        keep, reason = result if isinstance(result, tuple) else (result, None)  # as datatrove's get_filter_result
        return None if keep else (reason or self.default_reason)

    def check(self, doc: Document) -> str | None:
        return self._reason(self.base_filter.filter(doc))

    def check_batch(self, batch: list[Document]) -> list[str | None]:
        try:
            return [self._reason(result) for result in self.base_filter.filter_batch(batch)]
        except Exception:
            return super().check_batch(batch)  # each document alone: the one that raises is excluded with its error

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        try:
            yield from super().run(data, rank, world_size)
        finally:
            self.stats.stats = self.stats.stats + self.base_filter.stats.stats
            self.base_filter.stats.stats.clear()
