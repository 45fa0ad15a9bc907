"""The code-file pipeline's intermediate file, and the filter run copying its survivors to ``kept/`` as bytes.

The prepare run writes each document that passed the per-file filters to ``work/prepared/<rank>.jsonl``;
``DedupSignatures`` gave it ``metadata.dedup_ref = [rank, line]``, the last key of its last field, so a line ends in
``,"dedup_ref":[rank,line]}}``. :class:`PreparedWriter` also writes ``<rank>.lines.npy``: per line, the document's
text length in characters, its funnel bytes and its token count, the numbers the filter run's stats need.

The plain filter run (the reference) decodes every line, passes the document through the exact and near dedup
filters and encodes the survivors again for ``kept/``. With :meth:`PreparedReader.copy_survivors` the reader does
the same work itself: a line whose ``(rank, line)`` no removal list names is written to ``kept/`` as it is, less its
``dedup_ref`` (the record the plain run writes, byte for byte: both are orjson's encoding of the same dict); only the
duplicates, and a line not ending in its own reference, are decoded and go through the filters' own checks, exclusion
writers and error limits. The four steps' datatrove stats get the same values, merged in the same chunks as their own
runs merge them, so ``stats.json`` and the per-step stats are those of the plain run (tested side by side); the
per-document times are the fast path's own. The steps after the reader then see no documents.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.utils.logging import logger
from datatrove.utils.typeshelper import StatHints

from datatrove_pipelines.code_readers import EXCLUSION_KEY, FaultTolerantJsonlReader
from datatrove_pipelines.dedup import DEDUP_REF_KEY, DedupFilter
from datatrove_pipelines.funnel import ERROR_REASON_PREFIX, StatsBuffer, document_bytes
from datatrove_pipelines.writers import RankFileJsonlWriter, document_dict

INDEX_SUFFIX = ".lines.npy"
PREPARED_NAME = re.compile(r"(?:.*/)?(\d+)\.jsonl$")
WRITE_CHUNK_BYTES = 1 << 18
_NAMELESS = Document(text="", id="")  # file names use only ${rank} (RankFileJsonlWriter)


def index_name(jsonl_name: str) -> str:
    """``00003.jsonl`` -> ``00003.lines.npy`` (not matched by the reader's ``*.jsonl``)."""
    return jsonl_name[: -len(".jsonl")] + INDEX_SUFFIX


class PreparedWriter(RankFileJsonlWriter):
    """The intermediate JSONL writer, plus each task's line index (characters, funnel bytes, token count per line),
    written when the task's file is complete. A document whose token count is not an int gets no index (the filter
    run then takes the plain path)."""

    def __init__(self, output_folder: str, output_filename: str = "${rank}.jsonl", **kwargs):
        super().__init__(output_folder, output_filename=output_filename, **kwargs)
        self._lines: dict[int, list[tuple[int, int, int]]] = {}
        self._indexable = True

    def write(self, document: Document, rank: int = 0, **kwargs) -> None:
        super().write(document, rank, **kwargs)
        tokens = document.metadata.get("token_count") or 0
        if type(tokens) is not int:
            self._indexable = False
        self._lines.setdefault(rank, []).append((len(document.text), document_bytes(document), tokens or 0))

    def close(self) -> None:
        super().close()
        lines, self._lines = self._lines, {}
        if not self._indexable or not self.output_filename.template.endswith(".jsonl"):
            return
        for rank, rows in lines.items():
            name = index_name(self._get_output_filename(_NAMELESS, rank))
            with self.output_folder.open(name, "wb") as handle:
                np.save(handle, np.array(rows, dtype=np.int64).reshape(-1, 3))


class _FunnelTally:
    """What ``FunnelFilter.run`` records for ``step``, for decisions taken by the reader: a flush before every
    ``FLUSH_EVERY``-th document, the sizes in and kept as one chunk, exclusions through the step's own
    ``funnel_exclude`` (reasons, exclusion writer) into this chunk, the error limit checked at each error."""

    def __init__(self, step: DedupFilter):
        self.step = step
        self.buffer = StatsBuffer(step)
        self.documents = self.errors = 0
        self.sizes_in: list[int] = []
        self.sizes_kept: list[int] = []

    def flush(self) -> None:
        for label, sizes in (("in", self.sizes_in), ("kept", self.sizes_kept)):
            if sizes:
                docs_key, bytes_key = self.step._keys(label)
                self.buffer.count(docs_key, len(sizes))
                self.buffer.extend(bytes_key, sizes)
                sizes.clear()
        self.buffer.flush()

    def record(self, size: int, seconds: float, reason: str | None, doc: Document | None, rank: int) -> None:
        self.buffer.time(seconds)
        self.documents += 1
        if self.documents % StatsBuffer.FLUSH_EVERY == 0:
            self.flush()
        self.sizes_in.append(size)
        if reason is None:
            self.sizes_kept.append(size)
            return
        step, saved = self.step, self.step._stats_buffer
        step._stats_buffer = self.buffer
        try:
            step.funnel_exclude(doc, reason, step.exclusion_writer, rank)
        finally:
            step._stats_buffer = saved
        if reason.startswith(ERROR_REASON_PREFIX):
            self.errors += 1
            step._check_error_limit(self.errors, self.documents)

    def finish(self) -> None:
        self.flush()
        self.step._check_error_limit(self.errors, self.documents)


class _KeptTally:
    """``RankFileJsonlWriter.run`` for lines written by the reader: bytes appended to the task's file in chunks, the
    writer's counters (documents per file, total, doc_len, doc_len_tokens) flushed after every ``FLUSH_EVERY``-th."""

    def __init__(self, writer: RankFileJsonlWriter, rank: int):
        self.writer, self.rank = writer, rank
        self.buffer = StatsBuffer(writer)
        self.count = 0
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.name = writer._get_output_filename(_NAMELESS, rank)
        self.stat_name = writer._get_output_filename(_NAMELESS, "XXXXX")

    def _handle(self):
        return self.writer._get_output_file_with_retry(self.name)

    def write_flush(self) -> None:
        if self.pending:
            self._handle().write(b"".join(self.pending))
            self.pending.clear()
            self.pending_bytes = 0

    def add(self, line: bytes | None, doc: Document | None, chars: int, tokens: int) -> None:
        start = time.perf_counter()
        if line is not None:
            self.pending.append(line)
            self.pending_bytes += len(line)
            if self.pending_bytes >= WRITE_CHUNK_BYTES:
                self.write_flush()
        else:  # a decoded survivor: written as the writer writes it
            self.write_flush()
            self.writer._write(self.writer.adapter(doc), self._handle(), self.name)
        buffer = self.buffer
        buffer.add(self.stat_name)
        buffer.add(StatHints.total)
        buffer.add("doc_len", chars)
        if tokens:
            buffer.add("doc_len_tokens", tokens)
        buffer.time(time.perf_counter() - start)
        self.count += 1
        if self.count % StatsBuffer.FLUSH_EVERY == 0:
            buffer.flush()

    def finish(self) -> None:
        self.write_flush()
        self.buffer.flush()


class PreparedReader(FaultTolerantJsonlReader):
    """The filter run's reader of the intermediate JSONL (a bad record there is a bug, and raises). After
    ``copy_survivors(exact, near, kept)`` (the next three steps of its pipeline) it takes their work on itself where
    it can (see the module docstring); without it, or for a shard without line indexes, it is the plain reader."""

    def __init__(self, data_folder: str, **kwargs):
        super().__init__(data_folder, glob_pattern="*.jsonl", compression=None, count_in_funnel=False, **kwargs)
        self._fast: tuple[DedupFilter, DedupFilter, RankFileJsonlWriter] | None = None

    def copy_survivors(self, exact: DedupFilter, near: DedupFilter, kept: RankFileJsonlWriter) -> PreparedReader:
        self._fast = (exact, near, kept)
        return self

    def _fast_path_applies(self, shard: list[str]) -> bool:
        if self._fast is None or self.compression is not None or self.limit != -1 or self.skip or self.shuffle_files:
            return False
        if self.adapter != self._default_adapter or self.default_metadata or self.text_key != "text":
            return False
        exact, near, kept = self._fast
        if (exact.kind, near.kind, exact.drop_ref, near.drop_ref) != ("exact", "near", False, True):
            return False
        if (
            getattr(kept.adapter, "__func__", None) is not document_dict
            or kept.expand_metadata
            or kept.max_file_size > 0
        ):
            return False
        return all(PREPARED_NAME.fullmatch(path) and self.data_folder.exists(index_name(path)) for path in shard)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        shard = self._files_of_shard(rank, world_size)
        if not self._fast_path_applies(shard):
            yield from super().run(None, rank, world_size)
            return
        exact, near, kept = self._fast
        tallies = _FunnelTally(exact), _FunnelTally(near)
        writer = _KeptTally(kept, rank)
        for path in shard:
            self.stat_update("input_files")
            logger.info(f"Reading input file {path} (survivors copied as bytes)")
            documents = self._copy_file(path, tallies, writer, rank)
            self.stat_update("documents", value=documents, unit="input_file")
        writer.finish()
        for tally in tallies:
            tally.finish()
        yield from ()

    def _lines(self, path: str) -> Iterator[bytes]:
        """The non-blank lines of an uncompressed file, without their line break (as ``read_file`` splits them)."""
        pending = b""
        with self.data_folder.open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                yield from (line for line in lines if line.strip())
        if pending.strip():
            yield pending

    def _copy_file(self, path: str, tallies: tuple[_FunnelTally, _FunnelTally], writer: _KeptTally, rank: int) -> int:
        exact_tally, near_tally = tallies
        exact, near = exact_tally.step, near_tally.step
        source_rank = int(PREPARED_NAME.fullmatch(path).group(1))
        exact_removed = exact.removals().get(source_rank, set())
        near_removed = near.removals().get(source_rank, set())
        with self.data_folder.open(index_name(path), "rb") as handle:
            index = np.load(handle).tolist()
        clock = time.perf_counter
        line_number = -1
        for line_number, raw in enumerate(self._lines(path)):
            if line_number >= len(index):
                raise RuntimeError(f"{path} has more lines than its index {index_name(path)}: not written together")
            chars, size, tokens = index[line_number]
            self.stat_update("doc_len", value=chars, unit="doc")
            if tokens:
                self.stat_update("doc_len_tokens", value=tokens, unit="doc")
            start = clock()
            suffix = b',"%s":[%d,%d]}}' % (DEDUP_REF_KEY.encode(), source_rank, line_number)
            own_reference = raw.endswith(suffix)
            if own_reference and line_number not in exact_removed and line_number not in near_removed:
                exact_tally.record(size, clock() - start, None, None, rank)
                start = clock()
                near_tally.record(size, clock() - start, None, None, rank)
                writer.add(raw[: -len(suffix)] + b"}}\n", None, chars, tokens)
                continue
            doc = self._line_document(raw, path, line_number + 1)  # a duplicate, or a line to decode: the checks
            if doc.metadata.get(EXCLUSION_KEY):
                raise RuntimeError(
                    f"unreadable record {doc.id} in an intermediate file: {doc.metadata[EXCLUSION_KEY]}"
                )
            reason = exact._safe_check(doc)
            exact_tally.record(size, clock() - start, reason, doc, rank)
            if reason is not None:
                continue
            start = clock()
            reason = near._safe_check(doc)
            near_tally.record(size, clock() - start, reason, doc, rank)
            if reason is None:
                writer.add(None, doc, len(doc.text), tokens)
        if line_number + 1 != len(index):
            raise RuntimeError(f"{path} has fewer lines than its index {index_name(path)}: not written together")
        return line_number + 1
