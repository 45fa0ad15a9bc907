"""Readers that turn code sources into documents ``{"text", "id": "<repo>/<path>", "metadata": {...}}``.

Three sources: local source trees (each immediate sub-directory of an input directory is one repository), JSONL or
Parquet files in the-stack-v2 style, and Hub datasets by id (streamed). Readers never drop anything: a file that
cannot be read, is binary or is not UTF-8 still becomes a document, flagged in ``metadata["read_issue"]``, so the
guard step can exclude it with a reason and the funnel counts it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import random
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_shard_from_paths_file
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelMixin, StatsBuffer, document_bytes
from datatrove_pipelines.languages import resolve_language

READ_ISSUE_KEY = "read_issue"
BINARY_SNIFF_BYTES = 8192
# Version-control metadata is not repository content; everything else is read and judged by the guard.
SKIPPED_DIRECTORIES = frozenset({".git", ".hg", ".svn"})
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass
class ReaderConfig:
    """What the readers keep of each file."""

    # Files larger than this are not read into memory; the guard excludes them as too_large (it uses the same limit).
    max_size_bytes: int = 1_000_000
    follow_symlinks: bool = True  # symlinked files and directories are read; loops are reported, not followed
    text_keys: tuple[str, ...] = ("content", "text", "code")  # the-stack-v2 style columns, first present wins
    repo_keys: tuple[str, ...] = ("repo_name", "repo", "max_stars_repo_name", "repository_name")
    path_keys: tuple[str, ...] = ("path", "max_stars_repo_path", "file_path", "filename")
    language_keys: tuple[str, ...] = ("language", "lang")
    hub_split: str = "train"


def make_document(
    repo: str,
    path: str,
    raw: bytes | None,
    size: int,
    issue: str | None = None,
    declared_language: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Document:
    """One document with the pipeline's metadata; undecodable or unread content is flagged, never dropped."""
    text = ""
    if raw is not None and issue is None:
        if b"\x00" in raw[:BINARY_SNIFF_BYTES]:
            issue = "binary"
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                issue = "invalid_utf8"
                text = raw.decode("utf-8", errors="replace")  # kept for inspection in excluded/guard/
    metadata: dict[str, Any] = dict(extra or {})
    metadata.update(
        repo=repo,
        path=path,
        language=resolve_language(path, declared_language),
        size=size,
        sha256=hashlib.sha256(raw).hexdigest() if raw is not None else None,
    )
    if declared_language:
        metadata["declared_language"] = declared_language
    if issue:
        metadata[READ_ISSUE_KEY] = issue
    return Document(text=text, id=f"{repo}/{path}", metadata=metadata)


# --------------------------------------------------------------------------------------------------------------------
# Local source trees
# --------------------------------------------------------------------------------------------------------------------


def list_source_files(root: str, follow_symlinks: bool = True) -> Iterator[tuple[str, str, str, str | None]]:
    """(repo, path inside the repo, file path, issue) for every file under ``root``, in a stable order.

    Each immediate sub-directory of ``root`` is a repository; files directly in ``root`` belong to a repository named
    after ``root`` itself. A directory symlink that leads back into a directory being walked is a loop: it is
    reported once with issue ``"symlink_loop"`` instead of being followed.
    """
    root_path = Path(root)
    entries = sorted(os.listdir(root_path))
    for name in entries:
        if not (root_path / name).is_dir():
            yield root_path.resolve().name, name, str(root_path / name), None
    for repo in entries:
        if (root_path / repo).is_dir() and repo not in SKIPPED_DIRECTORIES:
            # str(root_path / repo / rel) with one Path per repository, not per file (rel: "/"-joined names)
            repo_dir = str(root_path / repo)
            for rel, issue in _walk(repo_dir, follow_symlinks):
                yield repo, rel, f"{repo_dir}{os.sep}{rel}", issue


def _walk(repo_dir: str | Path, follow_symlinks: bool) -> Iterator[tuple[str, str | None]]:
    """Depth-first, sorted walk that detects directory-symlink loops by the real paths on the current branch."""

    def visit(directory: str, relative: str, ancestors: frozenset[str]) -> Iterator[tuple[str, str | None]]:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            yield relative or ".", "unreadable"
            return
        for entry in entries:
            rel = f"{relative}/{entry.name}" if relative else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name in SKIPPED_DIRECTORIES:
                    continue
                real = os.path.realpath(entry.path)
                if real in ancestors:
                    yield rel, "symlink_loop"
                    continue
                yield from visit(entry.path, rel, ancestors | {real})
            elif entry.is_symlink() and not follow_symlinks:
                continue
            else:
                yield rel, None

    yield from visit(os.fspath(repo_dir), "", frozenset({os.path.realpath(repo_dir)}))


