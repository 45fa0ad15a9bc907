"""The commit stage's later speed tricks against their plain versions: a rebuilt text's lines kept for the next patch
of the same file (vs splitting the text again) and the funnel's byte count of ASCII text (vs encoding it). The log
stream cut into records without a growing buffer is compared with one whole read in ``test_commits_units``."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sysconfig
from pathlib import Path

from commit_documents import commit_documents
from datatrove.data import Document

from datatrove_pipelines.commits.context import CommitContext, ContextConfig, RepositoryContext
from datatrove_pipelines.commits.filters import CommitFilter
from datatrove_pipelines.commits.git import stream_commits
from datatrove_pipelines.commits.patches import apply_patch_lines, apply_patch_section
from datatrove_pipelines.commits.reader import CommitReader
from datatrove_pipelines.funnel import document_bytes, document_bytes_plain

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PROJECT = Path(__file__).resolve().parents[1]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def edited_versions(seed: int = 3) -> list[str]:
    """A real module edited many times: scattered hunks, first and last lines, the final newline dropped and back,
    an emptied file refilled."""
    rng = random.Random(seed)
    current = (STDLIB / "textwrap.py").read_text().splitlines(keepends=True)
    versions = ["".join(current)]
    for step in range(24):
        for _ in range(rng.randint(1, 5)):
            at = rng.randrange(len(current))
            current[at : at + rng.randint(0, 3)] = [f"edited {rng.random()}\n"] * rng.randint(0, 2)
        text = "".join(current)
        if step % 7 == 3:
            text = text.rstrip("\n")  # no final newline in this version
        versions.append(text)
    versions += ["", "refilled\n", "".join(current[:40])]
    return versions


def test_patch_lines_chained_equal_the_texts_patched_one_at_a_time(tmp_path):
    """``apply_patch_lines`` fed the parts the previous patch gave (never the text split again) equals
    ``apply_patch_section`` on each version's text and git's own versions, over a chain of 27 commits."""
    repo = tmp_path / "chain"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    versions = edited_versions()
    for number, text in enumerate(versions):
        (repo / "file.py").write_bytes(text.encode())
        git(repo, "add", "file.py")
        git(repo, "-c", "user.name=T", "-c", "user.email=t@e.org", "commit", "-q", "--allow-empty", "-m", f"v{number}")
    commits = [commit for commit in stream_commits(str(repo)) if commit.parents]
    parts = versions[0].split("\n")
    checked = 0
    for commit, old, new in zip(commits, versions[:-1], versions[1:], strict=True):
        if old == new:
            continue
        section = commit.patch.decode()
        kept = parts
        parts = apply_patch_lines(parts, section)
        assert kept == old.split("\n")  # the parts given are not changed
        assert parts == new.split("\n"), commit.message
        assert "\n".join(parts) == apply_patch_section(old, section) == new
        checked += 1
    assert checked >= 25


def examples_digest(repo: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    count = 0
    for doc in CommitContext(ContextConfig()).run(CommitFilter().run(CommitReader([repo]).run()), 0, 1):
        digest.update(doc.text.encode())
        digest.update(json.dumps(doc.metadata, sort_keys=True, default=str).encode())
        count += 1
    return count, digest.hexdigest()


def test_kept_lines_give_the_same_examples_as_splitting_again(tmp_path, monkeypatch):
    """On this project's history, every example (text and metadata) is the same whether the context step keeps a
    rebuilt text's lines for the file's next patch or splits the text again; and lines are kept."""
    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(PROJECT), str(clone))
    kept: list[int] = []
    plain_rebuild = RepositoryContext._text_from_patches

    def counting(self, blob):
        found = plain_rebuild(self, blob)
        kept.append(len(self._lines))
        return found

    monkeypatch.setattr(RepositoryContext, "_text_from_patches", counting)
    with_lines = examples_digest(str(clone))
    assert max(kept) > 10
    monkeypatch.setattr(RepositoryContext, "keep_lines", False)
    kept.clear()
    assert examples_digest(str(clone)) == with_lines
    assert max(kept) == 0
    assert with_lines[0] > 50


def test_document_bytes_equals_encoding():
    """The ASCII shortcut counts what UTF-8 encoding counts: ASCII, accents, CJK, emoji, lone surrogates, empty
    text, control characters; a reader's ``size`` wins either way."""
    texts = [
        "",
        "plain ascii\n",
        "\x00\x7f\t",
        "café",
        "日本語のコード",
        "emoji 🙂 here",
        "lone \ud800 surrogate",
        "\x80",
    ]
    rng = random.Random(0)
    texts += [
        "".join(chr(rng.choice([rng.randrange(128), rng.randrange(0x10FFFF)])) for _ in range(50)) for _ in range(50)
    ]
    for text in texts:
        doc = Document(text=text, id="x")
        assert document_bytes(doc) == document_bytes_plain(doc) == len(text.encode("utf-8", "surrogatepass"))
        sized = Document(text=text, id="x", metadata={"size": 1234})
        assert document_bytes(sized) == document_bytes_plain(sized) == 1234


def test_tokens_learnt_for_renamed_files_equal_tokenizing_them(tmp_path, monkeypatch):
    """A file renamed or moved unchanged (to a deeper path, a path of other words, one with non-ASCII and stop
    words) gets the counts of its text read and tokenized under the new path; one renamed with an edit is left to
    be read. The examples are the same with and without the shortcut."""
    from datatrove_pipelines.commits.related import token_counts

    repo = tmp_path / "moves"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for name in ("textwrap.py", "heapq.py", "bisect.py", "colorsys.py"):
        (repo / name).write_text((STDLIB / name).read_text())
    (repo / "README.md").write_text("# moves\n")
    moves = [
        ("textwrap.py", "lib/textwrap.py"),
        ("heapq.py", "lib/the_heap/HeapQueue.py"),
        ("lib/textwrap.py", "lib/legacy/café_and_the_wrap.py"),
        ("bisect.py", "for/if/bisect_search.py"),
    ]
    commit = ["-c", "user.name=T", "-c", "user.email=t@e.org", "commit", "-q", "-m"]
    git(repo, "add", "-A")
    git(repo, *commit, "start")
    for old, new in moves:
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        git(repo, "mv", old, new)
        git(repo, *commit, f"Move {old}")
    (repo / "colours.py").write_text((repo / "colorsys.py").read_text() + "\n# edited while moved\n")
    git(repo, "rm", "-q", "colorsys.py")
    git(repo, "add", "-A")
    git(repo, *commit, "Move colorsys with an edit")

    docs = commit_documents(str(repo))
    state = RepositoryContext(str(repo), 20, ContextConfig())
    learnt = []
    try:
        for doc in docs[1:]:
            snapshot = state._read_snapshots([doc])[0]
            for path, blob in snapshot.items():
                state.tokens_for(path, blob)
            state.learn_tokens(doc, snapshot)
            for status, _, path, _, _, new_blob in doc.metadata["changes"]:
                if status == "R" and (path, new_blob) in state.tokens:
                    hashes, counts = state.tokens[(path, new_blob)]
                    whole_hashes, whole_counts = token_counts(f"{path}\n{state.texts([new_blob])[new_blob]}")
                    assert hashes.tolist() == whole_hashes.tolist() and counts.tolist() == whole_counts.tolist()
                    learnt.append(path)
    finally:
        state.close()
    assert learnt == [new for _, new in moves]
    with_renames = examples_digest(str(repo))
    monkeypatch.setattr(RepositoryContext, "learn_renames", False)
    assert examples_digest(str(repo)) == with_renames
