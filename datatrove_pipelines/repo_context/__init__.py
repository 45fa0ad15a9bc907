"""Repository-level documents for long-context pretraining (paper §4): one document per repository, files in
dependency order, cut into parts within the context budget.

    python -m datatrove_pipelines.repo_context --input DOCS --output DIR [--max-tokens 32768] \\
        [--tokenizer PATH_OR_ID] [--min-mean-quality 6.0] [--seed 0] [--tasks N]

Two datatrove runs: ``group`` (N tasks) checks each file and sends it to one of N buckets by a hash of
``metadata.repo``; ``assemble`` (one task per bucket) builds each repository's documents (with ``--tasks 1``, one run
that hands the checked files to the assembler in memory):

- Python, Java, C/C++ (and CUDA), JavaScript/TypeScript files are ordered by their import graph (see
  :mod:`.imports`, :mod:`.order`): what a file imports comes first; import cycles are broken deterministically and
  counted. Files of other languages follow in a random order seeded by ``--seed`` and the repository name.
- The document format (documented in docs/repo_context.md) is StarCoder2's, as plain text::

      <repo_name>owner/name
      <file_sep>path/a.py
      ...content of a.py...
      <file_sep>path/b.py
      ...

  (a newline is added after a file's content when it has none).
- A repository over ``--max-tokens`` is split into parts: independent subgraphs packed together, a subgraph larger
  than the budget cut along the order. Tokens are counted with ``--tokenizer`` (exact), else estimated as
  ceil(UTF-8 bytes / 3).
- ``metadata``: ``repo``, ``part``, ``parts``, ``files`` (paths in document order), ``languages``, ``token_count``,
  ``dependency_edges``, ``cycle_edges_broken``, ``ordering``, ``mean_quality``.

The funnel counts files. Excluded, with reasons, to ``excluded/<step>/``: ``repo_files`` — ``no_repo``, ``no_path``,
``empty_file``, ``binary``, ``invalid_unicode``; ``repo_context`` — ``file_over_budget``, ``duplicate_path``,
``low_mean_quality``, ``no_quality_score``. Files tree-sitter cannot fully parse are kept (their readable imports
still count) and noted as ``parse_errors``. ``stats.json`` adds ``repositories`` (documents, split repositories,
dependency edges, broken cycle edges).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import posixpath
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.funnel import FunnelFilter, FunnelMixin
from datatrove_pipelines.languages import resolve_language
from datatrove_pipelines.repo_context.imports import ImportExtractor, RepoIndex, grammar_of
from datatrove_pipelines.repo_context.order import dependency_order, split_parts
from datatrove_pipelines.stage import (
    StageCard,
    StageOutput,
    StageRun,
    add_stage_arguments,
    documents_reader,
    parse_stage_args,
    resolve_documents_dir,
    run_amended_stage,
    stage_config_fields,
    stage_main,
)
from datatrove_pipelines.writers import exclusion_writer, kept_writer

UPLOAD = ("kept/*", "stats.json", "README.md")  # what --push-to-hub uploads

REPO_NAME = "<repo_name>"
FILE_SEP = "<file_sep>"
BYTES_PER_TOKEN_ESTIMATE = 3
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0e-\x1f]")  # control characters other than \t \n \v \f \r
COUNTER_PREFIX = "repo_context/"


def repo_header(repo: str) -> str:
    return f"{REPO_NAME}{repo}\n"


def file_segment(path: str, content: str) -> str:
    return f"{FILE_SEP}{path}\n{content}" + ("" if content.endswith("\n") else "\n")


@dataclass
class RepoContextConfig:
    input: str
    output_dir: str
    max_tokens: int = 32768
    tokenizer: str | None = None
    min_mean_quality: float | None = None
    seed: int = 0
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    push_to_hub: str | None = None
    hub_private: bool = False

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError(f"--max-tokens must be at least 16 (got {self.max_tokens})")

    @property
    def groups_dir(self) -> str:
        return os.path.join(self.output_dir, "work", "groups")


class RepoFileFilter(FunnelFilter):
    """What cannot go into a repository document: no repository, no path, empty, binary, unencodable."""

    def __init__(self, exclusion_writer=None):
        super().__init__("repo_files", exclusion_writer)

    def check(self, doc: Document) -> str | None:
        repo = doc.metadata.get("repo")
        if not isinstance(repo, str) or not repo.strip():
            return "no_repo"
        path = doc.metadata.get("path")
        if not isinstance(path, str) or not path.strip():
            return "no_path"
        if not doc.text or not doc.text.strip():
            return "empty_file"
        try:
            doc.text.encode("utf-8")
        except UnicodeEncodeError:
            return "invalid_unicode"
        head = doc.text[:8192]
        if "\x00" in head or len(CONTROL_CHARACTERS.findall(head)) > 0.1 * len(head):
            return "binary"
        return None


def bucket_of(repo: str, buckets: int) -> int:
    return int.from_bytes(hashlib.sha1(repo.encode("utf-8", errors="surrogatepass")).digest()[:8], "big") % buckets


class RepoPartitioner(PipelineStep):
    """Writes each file to ``work/groups/<bucket>/<rank>.jsonl``, the bucket chosen by its repository, so that one
    assemble task sees whole repositories. A re-run of a task rewrites its files (nothing duplicated)."""

    type = "🫂 - GROUP"
    name = "repo_partition"

    def __init__(self, groups_dir: str, buckets: int):
        super().__init__()
        self.groups_dir = groups_dir
        self.buckets = buckets

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        handles: dict[int, object] = {}
        try:
            for doc in data or ():
                bucket = bucket_of(doc.metadata["repo"], self.buckets)
                if bucket not in handles:
                    folder = os.path.join(self.groups_dir, f"{bucket:05d}")
                    os.makedirs(folder, exist_ok=True)
                    handles[bucket] = open(os.path.join(folder, f"{rank:05d}.jsonl"), "w", encoding="utf-8")
                record = {"text": doc.text, "id": doc.id, "metadata": doc.metadata}
                handles[bucket].write(json.dumps(record, ensure_ascii=False) + "\n")
        finally:
            for handle in handles.values():
                handle.close()
        yield from ()


class TokenCounter:
    """Exact counts with a tokenizer (its ``tokenizers`` backend, batched), else the bytes/3 estimate."""

    def __init__(self, tokenizer: str | None):
        self.name = tokenizer
        self._backend = None

    def __getstate__(self):
        return {"name": self.name, "_backend": None}

    def counts(self, texts: list[str]) -> list[int]:
        if self.name is None:
            return [math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE) for text in texts]
        if self._backend is None:
            from datatrove.utils.tokenization import load_tokenizer

            from datatrove_pipelines.tokenizer import tokenizer_json

            self._backend = load_tokenizer(tokenizer_json(self.name))
        return [len(e.ids) for e in self._backend.encode_batch(texts, add_special_tokens=False)]


@dataclass
class RepoOutcome:
    """What assembling one repository decided; applied to the funnel only once the whole repository is done."""

    documents: list[Document] = field(default_factory=list)
    kept: list[Document] = field(default_factory=list)
    excluded: list[tuple[Document, str]] = field(default_factory=list)
    notes: list[tuple[str, Document]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


class RepoAssembler(FunnelMixin, PipelineStep):
    """Reads one bucket of files, groups them by repository and yields the repository documents."""

    type = "📚 - ASSEMBLE"
    name = "repo_context"
    funnel_step = "repo_context"

    def __init__(self, config: RepoContextConfig, exclusion_writer=None):
        super().__init__()
        self.config = config
        self.exclusion_writer = exclusion_writer
        self.extractor = ImportExtractor()
        self.counter = TokenCounter(config.tokenizer)

    def read_bucket(self, rank: int, data: DocumentsPipeline = None) -> dict[str, list[Document]]:
        """The files of this task's bucket by repository: from ``data`` when the stage runs as one task (no bucket
        files), else from ``work/groups/<rank>/``."""
        repos: dict[str, list[Document]] = {}
        if data is not None:
            for doc in data:
                repos.setdefault(doc.metadata["repo"], []).append(doc)
            return repos
        for path in sorted(glob.glob(os.path.join(self.config.groups_dir, f"{rank:05d}", "*.jsonl"))):
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    record = json.loads(line)
                    doc = Document(text=record["text"], id=record["id"], metadata=record["metadata"])
                    repos.setdefault(doc.metadata["repo"], []).append(doc)
        return repos

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer = self.exclusion_writer
        if writer is not None:
            writer.__enter__()
        try:
            for repo, files in sorted(self.read_bucket(rank, data).items()):
                for doc in files:
                    self.funnel_in(doc)
                outcome = RepoOutcome()
                try:
                    self.assemble(repo, files, outcome)
                except Exception as error:  # a repository that breaks the assembler is excluded, not the task
                    outcome = RepoOutcome(excluded=[(doc, f"error:{type(error).__name__}") for doc in files])
                for doc, reason in outcome.excluded:
                    self.funnel_exclude(doc, reason, writer, rank)
                for doc in outcome.kept:
                    self.funnel_keep(doc)
                for label, doc in outcome.notes:
                    self.funnel_note(label, doc)
                for key, value in outcome.counters.items():
                    self.stat_update(f"{COUNTER_PREFIX}{key}", value=value)
                yield from outcome.documents
        finally:
            if writer is not None:
                writer.__exit__(None, None, None)

    def assemble(self, repo: str, files: list[Document], outcome: RepoOutcome) -> None:
        """Decide one repository: its documents, kept and excluded files, notes and counters go to ``outcome``."""
        config = self.config
        files = sorted(files, key=lambda doc: (doc.metadata["path"], str(doc.id)))
        unique: dict[str, Document] = {}
        for doc in files:
            path = posixpath.normpath(doc.metadata["path"].strip().replace("\\", "/")).lstrip("/")
            if path in unique:
                outcome.excluded.append((doc, "duplicate_path"))
            else:
                unique[path] = doc
        scores = [doc.metadata.get("quality_score") for doc in unique.values()]
        scores = [float(s) for s in scores if isinstance(s, (int, float)) and not isinstance(s, bool)]
        mean_quality = sum(scores) / len(scores) if scores else None
        if config.min_mean_quality is not None:
            if mean_quality is None:
                outcome.excluded += [(doc, "no_quality_score") for doc in unique.values()]
                return
            if mean_quality < config.min_mean_quality:
                outcome.excluded += [(doc, "low_mean_quality") for doc in unique.values()]
                return
        header_cost = self.counter.counts([repo_header(repo)])[0]
        paths = list(unique)
        costs = dict(zip(paths, self.counter.counts([file_segment(p, unique[p].text) for p in paths]), strict=True))
        budget = config.max_tokens - header_cost
        for path in [p for p in paths if costs[p] > budget]:
            outcome.excluded.append((unique.pop(path), "file_over_budget"))
        if not unique:
            return
        order, edges, broken = self.order_files(repo, unique, outcome)
        outcome.counters["cycle_edges_broken"] = broken
        outcome.counters["dependency_edges"] = sum(len(t) for t in edges.values())
        pending = split_parts(order, edges, costs, budget)
        parts: list[tuple[list[str], str, int]] = []
        while pending:
            part = pending.pop(0)
            text = repo_header(repo) + "".join(file_segment(p, unique[p].text) for p in part)
            tokens = self.counter.counts([text])[0] if config.tokenizer else header_cost + sum(costs[p] for p in part)
            if tokens <= config.max_tokens:
                parts.append((part, text, tokens))
            elif len(part) > 1:  # tokens merged across file boundaries: the last file moves to a part of its own
                pending[:0] = [part[:-1], part[-1:]]
            else:
                outcome.excluded.append((unique.pop(part[0]), "file_over_budget"))
        if not parts:
            return
        languages = {p: self.language(unique[p]) for p in unique}
        graph = {p for p in unique if grammar_of(languages[p], p)}
        ordering = "dependency" if len(graph) == len(unique) else "random" if not graph else "mixed"
        if len(parts) > 1:
            outcome.counters["split_repositories"] = 1
        for index, (part, text, tokens) in enumerate(parts):
            members = set(part)
            for path in part:
                outcome.kept.append(unique[path])
            outcome.counters["documents"] = outcome.counters.get("documents", 0) + 1
            outcome.documents.append(
                Document(
                    text=text,
                    id=f"{repo}#{index}",
                    metadata={
                        "repo": repo,
                        "part": index,
                        "parts": len(parts),
                        "files": part,
                        "languages": sorted({languages[p] or "unknown" for p in part}),
                        "token_count": tokens,
                        "dependency_edges": sum(len(edges.get(p, set()) & members) for p in part),
                        "cycle_edges_broken": broken,
                        "ordering": ordering,
                        "mean_quality": None if mean_quality is None else round(mean_quality, 4),
                    },
                )
            )

    @staticmethod
    def language(doc: Document) -> str | None:
        return resolve_language(doc.metadata.get("path"), doc.metadata.get("language"))

    def order_files(
        self, repo: str, files: dict[str, Document], outcome: RepoOutcome | None = None
    ) -> tuple[list[str], dict[str, set[str]], int]:
        """(paths in document order, import edges, broken cycle edges)."""
        index = RepoIndex(files)
        edges: dict[str, set[str]] = {}
        graph_paths, other_paths = [], []
        for path, doc in files.items():
            grammar = grammar_of(self.language(doc), path)
            if grammar is None:
                other_paths.append(path)
                continue
            graph_paths.append(path)
            specs, has_error = self.extractor.extract(grammar, doc.text.encode("utf-8"))
            if has_error and outcome is not None:
                outcome.notes.append(("parse_errors", doc))
            targets: set[str] = set()
            for spec in specs:
                targets |= index.resolve(path, spec)
            edges[path] = targets
        order, broken = dependency_order(graph_paths, edges)
        other_paths.sort()
        random.Random(f"{self.config.seed}\x00{repo}").shuffle(other_paths)
        return order + other_paths, edges, broken


def collect_counters(logging_dir: str) -> dict[str, int]:
    """The ``repo_context/*`` counters of every task of the assemble run."""
    totals: Counter = Counter()
    for path in glob.glob(os.path.join(logging_dir, "stats", "*.json")):
        with open(path) as handle:
            for step in json.load(handle):
                for key, value in step.get("stats", {}).items():
                    if key.startswith(COUNTER_PREFIX):
                        total = value.get("total", 0) if isinstance(value, dict) else value
                        totals[key[len(COUNTER_PREFIX) :]] += int(total)
    return dict(totals)


def stage_runs(config: RepoContextConfig) -> list[StageRun]:
    """``group`` then ``assemble``; with one task a single run, the files going to the assembler in memory."""
    buckets = config.executor.tasks
    checks = [
        documents_reader(config.input),
        RepoFileFilter(exclusion_writer(config.output_dir, "repo_files")),
    ]
    assemble = [
        RepoAssembler(config, exclusion_writer(config.output_dir, "repo_context")),
        kept_writer(config.output_dir),
    ]
    if buckets == 1:
        return [StageRun("assemble", checks + assemble, 1)]
    group = [*checks, RepoPartitioner(config.groups_dir, buckets)]
    return [StageRun("group", group), StageRun("assemble", assemble, buckets)]


CARD_DESCRIPTION = """Repository-level documents for long-context pretraining, as in Seed-Coder (paper §4): the files of
each repository concatenated into one document (`<repo_name>REPO` then `<file_sep>PATH` + content per file), Python,
Java, C/C++ and JavaScript/TypeScript files in dependency order (tree-sitter import resolution, cycles broken
deterministically), other files in seeded random order; repositories over the token budget split into independent
parts. `metadata.files` lists the paths in document order."""


def run_repo_context(config: RepoContextConfig, command: str | None = None) -> dict | None:
    resolve_documents_dir(config.input)
    settings = {k: v for k, v in asdict(config).items() if k not in ("input", "output_dir", "executor", "push_to_hub")}
    settings["format"] = {"repo_header": repo_header("REPO"), "file_header": f"{FILE_SEP}PATH\\n"}
    card = StageCard("Repository-level code documents", CARD_DESCRIPTION, settings)

    def add_repositories(stats: dict, output: StageOutput) -> None:
        stats["repositories"] = collect_counters(output.logging_dir("assemble"))

    return run_amended_stage(stage_runs(config), config, card, command, "repo_context", add_repositories, UPLOAD)


def parse_args(argv: list[str] | None = None) -> RepoContextConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(parser)
    parser.add_argument(
        "--max-tokens", type=int, default=RepoContextConfig.max_tokens, help="token budget of one document"
    )
    parser.add_argument("--tokenizer", default=None, help="Hub id or local path (default: estimate bytes/3)")
    parser.add_argument("--min-mean-quality", type=float, default=None, help="drop repos with a lower mean score")
    parser.add_argument(
        "--seed", type=int, default=RepoContextConfig.seed, help="seed of the random order of other languages"
    )
    args = parse_stage_args(parser, argv)
    try:
        return RepoContextConfig(
            input=args.input,
            output_dir=args.output,
            max_tokens=args.max_tokens,
            tokenizer=args.tokenizer,
            min_mean_quality=args.min_mean_quality,
            seed=args.seed,
            **stage_config_fields(args),
        )
    except ValueError as error:
        parser.error(str(error))


def parse_checked_args(argv: list[str] | None = None) -> RepoContextConfig:
    """:func:`parse_args`, then a clear error for a ``--tokenizer`` that cannot be loaded, before any run."""
    config = parse_args(argv)
    if config.tokenizer:
        from datatrove_pipelines.tokenizer import load_tokenizer

        try:
            load_tokenizer(config.tokenizer)
        except (OSError, ValueError) as error:
            raise SystemExit(f"error: cannot load tokenizer {config.tokenizer}: {error}") from None
    return config


def main(argv: list[str] | None = None) -> None:
    stats = stage_main("datatrove_pipelines.repo_context", argv, parse_checked_args, run_repo_context)
    if stats is not None:
        print("repositories:", json.dumps(stats["repositories"]))


if __name__ == "__main__":
    main()
