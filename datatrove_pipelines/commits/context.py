"""The context of a commit at its parent: README, directory tree, top-5 related files; then the serialized example.

One ``RepositoryContext`` per repository holds a ``git cat-file --batch`` process, the memoised trees, the token
counts of every blob it has read (by blob id) and the current ``SnapshotIndex``; commits of a repository arrive
together and in history order, so consecutive parent snapshots share almost everything and the index is rebuilt
only when more than ``rebuild_fraction`` of the files changed since it was built.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from dataclasses import dataclass, field

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.commits.git import ObjectMissing, ObjectReader
from datatrove_pipelines.commits.related import SnapshotIndex, path_tokens, query_tokens, token_counts
from datatrove_pipelines.commits.serialize import BudgetConfig, CommitExample, render_tree, serialize, target_diff
from datatrove_pipelines.funnel import FunnelMixin

README_PREFERENCE = ("readme.md", "readme.rst", "readme.txt", "readme", "readme.markdown", "readme.adoc")
REGULAR_FILE_MODES = ("100644", "100755")


@dataclass
class ContextConfig:
    related_files: int = 5
    index_max_bytes: int = 200_000  # files larger than this are not indexed (nor shown as related)
    rebuild_fraction: float = 0.25  # rebuild the index when this share of the files changed since it was built
    rebuild_min_files: int = 16
    k1: float = 1.5
    b: float = 0.75
    budget: BudgetConfig = field(default_factory=BudgetConfig)


class RepositoryContext:
    """What is kept while the commits of one repository go by."""

    MAX_CACHED_BLOBS = 50_000

    def __init__(self, repo_path: str, hash_bytes: int, config: ContextConfig):
        self.repo_path = repo_path
        self.config = config
        self.objects = ObjectReader(repo_path, hash_bytes)
        self.counts: dict[str, Counter | None] = {}  # blob id -> tokens (None: binary / too large / unreadable)
        self.texts: dict[str, str] = {}  # blob id -> text, for the few files shown (README, related)
        self.index: SnapshotIndex | None = None
        self.index_builds = 0

    def close(self) -> None:
        self.objects.close()

    def text(self, blob: str) -> str | None:
        """A file's text (None: binary, too large, not UTF-8-ish, unreadable)."""
        if blob in self.texts:
            return self.texts[blob]
        try:
            kind, content = self.objects.read(blob)
        except ObjectMissing:
            return None
        text = None
        if kind == "blob" and len(content) <= self.config.index_max_bytes and b"\0" not in content[:8192]:
            text = content.decode("utf-8", "replace")
        if len(self.texts) > 256:
            self.texts.clear()
        self.texts[blob] = text
        return text

    def counts_of(self, path: str, blob: str) -> Counter | None:
        """Tokens of a file (its content's, cached by blob id, plus its path's)."""
        counts = self.counts.get(blob, False)
        if counts is False:
            text = self.text(blob)
            counts = token_counts(text) if text is not None else None
            if len(self.counts) > self.MAX_CACHED_BLOBS:
                self.counts.clear()
            self.counts[blob] = counts
        if counts is None:
            return None
        with_path = counts.copy()
        with_path.update(path_tokens(path))
        return with_path

    def snapshot(self, parent_tree: str) -> dict[str, str]:
        """Regular files of the parent snapshot: path -> blob id."""
        return {
            entry.path: entry.sha for entry in self.objects.flat_tree(parent_tree) if entry.mode in REGULAR_FILE_MODES
        }

    def related(self, snapshot: dict[str, str], query: list[str], excluded: set[str]) -> list[tuple[str, float]]:
        config = self.config
        index = self.index
        limit = max(config.rebuild_min_files, config.rebuild_fraction * len(index.files)) if index else 0
        if index is None or index.drift(snapshot) > limit:
            counts = {}
            for path, blob in snapshot.items():
                file_counts = self.counts_of(path, blob)
                if file_counts is not None:
                    counts[path] = file_counts
            index = self.index = SnapshotIndex(snapshot, counts, config.k1, config.b)
            self.index_builds += 1
        return index.top(query, snapshot, self.counts_of, excluded, config.related_files)

    def example(self, doc: Document) -> tuple[str, dict]:
        """The serialized example of a commit document and what went into it; raises ObjectMissing, ValueError."""
        meta = doc.metadata
        parent_tree = meta.get("parent_tree") or self.objects.commit_tree(meta["parents"][0])
        snapshot = self.snapshot(parent_tree)
        changes = [(status, old_path, path) for status, old_path, path, *_ in meta["changes"]]
        changed_before = {old_path for status, old_path, _ in changes if status != "A"}
        changed_paths = sorted({path for _, old_path, path in changes} | {old for _, old, _ in changes})
        readme_path = _readme(snapshot)
        readme = None
        if readme_path:
            readme_text = self.text(snapshot[readme_path])
            readme = (readme_path, readme_text) if readme_text else None
        query = query_tokens(meta["message"], changed_paths)
        excluded = changed_before | ({readme_path} if readme_path else set())
        related = [(path, self.text(snapshot[path])) for path, _ in self.related(snapshot, query, excluded)]
        related = [(path, text) for path, text in related if text]
        budget = self.config.budget
        tree = render_tree(list(snapshot), set(changed_paths) | {path for path, _ in related}, budget.tree_max_entries)
        diff = target_diff(doc.text)
        example = CommitExample(meta["message"], changes, diff, readme, tree, related)
        serialized = serialize(example, budget)
        if serialized is None:
            raise OverBudget()
        text, info = serialized
        info.update(
            changed_paths=changed_paths,
            diff_sha256=hashlib.sha256(diff.encode("utf-8", "surrogateescape")).hexdigest(),
        )
        return text, info