def read_source_file(file_path: str, max_size_bytes: int) -> tuple[bytes | None, int, str | None]:
    """(content, size, issue) of one file; content is None when it cannot or should not be read."""
    try:
        size = os.stat(file_path).st_size
    except OSError as error:
        return None, 0, "symlink_loop" if error.errno == errno.ELOOP else "unreadable"
    if size > max_size_bytes:
        return None, size, "too_large"
    try:
        with open(file_path, "rb") as handle:
            # the size stat gave (+1 to see growth), not max_size_bytes + 1 at once: a read allocates what it asks
            # for, and 1 MB per file costs twice the read of a small one; the same bytes as one read up to the limit
            raw = handle.read(size + 1)
            if len(raw) > size:  # grew since stat (or a file whose size stat does not give): on, up to the limit
                raw += handle.read(max_size_bytes + 1 - len(raw))
    except OSError as error:
        return None, size, "symlink_loop" if error.errno == errno.ELOOP else "unreadable"
    if len(raw) > max_size_bytes:  # grew since stat
        return None, len(raw), "too_large"
    return raw, len(raw), None


class SourceTreeReader(FunnelMixin, PipelineStep):
    """Reads every file of the repositories under ``input_dir``; file i goes to task i mod the number of tasks.
    Every file is one ``in`` and one ``kept`` of the ``read`` funnel step (problems are flagged for the guard)."""

    funnel_step = "read"

    type = "📖 - READER"
    name = "🗂 source tree"

    def __init__(self, input_dir: str, config: ReaderConfig | None = None):
        super().__init__()
        if not os.path.isdir(input_dir):
            raise NotADirectoryError(f"source tree input {input_dir!r} is not a directory")
        self.input_dir = input_dir
        self.config = config or ReaderConfig()

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        buffer = self._stats_buffer = StatsBuffer(self)
        # per document: one "documents" stat, one ``in`` and one ``kept`` of the funnel (every file is a document),
        # the read time; the sizes wait in a list and go into the buffer as a chunk before each flush
        docs_in, bytes_in = self._keys("in")
        docs_kept, bytes_kept = self._keys("kept")
        sizes: list[int] = []
        clock = time.perf_counter

        def flush() -> None:
            if sizes:
                buffer.count("documents", len(sizes))
                for docs_key, bytes_key in ((docs_in, bytes_in), (docs_kept, bytes_kept)):
                    buffer.count(docs_key, len(sizes))
                    buffer.extend(bytes_key, sizes)
                sizes.clear()
            buffer.flush()

        try:
            for index, (repo, rel, file_path, issue) in enumerate(
                list_source_files(self.input_dir, self.config.follow_symlinks)
            ):
                if index % world_size != rank:
                    continue
                start = clock()
                raw, size = None, 0
                if issue is None:
                    raw, size, issue = read_source_file(file_path, self.config.max_size_bytes)
                document = make_document(repo, rel, raw, size, issue)
                buffer.time(clock() - start)
                sizes.append(document_bytes(document))
                if index % StatsBuffer.FLUSH_EVERY == 0:
                    flush()
                yield document
        finally:
            flush()
            self._stats_buffer = None


# --------------------------------------------------------------------------------------------------------------------
# JSONL / Parquet / Hub datasets (the-stack-v2 style records)
# --------------------------------------------------------------------------------------------------------------------


READ_STEP = "read"  # the funnel step of every reader: each record read is counted here, kept or excluded
EXCLUSION_KEY = "_read_exclusion"  # set by read_file on records that cannot become documents; popped by run
MAX_EXCLUDED_TEXT_BYTES = 65_536  # of an unreadable record's raw bytes kept in excluded/read/ for inspection


