"""The context of a commit at its parent: README, directory tree, top-5 related files; then the serialized example.

One ``RepositoryContext`` per repository holds a ``git cat-file --batch`` process, the memoised trees, the token
counts of every blob it has read (by blob id) and the current ``SnapshotIndex``; commits of a repository arrive
together and in history order, so consecutive parent snapshots share almost everything and the index is rebuilt
only when more than ``rebuild_fraction`` of the files changed since it was built. A batch of commits is ranked
together (``RepositoryContext.rank_batch``: queries and patch lines tokenized in one pass each, the index chosen commit by
commit, commits sharing an index scored in one pass); ``rank`` + ``learn_tokens`` one commit at a time is the plain path
it is tested against.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.commits.git import ObjectMissing, ObjectReader
from datatrove_pipelines.commits.patches import apply_patch_lines, git_blob_id
from datatrove_pipelines.commits.related import (
    SnapshotIndex,
    Tokens,
    code_token_hashes,
    split_token_hashes,
    token_counts,
    token_hashes_of_many,
)
from datatrove_pipelines.commits.serialize import (
    BudgetConfig,
    CommitExample,
    related_file_section,
    render_tree,
    serialize,
    target_diff,
)
from datatrove_pipelines.commits.token_deltas import apply_token_delta, changed_lines, delta_tokens
from datatrove_pipelines.funnel import FunnelMixin

README_PREFERENCE = ("readme.md", "readme.rst", "readme.txt", "readme", "readme.markdown", "readme.adoc")
REGULAR_FILE_MODES = ("100644", "100755")


@dataclass
class ContextConfig:
    related_files: int = 5
    index_max_bytes: int = 200_000  # files larger than this are not indexed (nor shown as related)
    # rebuild the index when the (path, blob) pairs that differ from the indexed snapshot exceed this share of it
    rebuild_fraction: float = 0.5
    rebuild_min_files: int = 32
    k1: float = 1.5
    b: float = 0.75
    budget: BudgetConfig = field(default_factory=BudgetConfig)


class RepositoryContext:
    """What is kept while the commits of one repository go by. Commits come in batches: their parent trees, the
    files they will need (READMEs, files changed since the index was built) and then their related files are each
    read in one ``cat-file`` round trip for the whole batch."""

    MAX_CACHED_TOKEN_ELEMENTS = 8_000_000
    MAX_CACHED_TEXT_BYTES = 64 << 20
    MAX_CACHED_SECTIONS = 512  # related files' sections as examples show them (a few KB each)

    def __init__(self, repo_path: str, hash_bytes: int, config: ContextConfig):
        self.repo_path = repo_path
        self.config = config
        self.objects = ObjectReader(repo_path, hash_bytes)
        self.tokens: dict[tuple[str, str], Tokens | None] = {}  # (path, blob id) -> tokens (None: not text)
        self._token_elements = 0
        self._readmes: dict[int, tuple[dict, str | None]] = {}
        self._texts: dict[str, str | None] = {}  # blob id -> text (None: binary, too large, unreadable)
        self._text_bytes = 0
        self._newlines: dict[str, int] = {}  # blob id -> newlines of its text (for the truncation markers)
        self._sections: dict[tuple[str, str, int], tuple[str, bool]] = {}  # (path, blob, limit) -> related section
        self.hash_bytes = hash_bytes
        # new blob id -> (old blob id, patch section): texts rebuilt from patches (``texts``) instead of read
        self._recipes: dict[str, tuple[str, str]] = {}
        self._recipe_bytes = 0
        self._lines: dict[str, list[str]] = {}  # blob id -> its rebuilt text split at newlines (``keep_lines``)
        self.index: SnapshotIndex | None = None
        self.index_builds = 0
        self._last_commit: str | None = None  # the last commit given a snapshot, its changes, its parent snapshot
        self._last_changes: list = []
        self._last_snapshot: dict[str, str] | Exception | None = None

    def close(self) -> None:
        self.objects.close()

    def texts(self, blobs: list[str]) -> dict[str, str | None]:
        """Files' texts by blob id, the ones not cached read in one batch."""
        missing = [blob for blob in dict.fromkeys(blobs) if blob not in self._texts]
        if missing:
            if self._text_bytes > self.MAX_CACHED_TEXT_BYTES:
                self._texts.clear()
                self._newlines.clear()
                self._sections.clear()
                self._text_bytes = 0
            missing = [blob for blob in missing if not self._text_from_patches(blob)]
            for blob, found in self.objects.read_many(missing).items():
                self._store_text(blob, found[1] if found is not None and found[0] == "blob" else None)
        return {blob: self._texts.get(blob) for blob in blobs}

    def _store_text(self, blob: str, content: bytes | None, decoded: str | None = None) -> None:
        """Cache a blob's text (None: binary or too large); ``decoded``: ``content`` already decoded."""
        text = None
        if content is not None and len(content) <= self.config.index_max_bytes and b"\0" not in content[:8192]:
            text = decoded if decoded is not None else content.decode("utf-8", "replace")
            self._text_bytes += len(content)
        self._texts[blob] = text

    MAX_RECIPE_CHAIN = 64
    # a rebuilt text's lines kept for the next patch of the same file (its last MAX_KEPT_LINES rebuilt versions);
    # False: split the text again each time, the plain way the tests compare with
    keep_lines = True
    MAX_KEPT_LINES = 256

    def remember_patch(self, old_blob: str, new_blob: str, section: str) -> None:
        """Note that ``new_blob`` is ``old_blob`` with a patch section applied (``texts`` may use it)."""
        if new_blob in self._recipes or new_blob in self._texts or not old_blob:
            return
        if self._recipe_bytes > self.MAX_CACHED_TEXT_BYTES:
            self._recipes.clear()
            self._recipe_bytes = 0
        self._recipes[new_blob] = (old_blob, section)
        self._recipe_bytes += len(section)

    def _text_from_patches(self, blob: str) -> bool:
        """Rebuild a blob's text from a known older text and the patches since (``remember_patch``); True when the
        rebuilt content has exactly the blob's id (stored as if read), False to read it from git."""
        chain = [blob]
        while chain[-1] not in self._texts:
            recipe = self._recipes.get(chain[-1])
            if recipe is None or len(chain) > self.MAX_RECIPE_CHAIN:
                return False
            chain.append(recipe[0])
        text = self._texts[chain[-1]]
        parts = self._lines.get(chain[-1]) if self.keep_lines else None
        for new_blob in reversed(chain[:-1]):
            if text is None or "\ufffd" in text:  # not the file's exact bytes: no patch can be checked on it
                return False
            parts = apply_patch_lines(parts if parts is not None else text.split("\n"), self._recipes[new_blob][1])
            if parts is None:
                return False
            text = "\n".join(parts)
            try:
                content = text.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                return False
            if git_blob_id(content, self.hash_bytes) != new_blob:
                return False
            self._store_text(new_blob, content, text)
        if self.keep_lines and parts is not None:
            if len(self._lines) >= self.MAX_KEPT_LINES:
                del self._lines[next(iter(self._lines))]  # the oldest
            self._lines[blob] = parts
        return True

    def tokens_for(self, path: str, blob: str) -> Tokens | None:
        """Token counts of a file (its path's tokens, then its content's), cached by (path, blob id)."""
        key = (path, blob)
        if key not in self.tokens:
            text = self.texts([blob])[blob]
            self._remember_tokens(key, token_counts(f"{path}\n{text}") if text is not None else None)
        return self.tokens[key]

    def tokens_many(self, pairs: list[tuple[str, str]]) -> list[Tokens | None]:
        """``tokens_for`` of several files: the unknown ones read in one batch and tokenized in one pass."""
        found = {pair: self.tokens[pair] for pair in pairs if pair in self.tokens}
        missing = [pair for pair in dict.fromkeys(pairs) if pair not in found]
        if missing:
            texts = self.texts([blob for _, blob in missing])
            readable = [pair for pair in missing if texts[pair[1]] is not None]
            hashes_of = token_hashes_of_many([f"{path}\n{texts[blob]}" for path, blob in readable])
            tokens_of = dict.fromkeys(missing)
            for pair, hashes in zip(readable, hashes_of, strict=True):
                unique, counts = np.unique(hashes, return_counts=True)
                tokens_of[pair] = (unique, counts.astype(np.float64))
            for pair, tokens in tokens_of.items():
                self._remember_tokens(pair, tokens)
            found.update(tokens_of)
        return [found[pair] for pair in pairs]

    def _remember_tokens(self, key: tuple[str, str], tokens: Tokens | None) -> None:
        if self._token_elements > self.MAX_CACHED_TOKEN_ELEMENTS:  # ~16 bytes each; the index keeps its own copy
            self.tokens.clear()
            self._token_elements = 0
        self.tokens[key] = tokens
        self._token_elements += len(tokens[0]) if tokens is not None else 0

    def readme(self, snapshot: dict[str, str]) -> str | None:
        """The README path of a snapshot, found once per snapshot of the current batch."""
        memo = self._readmes.get(id(snapshot))
        if memo is None or memo[0] is not snapshot:
            memo = self._readmes[id(snapshot)] = (snapshot, _readme(snapshot))  # holds the snapshot: ids stay unique
        return memo[1]

    def snapshots(self, docs: list[Document]) -> list[dict[str, str] | Exception]:
        """The parent snapshot (regular files: path -> blob id) of each document, or the error reading it.

        A commit whose parent is the previous commit seen gets that commit's parent snapshot with the previous
        commit's changes applied (``apply_changes``; no object read); the others' parent trees are read in one batch."""
        chained = []
        previous = self._last_commit
        for doc in docs:
            chained.append(doc.metadata["parents"][0] == previous)
            previous = doc.metadata["commit"]
        to_read = [doc for doc, linked in zip(docs, chained, strict=True) if not linked]
        read = iter(self._read_snapshots(to_read)) if to_read else iter(())
        result: list[dict[str, str] | Exception] = []
        for doc, linked in zip(docs, chained, strict=True):
            if linked:
                parent = self._last_snapshot
                if isinstance(parent, dict):
                    snapshot = apply_changes(parent, self._last_changes)
                else:  # the previous commit's parent was unreadable: its own tree may not be
                    snapshot = self._read_snapshots([doc])[0]
            else:
                snapshot = next(read)
            result.append(snapshot)
            self._last_commit, self._last_changes = doc.metadata["commit"], doc.metadata["changes"]
            self._last_snapshot = snapshot
        return result

    def _read_snapshots(self, docs: list[Document]) -> list[dict[str, str] | Exception]:
        parent_trees: list[str | Exception] = []
        missing_commits = [doc.metadata["parents"][0] for doc in docs if not doc.metadata.get("parent_tree")]
        commits = self.objects.read_many(missing_commits) if missing_commits else {}
        for doc in docs:
            tree = doc.metadata.get("parent_tree")
            if not tree:
                found = commits.get(doc.metadata["parents"][0])
                tree = ObjectMissing(doc.metadata["parents"][0])
                if found is not None and found[0] == "commit" and found[1].startswith(b"tree "):
                    tree = found[1][5 : found[1].index(b"\n")].decode()
            parent_trees.append(tree)
        flat = self.objects.flat_trees([tree for tree in parent_trees if isinstance(tree, str)])
        result: list[dict[str, str] | Exception] = []
        for tree in parent_trees:
            entries = flat[tree] if isinstance(tree, str) else tree
            if isinstance(entries, Exception):
                result.append(entries)
            else:
                result.append({entry.path: entry.sha for entry in entries if entry.mode in REGULAR_FILE_MODES})
        return result

    def learn_tokens(self, doc: Document, snapshot: dict[str, str], prepared: list | None = None) -> None:
        """Token counts of the blobs a commit writes, from its parent's version and its patch (``delta_tokens``),
        so the files it changed need not be read and tokenized again when they become fresh. ``prepared``: the
        commit's ``learnable_sections`` with their added and removed lines already tokenized (a batch's in one
        pass); without it each section is tokenized here."""
        if prepared is None:
            prepared = learnable_sections(doc)
        for path, new_blob, change in prepared:
            old = self.tokens.get((path, snapshot.get(path, "")))
            if old is not None and (path, new_blob) not in self.tokens:
                new = delta_tokens(old, change) if isinstance(change, str) else apply_token_delta(old, *change)
                self._remember_tokens((path, new_blob), new)
        if self.learn_renames:
            self.learn_renamed_tokens(doc, snapshot)

    # a file renamed or copied unchanged gets its counts from the old path's (``learn_renamed_tokens``); False: read
    # and tokenized again, the plain way the tests compare with
    learn_renames = True

    def learn_renamed_tokens(self, doc: Document, snapshot: dict[str, str]) -> None:
        """Token counts of the files a commit renames or copies without changing them: a file's counts are those of
        its path line and its text (no token crosses the newline between them), so the new path's are the old
        path's counts minus the old path's tokens plus the new path's."""
        for status, old_path, path, _, new_mode, new_blob in doc.metadata["changes"]:
            if status not in ("R", "C") or old_path == path or new_mode not in REGULAR_FILE_MODES:
                continue
            if snapshot.get(old_path) != new_blob or (path, new_blob) in self.tokens:
                continue
            old = self.tokens.get((old_path, new_blob))
            if old is not None:
                self._remember_tokens((path, new_blob), apply_token_delta(old, *split_token_hashes(path, old_path)))

    def prefetch(self, snapshots: list[dict[str, str]], docs: list[Document]) -> None:
        """Read in one batch what the batch's commits will need and no one knows yet: READMEs, and the files the
        commits write other than by modifying them in place (added, renamed, copied: their tokens cannot be learnt
        from the patch), which the next commits score as files changed since the index was built. Prefetching only
        decides when texts are read, never what they are: anything it leaves out (a snapshot read whole from git,
        tokens that could not be learnt) is read when asked for."""
        wanted = []
        for snapshot in snapshots:
            readme = self.readme(snapshot)
            if readme:
                wanted.append(snapshot[readme])
        if self.index is not None:
            for doc in docs:
                for status, _, path, _, new_mode, new_blob in doc.metadata["changes"]:
                    if status not in "MD" and new_mode in REGULAR_FILE_MODES and (path, new_blob) not in self.tokens:
                        wanted.append(new_blob)
        if len(wanted) < 4 * self.config.rebuild_min_files * len(snapshots):  # else a rebuild reads them anyway
            self.texts(wanted)

    def related(self, snapshot: dict[str, str], query: np.ndarray, excluded: set[str]) -> list[tuple[str, float]]:
        index = self.index_for(snapshot)
        return index.top(query, snapshot, self.tokens_for, excluded, self.config.related_files)

    def index_for(self, snapshot: dict[str, str]) -> SnapshotIndex:
        """The current index, rebuilt on ``snapshot`` first when too many files changed since it was built."""
        config = self.config
        index = self.index
        limit = max(config.rebuild_min_files, config.rebuild_fraction * len(index.files)) if index else 0
        if index is None or index.drift(snapshot) > limit:
            pairs = list(snapshot.items())
            tokens = {
                path: found
                for (path, _), found in zip(pairs, self.tokens_many(pairs), strict=True)
                if found is not None
            }
            index = self.index = SnapshotIndex(snapshot, tokens, config.k1, config.b)
            self.index_builds += 1
        return index

    def rank(self, doc: Document, snapshot: dict[str, str]) -> list[str]:
        """The related files of a commit, best first (the changed files and the README left out): the plain path,
        one commit at a time, that ``rank_batch`` is tested against."""
        query = np.unique(code_token_hashes(_query_text(doc)))
        return [path for path, _ in self.related(snapshot, query, self._excluded(doc, snapshot))]

    def _excluded(self, doc: Document, snapshot: dict[str, str]) -> set[str]:
        changed_before = {change[1] for change in doc.metadata["changes"] if change[0] != "A"}
        readme_path = self.readme(snapshot)
        return changed_before | ({readme_path} if readme_path else set())

    def rank_batch(self, docs: list[Document], snapshots: list) -> list[list[str] | Exception | None]:
        """``rank`` of each commit of a batch (None where the snapshot is an error), learning the tokens of the
        files each commit writes on the way (``learn_tokens``) as ``rank`` then ``learn_tokens`` would: the
        queries are tokenized in one pass, the index is chosen (rebuilt) commit by commit, then the commits that
        share an index are scored together (``SnapshotIndex.top_many``). An error is the outcome of its commit."""
        outcomes: list = [None] * len(docs)
        readable = [i for i, snapshot in enumerate(snapshots) if not isinstance(snapshot, Exception)]
        queries = dict(zip(readable, token_hashes_of_many([_query_text(docs[i]) for i in readable]), strict=True))
        prepared = {i: learnable_sections(docs[i]) for i in readable if not docs[i].metadata.get("patch_truncated")}
        lines = [
            text for sections in prepared.values() for _, _, section in sections for text in changed_lines(section)
        ]
        line_tokens = iter(token_hashes_of_many(lines))
        for i, sections in prepared.items():
            for path, blob, section in sections:
                self.remember_patch(snapshots[i].get(path, ""), blob, section)
            sections[:] = [(path, blob, (next(line_tokens), next(line_tokens))) for path, blob, _ in sections]
        groups: list[tuple[SnapshotIndex, list[int]]] = []
        for i in readable:
            try:
                index = self.index_for(snapshots[i])
                if groups and groups[-1][0] is index:
                    groups[-1][1].append(i)
                else:
                    groups.append((index, [i]))
                if i in prepared:
                    self.learn_tokens(docs[i], snapshots[i], prepared[i])  # before the next commit (fresh files)
            except Exception as error:
                outcomes[i] = error
        k = self.config.related_files
        for index, positions in groups:
            positions = [i for i in positions if outcomes[i] is None]
            try:
                tops = index.top_many(
                    [np.unique(queries[i]) for i in positions],
                    [snapshots[i] for i in positions],
                    self.tokens_many,
                    [self._excluded(docs[i], snapshots[i]) for i in positions],
                    k,
                )
            except Exception:  # find the commit at fault: one at a time
                tops = []
                for i in positions:
                    try:
                        query = np.unique(queries[i])
                        tops.append(
                            index.top(query, snapshots[i], self.tokens_for, self._excluded(docs[i], snapshots[i]), k)
                        )
                    except Exception as error:
                        tops.append(error)
            for i, top in zip(positions, tops, strict=True):
                outcomes[i] = top if isinstance(top, Exception) else [path for path, _ in top]
        return outcomes

    def example(self, doc: Document, snapshot: dict[str, str], ranked: list[str]) -> tuple[str, dict]:
        """The serialized example of a commit and what went into it; OverBudget if the target does not fit."""
        meta = doc.metadata
        changes = [(status, old_path, path) for status, old_path, path, *_ in meta["changes"]]
        changed_paths = sorted({path for _, _, path in changes} | {old for _, old, _ in changes})
        readme_path = self.readme(snapshot)
        shown = ([readme_path] if readme_path else []) + ranked
        texts = self.texts([snapshot[path] for path in shown])
        readme = None
        if readme_path and texts[snapshot[readme_path]]:
            readme = (readme_path, texts[snapshot[readme_path]])
        related = [(path, texts[snapshot[path]]) for path in ranked if texts[snapshot[path]]]
        newlines = {}  # counted once per blob, not once per commit that shows it
        for path, text in ([readme] if readme else []) + related:
            count = self._newlines.get(snapshot[path])
            if count is None:
                count = self._newlines[snapshot[path]] = text.count("\n")
            newlines[path] = count
        budget = self.config.budget
        focus = set(changed_paths) | {path for path, _ in related}
        tree = render_tree(list(snapshot), focus, budget.tree_max_entries)
        diff = target_diff(doc.text)
        sections = self._sections
        if len(sections) > self.MAX_CACHED_SECTIONS:
            sections.clear()

        def related_section(path: str, text: str, limit: int, newlines: int | None) -> tuple[str, bool]:
            key = (path, snapshot[path], limit)
            found = sections.get(key)
            if found is None:
                found = sections[key] = related_file_section(path, text, limit, newlines)
            return found

        serialized = serialize(
            CommitExample(meta["message"], changes, diff, readme, tree, related, newlines, related_section), budget
        )
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


