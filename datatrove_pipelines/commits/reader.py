"""The datatrove reader of local git repositories: select repositories, then one document per commit of each.

Repositories (the inputs expanded by ``discover_repositories``, sorted) are shared among tasks round-robin. Each is
inspected and selected by ``RepositoryCriteria`` (commits, activity span; stars and forks from an optional metadata
file); every repository, read or not, gets one record in ``DIR/repositories/<rank>.jsonl.gz`` and a funnel note
``repository_kept`` / ``repository_excluded/<reason>`` / ``repository_error/<reason>`` on the ``commit_filter`` step
of stats.json (repositories are not documents, so they are notes beside the commit funnel, not part of it).

Each commit of a selected repository becomes a document whose text is its patch and whose metadata has what the
filters and the context step need. When git dies on a corrupt object, the commit it was writing becomes a document
marked ``read_error`` (excluded by the filter as ``unreadable_object``) and the history resumes after it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from datatrove_pipelines.commits.filters import patch_flags
from datatrove_pipelines.commits.git import (
    CommitRecord,
    GitError,
    RepositoryInfo,
    discover_repositories,
    inspect_repository,
    run_git,
    stream_commits,
)
from datatrove_pipelines.funnel import FunnelMixin
from datatrove_pipelines.writers import FAST_GZIP, RankFileJsonlWriter, document_dict, register_fast_gzip

MAX_RESUMES = 64  # corrupt commits skipped per repository before giving it up


@dataclass
class RepositoryCriteria:
    """Which repositories are read. The paper's: >= 100 stars, >= 10 forks, >= 100 commits, >= 100 days of activity;
    the defaults accept any readable repository (tiny runs). Stars and forks need ``metadata_file``."""

    min_commits: int = 0
    min_active_days: float = 0.0
    min_stars: int = 0
    min_forks: int = 0
    metadata_file: str | None = None  # .json {name: {stars, forks}}, .jsonl or .csv rows with repo/name, stars, forks
    allow_shallow: bool = False  # a shallow clone's history is cut: its counts and first commit are not the real ones

    def __post_init__(self) -> None:
        if (self.min_stars or self.min_forks) and not self.metadata_file:
            raise ValueError("--min-stars/--min-forks need --repo-metadata FILE (stars and forks per repository)")


def load_repository_metadata(path: str) -> dict[str, dict]:
    """Repository name (``name`` or ``owner/name``) -> {"stars": int, "forks": int}."""
    rows: list[dict]
    with open(path, newline="") as handle:
        if path.endswith(".csv"):
            rows = list(csv.DictReader(handle))
        elif path.endswith(".jsonl"):
            rows = [json.loads(line) for line in handle if line.strip()]
        else:
            data = json.load(handle)
            rows = [{"repo": name, **values} for name, values in data.items()] if isinstance(data, dict) else data
    table = {}
    for row in rows:
        name = row.get("repo") or row.get("name") or row.get("repo_name")
        if name:
            table[str(name)] = {
                "stars": int(row.get("stars") or row.get("stargazers_count") or 0),
                "forks": int(row.get("forks") or row.get("forks_count") or 0),
            }
    return table


def metadata_of(info: RepositoryInfo, table: dict[str, dict]) -> dict | None:
    parts = os.path.normpath(os.path.abspath(info.path)).split(os.sep)
    for key in (info.name, "/".join(parts[-2:]), parts[-1]):
        if key in table:
            return table[key]
    return None


def selection_reason(info: RepositoryInfo, criteria: RepositoryCriteria, table: dict[str, dict] | None) -> str | None:
    """Why a readable repository is not selected, or None."""
    if info.shallow and not criteria.allow_shallow:
        return "shallow_clone"
    if info.commits < criteria.min_commits:
        return "too_few_commits"
    if info.active_days < criteria.min_active_days:
        return "too_short_activity"
    if table is not None and (criteria.min_stars or criteria.min_forks):
        meta = metadata_of(info, table)
        if meta is None:
            return "no_metadata"
        if meta["stars"] < criteria.min_stars:
            return "too_few_stars"
        if meta["forks"] < criteria.min_forks:
            return "too_few_forks"
    return None


class CommitReader(FunnelMixin, PipelineStep):
    """Reads the commits of the local repositories ``inputs`` (repositories or folders of clones)."""

    type = "📖 - READER"
    name = "🌳 git commits"
    funnel_step = "commit_filter"  # the repository notes sit beside the first commit-level step

    def __init__(
        self,
        inputs: list[str],
        criteria: RepositoryCriteria | None = None,
        repositories_dir: str | None = None,
        max_patch_bytes: int = 1 << 20,
    ):
        super().__init__()
        self.inputs = list(inputs)
        self.criteria = criteria or RepositoryCriteria()
        self.repositories_dir = repositories_dir
        self.max_patch_bytes = max_patch_bytes  # patches are kept up to this size (their real size is recorded)

    def _note(self, label: str, info: RepositoryInfo) -> None:
        self._count(f"note/{label}", 0)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        table = load_repository_metadata(self.criteria.metadata_file) if self.criteria.metadata_file else None
        writer = None
        if self.repositories_dir:
            register_fast_gzip()
            writer = RankFileJsonlWriter(self.repositories_dir, compression=FAST_GZIP, adapter=document_dict)
        try:
            for index, path in enumerate(discover_repositories(self.inputs)):
                if index % world_size != rank:
                    continue
                with self.track_time():
                    info = inspect_repository(path)
                    reason = info.problem or selection_reason(info, self.criteria, table)
                record = {"path": path, "commits": info.commits, "active_days": round(info.active_days, 1)}
                if reason:
                    self._note(f"repository_excluded/{reason}", info)
                    self._record(
                        writer, info, {**record, "status": "excluded", "reason": reason, "detail": info.detail}, rank
                    )
                    continue
                read, error = 0, None
                for doc in self._commits(info):
                    read += 1
                    if doc.metadata.get("read_error"):
                        error = doc.metadata["read_error"]
                    yield doc
                if isinstance(error, str) and error.startswith("gave_up"):
                    self._note("repository_error/git_failed", info)
                status = {"status": "read", "documents": read, "error": error}
                self._note("repository_kept", info)
                self._record(writer, info, {**record, **status}, rank)
        finally:
            if writer is not None:
                writer.close()

    def _record(self, writer, info: RepositoryInfo, record: dict, rank: int) -> None:
        if writer is not None:
            writer.write(Document(text="", id=info.name, metadata=record), rank)

    def _commits(self, info: RepositoryInfo):
        """Documents of the history of one repository; resumes after commits git cannot read."""
        seen: set[str] = set()
        trees: dict[str, str] = {}
        revisions = ["HEAD"]
        for _ in range(MAX_RESUMES + 1):
            try:
                for commit in stream_commits(info.path, self.max_patch_bytes, revisions=revisions):
                    trees[commit.sha] = commit.tree
                    if commit.sha in seen:
                        continue
                    seen.add(commit.sha)
                    yield commit_document(info, commit, trees)
                return
            except GitError as error:
                try:
                    order = run_git(info.path, "log", "--reverse", "--topo-order", "--format=%H", "HEAD").split()
                except GitError:
                    order = []
                failing = next((sha.decode() for sha in order if sha.decode() not in seen), None)
                if failing is None:
                    return
                seen.add(failing)
                doc = Document(text="", id=f"{info.name}@{failing}", metadata={"repo": info.name, "commit": failing})
                doc.metadata["read_error"] = str(error)[:500]
                yield doc
                revisions = [f"^{failing}", "HEAD"]
        doc = Document(text="", id=f"{info.name}@gave-up", metadata={"repo": info.name})
        doc.metadata["read_error"] = f"gave_up after {MAX_RESUMES} unreadable commits"
        yield doc


def commit_document(info: RepositoryInfo, commit: CommitRecord, trees: dict[str, str]) -> Document:
    """One commit as a document: text = the patch, metadata = what the filters and the context step read."""
    metadata = {
        "repo": info.name,
        "repo_path": os.path.abspath(info.path),
        "hash_bytes": info.hash_bytes,
        "commit": commit.sha,
        "parents": commit.parents,
        "parent_tree": trees.get(commit.parents[0]) if commit.parents else None,
        "author_name": commit.author_name,
        "author_email": commit.author_email,
        "author_time": commit.author_time,
        "message": commit.message,
        "changes": [
            [change.status, change.old_path, change.path, change.old_mode, change.new_mode, change.new_blob]
            for change in commit.changes
        ],
        "patch_size": commit.patch_size,
        "size": commit.patch_size,
    }
    if len(commit.patch) < commit.patch_size:  # cut at the reader's limit: never a target
        metadata["patch_truncated"] = True
    try:
        text = commit.patch.decode("utf-8")
    except UnicodeDecodeError:
        text = commit.patch.decode("utf-8", "replace")
        metadata["patch_not_utf8"] = True
    metadata.update(patch_flags(commit.patch))
    return Document(text=text, id=f"{info.name}@{commit.sha}", metadata=metadata)