class RecordError(ValueError):
    """A record that cannot become a document; ``reason`` is its exclusion reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def excluded_record(raw: bytes, reason: str, source: str, line: int, detail: str = "") -> Document:
    """The document standing for an unreadable record (``source`` file, 1-based ``line`` or row): its raw bytes
    (decoded with replacement, capped) so that ``excluded/read/`` shows what was there."""
    metadata: dict[str, Any] = {EXCLUSION_KEY: reason, "source_file": source, "line": line, "size": len(raw)}
    if detail:
        metadata["read_error"] = detail[:300]
    text = raw[:MAX_EXCLUDED_TEXT_BYTES].decode("utf-8", errors="replace")
    return Document(text=text, id=f"{source}:{line}", metadata=metadata)


class FaultTolerantReaderMixin(FunnelMixin):
    """What the JSONL and Parquet readers share: every record is one ``in`` of the ``read`` funnel step, then kept
    or excluded with a reason (``invalid_utf8``, ``malformed_json``, ``not_an_object``, ``truncated_archive``,
    ``unreadable_archive``, ``unreadable_parquet``, ``missing_text``, ``empty_text``, ``non_string_content``) and
    its file and line; the records around a bad one are read as usual. Unlike datatrove's readers, no record is
    skipped with a warning, a file that ends early is not a traceback, and an empty folder is an empty shard.

    ``count_in_funnel=False`` is for a stage's own intermediate files (already counted): there a bad record is a
    bug and raises. ``exclusion_writer`` gets the excluded records (``run_stage`` gives one to readers without it).
    """

    funnel_step = READ_STEP
    keep_empty_text = False  # True: a record with empty text is a document (a later step excludes it)
    count_in_funnel = True
    exclusion_writer: DiskWriter | None = None

    def _init_fault_tolerance(self, exclusion_writer: DiskWriter | None, count_in_funnel: bool) -> None:
        self.exclusion_writer = exclusion_writer
        self.count_in_funnel = count_in_funnel

    def record_document(self, data: Any, source: str, index: int, raw: bytes | None = None) -> Document:
        """The document of one parsed record, or the excluded record standing for it."""
        try:
            if not isinstance(data, dict):
                raise RecordError("not_an_object", type(data).__name__)
            if self.adapter == self._default_adapter:
                text = data.get(self.text_key)
                if text is None:
                    raise RecordError("missing_text", f"no {self.text_key!r} key")
                if not isinstance(text, str):
                    raise RecordError("non_string_content", f"{self.text_key!r} is a {type(text).__name__}")
            parsed = self.adapter(data, source, index)
            text = parsed.get("text")
            if not isinstance(text, str):
                raise RecordError("non_string_content", f"text is a {type(text).__name__}")
            if not text and not self.keep_empty_text:
                raise RecordError("empty_text")
            metadata = parsed.get("metadata") or {}
            if not isinstance(metadata, dict):
                metadata = {"metadata": metadata}
            document = Document(text=text, id=str(parsed.get("id") or f"{source}/{index}"), metadata=metadata)
        except RecordError as error:
            if raw is None:
                raw = orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
            return excluded_record(raw, error.reason, source, index + 1, str(error))
        if self.default_metadata:
            document.metadata = self.default_metadata | document.metadata
        return document

    def _files_of_shard(self, rank: int, world_size: int) -> list[str]:
        if self.paths_file:
            return list(get_shard_from_paths_file(self.paths_file, rank, world_size))
        shard = self.data_folder.get_shard(rank, world_size, recursive=self.recursive, glob_pattern=self.glob_pattern)
        return shard or []  # None: no files at all (e.g. every document of the stage was excluded before)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        shard = self._files_of_shard(rank, world_size)
        if self.shuffle_files:
            random.shuffle(shard)
        counting = self.count_in_funnel
        buffer = self._stats_buffer = StatsBuffer(self) if counting else None
        writer = self.exclusion_writer
        try:
            with writer if writer is not None else contextlib.nullcontext():
                for count, document in enumerate(self.read_files_shard(shard), start=1):
                    reason = document.metadata.pop(EXCLUSION_KEY, None)
                    if not counting:
                        if reason:
                            raise RuntimeError(f"unreadable record {document.id} in an intermediate file: {reason}")
                    else:
                        if count % StatsBuffer.FLUSH_EVERY == 0:
                            buffer.flush()
                        self.funnel_in(document)
                        if reason:
                            self.funnel_exclude(document, reason, writer, rank)
                            continue
                        self.funnel_keep(document)
                    self.update_doc_stats(document)
                    yield document
        finally:
            if buffer is not None:
                buffer.flush()
                self._stats_buffer = None


def _gunzip_chunks(handle, size: int = 1 << 20) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (several members allowed), up to the last byte that can be recovered:
    unlike GzipFile, whose buffered reads drop what was decompressed just before a cut, everything before it comes
    out; then EOFError if the stream was cut, zlib.error if it is corrupt."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False
    while data := handle.read(size):
        while data:
            started = True
            yield decompressor.decompress(data)
            if not decompressor.eof:
                break
            data = decompressor.unused_data  # the next gzip member, if any
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            started = bool(data)
    if started and not decompressor.eof:
        yield decompressor.flush()
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


class FaultTolerantJsonlReader(FaultTolerantReaderMixin, JsonlReader):
    """datatrove's JsonlReader that never loses a record (see :class:`FaultTolerantReaderMixin`): the file is read as
    bytes, line by line; a line that is not UTF-8, not JSON or not an object is excluded with its line number, and
    a compressed file that ends early (or is corrupt) keeps every record before the cut and adds one excluded record
    ``truncated_archive`` (or ``unreadable_archive``) at the line where it stopped. Blank lines are not records."""

    name = "🐿 Jsonl (fault-tolerant)"

    def __init__(
        self,
        data_folder,
        *args,
        exclusion_writer: DiskWriter | None = None,
        count_in_funnel: bool = True,
        add_file_path: bool = False,  # a machine path of the input in every record's metadata: off by default
        **kwargs,
    ):
        super().__init__(data_folder, *args, add_file_path=add_file_path, **kwargs)
        self._init_fault_tolerance(exclusion_writer, count_in_funnel)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        line = 0
        pending = b""
        gzipped = filepath.endswith(".gz") and self.compression in ("infer", "gzip")
        try:
            with self.data_folder.open(filepath, "rb", compression=None if gzipped else self.compression) as handle:
                for chunk in _gunzip_chunks(handle) if gzipped else iter(lambda: handle.read(1 << 20), b""):
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    for raw in lines:
                        line += 1
                        if raw.strip():
                            yield self._line_document(raw, filepath, line)
        except Exception as error:  # gzip/zstd: EOFError at a cut, BadGzipFile / zlib.error on garbage
            reason = "truncated_archive" if isinstance(error, EOFError) else "unreadable_archive"
            yield excluded_record(pending, reason, filepath, line + 1, f"{type(error).__name__}: {error}")
            return
        if pending.strip():
            yield self._line_document(pending, filepath, line + 1)

    def _line_document(self, raw: bytes, source: str, line: int) -> Document:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as decode_error:
                return excluded_record(raw, "invalid_utf8", source, line, str(decode_error))
            return excluded_record(raw, "malformed_json", source, line, str(error))
        return self.record_document(data, source, line - 1, raw)


class FaultTolerantParquetReader(FaultTolerantReaderMixin, ParquetReader):
    """datatrove's ParquetReader that never loses a record: a file pyarrow cannot open is one excluded record
    ``unreadable_parquet``; one that breaks while read keeps the rows before and adds ``unreadable_parquet`` at the
    row where it stopped; rows are checked as JSONL records are (row numbers are 1-based)."""

    name = "📒 Parquet (fault-tolerant)"

    def __init__(
        self, data_folder, *args, exclusion_writer: DiskWriter | None = None, count_in_funnel: bool = True, **kwargs
    ):
        super().__init__(data_folder, *args, **kwargs)
        self._init_fault_tolerance(exclusion_writer, count_in_funnel)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import pyarrow.parquet as pq

        row = 0
        try:
            with self.data_folder.open(filepath, "rb") as handle, pq.ParquetFile(handle) as parquet:
                for batch in parquet.iter_batches(batch_size=self.batch_size):
                    records = batch.to_pylist()
                    for record in records:
                        yield self.record_document(record, filepath, row)
                        row += 1
        except Exception as error:  # not a parquet file, cut, or a corrupt page
            yield excluded_record(b"", "unreadable_parquet", filepath, row + 1, f"{type(error).__name__}: {error}")


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = record.get(key)
        if value is not None and value != "":
            return value
    return None


def stack_record_adapter(self, data: dict, path: str, id_in_file: int | str) -> dict:
    """datatrove reader adapter: a the-stack-v2 style record -> the pipeline's document dict (as make_document)."""
    config: ReaderConfig = self.code_config
    content = _first(data, config.text_keys)
    repo = str(_first(data, config.repo_keys) or Path(path).stem)
    file_path = str(_first(data, config.path_keys) or f"{id_in_file}")
    declared = _first(data, config.language_keys)
    if isinstance(content, bytes):
        raw = content
    elif content is None:
        raw = b""
    elif isinstance(content, str):
        raw = content.encode("utf-8", errors="surrogatepass")
    else:  # a number, list or object is not a file's content: excluded, never stringified
        raise RecordError("non_string_content", f"content is a {type(content).__name__}")
    issue = "too_large" if len(raw) > config.max_size_bytes else None
    kept_columns = {key: value for key, value in data.items() if key not in config.text_keys and _json_safe(value)}
    document = make_document(
        repo,
        file_path,
        None if issue else raw,
        len(raw),
        issue,
        declared_language=str(declared) if declared else None,
        extra={"source": kept_columns} if kept_columns else None,
    )
    if issue:
        document.metadata["sha256"] = hashlib.sha256(raw).hexdigest()
    return {"text": document.text, "id": document.id, "metadata": document.metadata}