def apply_changes(snapshot: dict[str, str], changes: list[list[str]]) -> dict[str, str]:
    """The child's snapshot (regular files) from the parent's and the child's ``--raw`` changes."""
    child = dict(snapshot)
    for status, old_path, path, _, new_mode, new_blob in changes:
        if status in ("D", "R"):
            child.pop(old_path, None)
        if status != "D":
            if new_mode in REGULAR_FILE_MODES:
                child[path] = new_blob
            else:  # now a symlink or submodule
                child.pop(path, None)
    return child


def _file_sections(patch: str, count: int) -> list[str | None]:
    """The per-file sections of a git patch, in the order of the ``--raw`` changes (None where they cannot be
    matched one to one)."""
    sections = patch.split("\ndiff --git ")
    return sections if len(sections) == count else [None] * count


def learnable_sections(doc: Document) -> list[tuple[str, str, str]]:
    """(path, new blob, patch section) of the files a commit modifies in place whose new tokens can be learnt from
    the patch (regular files, headers as expected)."""
    learnable = []
    for (status, old_path, path, _, new_mode, new_blob), section in zip(
        doc.metadata["changes"], _file_sections(doc.text, len(doc.metadata["changes"])), strict=False
    ):
        if status != "M" or old_path != path or new_mode not in REGULAR_FILE_MODES or section is None:
            continue
        if f" b/{path}\n" not in section[: section.find("\n") + 1]:  # quoted or unexpected header: read it later
            continue
        learnable.append((path, new_blob, section))
    return learnable