class OverBudget(ValueError):
    """The message and the target alone exceed the token budget."""


def _readme(snapshot: dict[str, str]) -> str | None:
    candidates = {path.lower(): path for path in snapshot if "/" not in path and path.lower().startswith("readme")}
    for name in README_PREFERENCE:
        if name in candidates:
            return candidates[name]
    return min(candidates.values()) if candidates else None


KEPT_METADATA = ("repo", "commit", "author_time")


class CommitContext(FunnelMixin, PipelineStep):
    """Turns each commit document into its serialized example (text) with its final metadata.

    Excludes (step ``context``) commits whose parent snapshot git cannot read (``unreadable_object``) and those whose
    message and target alone exceed the token budget (``over_token_budget``)."""

    type = "🔢 - CONTEXT"
    name = "📚 commit context"
    funnel_step = "context"

    def __init__(self, config: ContextConfig | None = None, exclusion_writer: DiskWriter | None = None):
        super().__init__()
        self.config = config or ContextConfig()
        self.exclusion_writer = exclusion_writer

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer_context = self.exclusion_writer if self.exclusion_writer else contextlib.nullcontext()
        with writer_context as writer:
            yield from self._run(data, rank, writer)

    def _run(self, data: DocumentsPipeline, rank: int, writer: DiskWriter | None) -> DocumentsPipeline:
        state: RepositoryContext | None = None
        try:
            for doc in data or ():
                self.funnel_in(doc)
                meta = doc.metadata
                with self.track_time():
                    if state is None or state.repo_path != meta["repo_path"]:
                        if state is not None:
                            self.stat_update("index_builds", value=state.index_builds)
                            state.close()
                        state = RepositoryContext(meta["repo_path"], meta.get("hash_bytes", 20), self.config)
                    reason = None
                    try:
                        text, info = state.example(doc)
                    except ObjectMissing:
                        reason = "unreadable_object"
                    except OverBudget:
                        reason = "over_token_budget"
                    except Exception as error:  # bad input is excluded with a reason, never crashes the task
                        reason = f"error:{type(error).__name__}"
                if reason is not None:
                    self.funnel_exclude(doc, reason, writer, rank)
                    continue
                new_meta = {key: meta[key] for key in KEPT_METADATA if key in meta}
                new_meta.update(
                    parent=meta["parents"][0],
                    changed_paths=info["changed_paths"],
                    related_paths=info["related_paths"],
                    token_estimate=info["tokens"],
                    cut=info["cut"],
                    sha256=info["diff_sha256"],  # the target diff's hash: exact dedup compares it
                )
                doc.text = text
                doc.metadata = new_meta
                self.funnel_keep(doc)
                yield doc
        finally:
            if state is not None:
                self.stat_update("index_builds", value=state.index_builds)
                state.close()