def _json_safe(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


class StackJsonlReader(FaultTolerantJsonlReader):
    """the-stack-v2 style JSONL records (``content``/``text``/``code`` + repo/path columns): empty contents are kept
    as documents (the guard excludes them as ``empty``)."""

    name = "🐿 the-stack jsonl"
    keep_empty_text = True

    def __init__(self, data_folder: str, glob_pattern: str | None = None, config: ReaderConfig | None = None):
        super().__init__(data_folder, glob_pattern=glob_pattern, adapter=stack_record_adapter)
        self.code_config = config or ReaderConfig()


class StackParquetReader(FaultTolerantParquetReader):
    name = "📒 the-stack parquet"
    keep_empty_text = True

    def __init__(self, data_folder: str, glob_pattern: str | None = None, config: ReaderConfig | None = None):
        super().__init__(data_folder, glob_pattern=glob_pattern, adapter=stack_record_adapter)
        self.code_config = config or ReaderConfig()


class StackHubReader(HuggingFaceDatasetReader):
    name = "🤗 the-stack hub"

    def __init__(self, dataset: str, config: ReaderConfig | None = None):
        code_config = config or ReaderConfig()
        super().__init__(
            dataset, dataset_options={"split": code_config.hub_split}, streaming=True, adapter=stack_record_adapter
        )
        self.code_config = code_config

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str):
        """As datatrove's, but a record with empty content is a document (the guard excludes it as ``empty``)."""
        try:
            parsed = self.adapter(data, source_file, id_in_file)
        except RecordError as error:  # counted by the guard as unreadable
            parsed = {"text": "", "id": f"{source_file}/{id_in_file}", "metadata": {READ_ISSUE_KEY: error.reason}}
        document = Document(text=parsed.get("text", ""), id=parsed["id"], metadata=parsed.get("metadata", {}))
        if self.default_metadata:
            document.metadata = self.default_metadata | document.metadata
        return document


def reader_for_input(spec: str, config: ReaderConfig | None = None) -> PipelineStep:
    """The reader for one ``--input``: a directory of repositories, a .jsonl[.gz] / .parquet file or a directory of
    them (``DIR/*.jsonl.gz``), or a Hub dataset id (``org/name``, streamed)."""
    config = config or ReaderConfig()
    path = Path(spec)
    if path.is_file():
        name = path.name
        if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".ndjson")):
            return StackJsonlReader(str(path.parent), glob_pattern=name, config=config)
        if name.endswith(".parquet"):
            return StackParquetReader(str(path.parent), glob_pattern=name, config=config)
        raise ValueError(f"input file {spec!r}: expected .jsonl[.gz] or .parquet (or a directory of repositories)")
    if path.is_dir():
        return SourceTreeReader(str(path), config)
    if "*" in spec:
        folder, pattern = os.path.split(spec)
        if pattern.endswith(".parquet"):
            return StackParquetReader(folder, glob_pattern=pattern, config=config)
        return StackJsonlReader(folder, glob_pattern=pattern, config=config)
    if HUB_ID.match(spec):
        return StackHubReader(spec, config)
    raise FileNotFoundError(f"input {spec!r} is neither an existing file/directory nor a Hub dataset id (org/name)")