def _query_text(doc: Document) -> str:
    """What a commit's related files are retrieved with: its message and the paths it changes."""
    changed = [path for change in doc.metadata["changes"] for path in (change[1], change[2])]
    return "\n".join([doc.metadata["message"], *changed])


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

    BATCH = 32  # commits whose reads share cat-file round trips

    def _run(self, data: DocumentsPipeline, rank: int, writer: DiskWriter | None) -> DocumentsPipeline:
        state: RepositoryContext | None = None
        try:
            for batch in _repository_batches(data or (), self.BATCH):
                for doc in batch:
                    self.funnel_in(doc)
                repo_path = batch[0].metadata["repo_path"]
                if state is None or state.repo_path != repo_path:
                    if state is not None:
                        self.stat_update("index_builds", value=state.index_builds)
                        state.close()
                    state = RepositoryContext(repo_path, batch[0].metadata.get("hash_bytes", 20), self.config)
                with self.track_time("batch"):
                    decided = self._examples(state, batch)
                for doc, outcome in zip(batch, decided, strict=True):
                    if isinstance(outcome, str):
                        self.funnel_exclude(doc, outcome, writer, rank)
                        continue
                    text, info = outcome
                    meta = doc.metadata
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

    @staticmethod
    def _examples(state: RepositoryContext, batch: list[Document]) -> list[tuple[str, dict] | str]:
        """(text, info) or the exclusion reason of each commit of a batch (one repository)."""
        outcomes: list = [None] * len(batch)
        try:
            snapshots = state.snapshots(batch)
        except Exception as error:  # bad input is excluded with a reason, never crashes the task
            return [f"error:{type(error).__name__}"] * len(batch)
        state._readmes.clear()
        readable = [snapshot for snapshot in snapshots if not isinstance(snapshot, Exception)]
        state.prefetch(readable, batch)
        rankings: list = state.rank_batch(batch, snapshots)
        for position, snapshot in enumerate(snapshots):
            if isinstance(snapshot, ObjectMissing):
                outcomes[position] = "unreadable_object"
            elif isinstance(snapshot, Exception):
                outcomes[position] = f"error:{type(snapshot).__name__}"
            elif isinstance(rankings[position], Exception):
                outcomes[position] = f"error:{type(rankings[position]).__name__}"
                rankings[position] = None
        state.texts(  # the related files of the whole batch in one round trip
            [snapshots[i][path] for i, ranked in enumerate(rankings) if ranked for path in ranked]
        )
        for position, (doc, snapshot) in enumerate(zip(batch, snapshots, strict=True)):
            if outcomes[position] is not None:
                continue
            try:
                outcomes[position] = state.example(doc, snapshot, rankings[position])
            except OverBudget:
                outcomes[position] = "over_token_budget"
            except Exception as error:
                outcomes[position] = f"error:{type(error).__name__}"
        return outcomes


def _repository_batches(data, size: int):
    """Consecutive documents of one repository, ``size`` at most per batch."""
    batch: list[Document] = []
    for doc in data:
        if batch and (len(batch) >= size or batch[0].metadata["repo_path"] != doc.metadata["repo_path"]):
            yield batch
            batch = []
        batch.append(doc)
    if batch:
        yield batch
