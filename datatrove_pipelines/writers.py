"""Where documents go: ``kept/`` and ``excluded/<step>/`` as gzipped JSONL, one file per task.

gzip at level 1 (~5x faster to write than level 9 on code, ~10% larger, read by any gzip reader); with ``isal``
(Intel ISA-L) the same format is written ~4x faster than with zlib."""

from __future__ import annotations

import os
import time
from gzip import GzipFile
from string import Template

import fsspec.compression
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.typeshelper import StatHints

from datatrove_pipelines.funnel import StatsBuffer

try:
    from isal.igzip import IGzipFile as _FastGzipFile
except ImportError:  # plain zlib
    _FastGzipFile = GzipFile
FAST_GZIP = "gzip_level1"


def register_fast_gzip() -> None:
    """Make ``FAST_GZIP`` a compression name fsspec (and so datatrove's writers) knows; idempotent.

    Called by every writer built here, so that the codec exists in whichever process (local, Slurm, Ray) writes."""
    if FAST_GZIP not in fsspec.compression.compr:
        fsspec.compression.register_compression(
            FAST_GZIP,
            lambda file, mode="rb", **kwargs: _FastGzipFile(fileobj=file, mode=mode, compresslevel=1),
            [],
        )


def template_identifiers(template: Template) -> set[str]:
    """The ``${name}`` / ``$name`` placeholders of a ``string.Template`` (``Template.get_identifiers`` is 3.11+)."""
    return {
        match.group("named") or match.group("braced")
        for match in template.pattern.finditer(template.template)
        if match.group("named") or match.group("braced")
    }


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
        register_fast_gzip()
        super().__init__(output_folder, output_filename=output_filename, **kwargs)
        extra = template_identifiers(self.output_filename) - {"rank"}
        if extra:
            raise ValueError(f"RankFileJsonlWriter names files by ${{rank}} only, not by {sorted(extra)}")
        self._filenames: dict[str, str] = {}

    def __setstate__(self, state: dict) -> None:  # unpickled in a Slurm/Ray worker: the codec must exist there too
        register_fast_gzip()
        self.__dict__.update(state)

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
