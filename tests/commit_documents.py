"""The reader's documents of every commit of a repository (what CommitReader yields before filtering), for the tests
that drive the context step commit by commit."""

from __future__ import annotations

from datatrove_pipelines.commits.git import inspect_repository, stream_commits
from datatrove_pipelines.commits.reader import commit_document


def commit_documents(repo: str, *, single_parent_only: bool = False) -> list:
    """One document per commit of ``repo`` (oldest first), or per commit with exactly one parent."""
    info = inspect_repository(repo)
    trees: dict[str, str] = {}
    docs = []
    for commit in stream_commits(repo):
        trees[commit.sha] = commit.tree
        if not single_parent_only or len(commit.parents) == 1:
            docs.append(commit_document(info, commit, trees))
    return docs
