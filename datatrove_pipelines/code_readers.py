"""Readers that turn code sources into documents ``{"text", "id": "<repo>/<path>", "metadata": {...}}``.

Three sources: local source trees (each immediate sub-directory of an input directory is one repository), JSONL or
Parquet files in the-stack-v2 style, and Hub datasets by id (streamed). Readers never drop anything: a file that
cannot be read, is binary or is not UTF-8 still becomes a document, flagged in ``metadata["read_issue"]``, so the
guard step can exclude it with a reason and the funnel counts it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader

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
            for rel, issue in _walk(root_path / repo, follow_symlinks):
                yield repo, rel, str(root_path / repo / rel), issue


def _walk(repo_dir: Path, follow_symlinks: bool) -> Iterator[tuple[str, str | None]]:
    """Depth-first, sorted walk that detects directory-symlink loops by the real paths on the current branch."""

    def visit(directory: Path, relative: str, ancestors: frozenset[str]) -> Iterator[tuple[str, str | None]]:
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
                yield from visit(Path(entry.path), rel, ancestors | {real})
            elif entry.is_symlink() and not follow_symlinks:
                continue
            else:
                yield rel, None

    yield from visit(repo_dir, "", frozenset({os.path.realpath(repo_dir)}))


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
            raw = handle.read(max_size_bytes + 1)
    except OSError as error:
        return None, size, "symlink_loop" if error.errno == errno.ELOOP else "unreadable"
    if len(raw) > max_size_bytes:  # grew since stat
        return None, len(raw), "too_large"
    return raw, len(raw), None


class SourceTreeReader(PipelineStep):
    """Reads every file of the repositories under ``input_dir``; file i goes to task i mod the number of tasks."""

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
        for index, (repo, rel, file_path, issue) in enumerate(
            list_source_files(self.input_dir, self.config.follow_symlinks)
        ):
            if index % world_size != rank:
                continue
            with self.track_time():
                raw, size = None, 0
                if issue is None:
                    raw, size, issue = read_source_file(file_path, self.config.max_size_bytes)
                document = make_document(repo, rel, raw, size, issue)
            self.stat_update("documents")
            yield document


# --------------------------------------------------------------------------------------------------------------------
# JSONL / Parquet / Hub datasets (the-stack-v2 style records)
# --------------------------------------------------------------------------------------------------------------------


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
    else:
        raw = str(content).encode("utf-8", errors="surrogatepass")
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


class _KeepEmptyDocuments:
    """datatrove's readers skip records whose text is empty; ours must count them (the guard excludes them)."""

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str):
        parsed = self.adapter(data, source_file, id_in_file)
        document = Document(text=parsed.get("text", ""), id=parsed["id"], metadata=parsed.get("metadata", {}))
        if self.default_metadata:
            document.metadata = self.default_metadata | document.metadata
        return document


class StackJsonlReader(_KeepEmptyDocuments, JsonlReader):
    name = "🐿 the-stack jsonl"

    def __init__(self, data_folder: str, glob_pattern: str | None = None, config: ReaderConfig | None = None):
        super().__init__(data_folder, glob_pattern=glob_pattern, adapter=stack_record_adapter)
        self.code_config = config or ReaderConfig()


class StackParquetReader(_KeepEmptyDocuments, ParquetReader):
    name = "📒 the-stack parquet"

    def __init__(self, data_folder: str, glob_pattern: str | None = None, config: ReaderConfig | None = None):
        super().__init__(data_folder, glob_pattern=glob_pattern, adapter=stack_record_adapter)
        self.code_config = config or ReaderConfig()


class StackHubReader(_KeepEmptyDocuments, HuggingFaceDatasetReader):
    name = "🤗 the-stack hub"

    def __init__(self, dataset: str, config: ReaderConfig | None = None):
        code_config = config or ReaderConfig()
        super().__init__(
            dataset, dataset_options={"split": code_config.hub_split}, streaming=True, adapter=stack_record_adapter
        )
        self.code_config = code_config


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
