"""Driving git itself: finding repositories, measuring them, streaming their history, reading their objects.

Everything a repository gives goes through three long-lived git processes per repository, never one per commit:

* ``git log`` (``inspect_repository``): commit count, activity span, shallowness, for the selection;
* ``git log --reverse --topo-order -p --raw -z`` (``stream_commits``): every commit of HEAD's history, parents
  before children, with its message, its changed files (from ``--raw``: status, modes, blob ids, exact paths) and its
  patch, parsed from one streamed pipe;
* ``git cat-file --batch`` (``ObjectReader``): parent snapshots (trees, read recursively and memoised by tree id, so a
  snapshot costs only the directories that changed) and file contents.

Repository configuration cannot run commands here: external diff drivers and textconv filters are switched off, and
the diff options that change the output's shape (prefixes, renames, context, colour) are given explicitly.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

COMMIT_MARKER = b"\0\0COMMIT\0"
LOG_FORMAT = "%x00%x00COMMIT%x00%H %T %P%x00%an%x00%ae%x00%at%x00%B"
# Options that make ``git log -p`` output the same whatever the repository's or the user's configuration says.
SAFE_CONFIG = (
    "-c",
    "core.quotepath=off",
    "-c",
    "log.showSignature=false",
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "diff.relative=false",
    "-c",
    "safe.directory=*",  # clones owned by another user are read, not refused (nothing here runs their hooks)
)
DIFF_OPTIONS = (
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-abbrev",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "-U3",
    "-M",
    "--encoding=UTF-8",
)
# Variables that would point git at another repository than the one asked for.
_GIT_LOCATION_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


class GitError(RuntimeError):
    """git failed on a repository (the message is git's own, first line)."""


def git_environment(repo_path: str) -> dict[str, str]:
    """The environment for git on ``repo_path``: no discovery above it (a folder inside another checkout is not a
    repository), no prompts, no location overrides inherited from the caller."""
    env = {key: value for key, value in os.environ.items() if key not in _GIT_LOCATION_VARIABLES}
    env["GIT_CEILING_DIRECTORIES"] = os.path.dirname(os.path.abspath(repo_path))
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


def git_command(repo_path: str, *args: str) -> list[str]:
    return ["git", "-C", repo_path, *SAFE_CONFIG, *args]


def run_git(repo_path: str, *args: str) -> bytes:
    """Run one git command to completion; GitError with git's message on failure."""
    result = subprocess.run(git_command(repo_path, *args), capture_output=True, env=git_environment(repo_path))
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {args[0]} exited with {result.returncode}")
    return result.stdout


# --------------------------------------------------------------------------------------------------------------------
# Finding and measuring repositories
# --------------------------------------------------------------------------------------------------------------------


def looks_like_repository(path: str) -> bool:
    """A working tree with ``.git`` (folder or worktree file), or a bare repository."""
    return os.path.exists(os.path.join(path, ".git")) or (
        os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects"))
    )


def discover_repositories(inputs: list[str]) -> list[str]:
    """The repositories of ``inputs``, each a repository or a folder of clones (its sub-folders; those that are not
    repositories are returned too, to be excluded with a reason). A path that is neither is returned as is."""
    found: list[str] = []
    for path in inputs:
        path = os.path.normpath(path)
        if looks_like_repository(path) or not os.path.isdir(path):
            found.append(path)
            continue
        children = sorted(
            os.path.join(path, name)
            for name in os.listdir(path)
            if os.path.isdir(os.path.join(path, name)) and not name.startswith(".")
        )
        if any(looks_like_repository(child) for child in children):
            found.extend(children)
        else:
            found.append(path)  # neither a repository nor a folder of clones: excluded by the inspection
    return sorted(dict.fromkeys(found))


def repository_name(path: str) -> str:
    name = os.path.basename(os.path.normpath(os.path.abspath(path)))
    return name[:-4] if name.endswith(".git") and len(name) > 4 else name


@dataclass
class RepositoryInfo:
    """What the selection looks at; ``problem`` names why the repository cannot be read at all (else None)."""

    path: str
    name: str
    commits: int = 0
    first_commit_time: int = 0
    last_commit_time: int = 0
    shallow: bool = False
    hash_bytes: int = 20  # 20 (SHA-1) or 32 (SHA-256 repositories)
    problem: str | None = None
    detail: str = ""

    @property
    def active_days(self) -> float:
        return (self.last_commit_time - self.first_commit_time) / 86400


def inspect_repository(path: str) -> RepositoryInfo:
    """Measure a repository with two git calls; unreadable ones come back with ``problem`` set."""
    info = RepositoryInfo(path=path, name=repository_name(path))
    if not os.path.isdir(path):
        info.problem, info.detail = "not_a_git_repository", "no such directory"
        return info
    try:
        lines = run_git(path, "rev-parse", "--is-shallow-repository", "--show-object-format").split()
    except GitError as error:
        info.problem, info.detail = "not_a_git_repository", str(error)
        return info
    info.shallow = lines[0] == b"true"
    info.hash_bytes = 32 if len(lines) > 1 and lines[1] == b"sha256" else 20
    try:
        run_git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError:
        info.problem, info.detail = "empty_repository", "HEAD has no commit"
        return info
    try:
        times = [int(value) for value in run_git(path, "log", "--format=%ct", "HEAD").split()]
    except GitError as error:
        info.problem, info.detail = "git_error", str(error)
        return info
    info.commits = len(times)
    info.first_commit_time, info.last_commit_time = (min(times), max(times)) if times else (0, 0)
    return info


# --------------------------------------------------------------------------------------------------------------------
# Streaming the history
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class FileChange:
    """One changed file, from ``--raw``: status letter (A, M, D, R, C, T), paths, modes, blob ids."""

    status: str
    path: str  # the new path (the old one for deletions)
    old_path: str
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str


@dataclass
class CommitRecord:
    """One commit as ``git log`` streamed it. ``patch`` is git's patch text (bytes; empty for merges)."""

    sha: str
    tree: str
    parents: list[str]
    author_name: str
    author_email: str
    author_time: int
    message: str
    changes: list[FileChange] = field(default_factory=list)
    patch: bytes = b""
    patch_size: int = 0  # before ``max_patch_bytes`` cut it


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_commit(record: bytes, max_patch_bytes: int) -> CommitRecord:
    """One record of the stream (after the marker): header fields, then the raw entries, then the patch."""
    header, author_name, author_email, author_time, rest = record.split(b"\0", 4)
    ids = header.decode().split()
    message, _, rest = rest.partition(b"\0")
    commit = CommitRecord(
        sha=ids[0],
        tree=ids[1],
        parents=ids[2:],
        author_name=_decode(author_name),
        author_email=_decode(author_email),
        author_time=int(author_time or 0),
        message=message.decode("utf-8", "replace"),
    )
    items = rest.split(b"\0")
    position = 0
    while position < len(items):
        item = items[position].lstrip(b"\n")
        if not item.startswith(b":"):
            break
        old_mode, new_mode, old_blob, new_blob, status = item[1:].decode().split(" ")
        if status[0] in "RC":
            old_path, path = _decode(items[position + 1]), _decode(items[position + 2])
            position += 3
        else:
            old_path = path = _decode(items[position + 1])
            position += 2
        commit.changes.append(FileChange(status[0], path, old_path, old_mode, new_mode, old_blob, new_blob))
    patch = items[-1] if len(items) > position and items[-1].startswith(b"diff --git ") else b""
    commit.patch_size = len(patch)
    commit.patch = patch[:max_patch_bytes] if len(patch) > max_patch_bytes else patch
    return commit


class PipeReadAhead(threading.Thread):
    """Reads a pipe ahead of its consumer, up to ``max_chunks`` reads queued, so that the writer (``git log``, which
    computes the diffs) is not held up by a full pipe while the consumer ranks and serializes: the two run at the
    same time instead of taking turns. Its ``read1`` gives what the pipe's gave, in order, then ``b""``; an error
    reading is raised there."""

    def __init__(self, stream, chunk: int, max_chunks: int = 64):
        super().__init__(name="git-log-read-ahead", daemon=True)
        self.stream, self.chunk = stream, chunk
        self.chunks: queue.Queue[bytes] = queue.Queue(max_chunks)
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                data = self.stream.read1(self.chunk)
                if not data:
                    break
                self._put(data)
        except BaseException as error:  # handed to the consumer (a closed pipe after ``stop`` is no error)
            self.error = error
        finally:
            self._put(b"")

    def _put(self, data: bytes) -> None:
        while not self.stopped.is_set():
            try:
                self.chunks.put(data, timeout=0.1)
                return
            except queue.Full:
                continue

    def read1(self) -> bytes:
        data = self.chunks.get()
        if not data and self.error is not None and not self.stopped.is_set():
            raise self.error
        return data

    def stop(self) -> None:
        self.stopped.set()


def stream_commits(
    repo_path: str,
    max_patch_bytes: int = 1 << 24,
    revisions: list[str] | None = None,
    chunk: int = 1 << 20,
    read_ahead: bool = True,
) -> Iterator[CommitRecord]:
    """Every commit of ``revisions`` (HEAD's history), parents first, parsed from one ``git log`` pipe (read by a
    ``PipeReadAhead`` thread; ``read_ahead=False`` reads it here, the plain way the tests compare it with).

    Raises GitError after the last complete commit if git fails mid-way (e.g. a corrupt object): the commits before
    it were already yielded; the one being written when git died is not, and the caller reports it."""
    command = git_command(
        repo_path,
        "log",
        "--reverse",
        "--topo-order",
        "-p",
        "--raw",
        "-z",
        *DIFF_OPTIONS,
        f"--format={LOG_FORMAT}",
        *(revisions or ["HEAD"]),
        "--",
    )
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=git_environment(repo_path),
    )
    # the stream not yet cut into records, as the reads gave it: a large commit arrives over many reads, so they are
    # joined once a record ends (not copied into a growing buffer at every read) and the marker is searched in the
    # new data and the few bytes before it only
    pieces: list[bytes] = []
    size = 0  # bytes in pieces
    overlap = len(COMMIT_MARKER) - 1
    tail = b""  # the last ``overlap`` bytes of pieces
    start = -1  # where the first marker in pieces starts (-1: none yet)
    ahead = PipeReadAhead(process.stdout, chunk) if read_ahead else None
    if ahead is not None:
        ahead.start()
    try:
        while True:
            data = ahead.read1() if ahead is not None else process.stdout.read1(chunk)
            if not data:
                break
            window = tail + data
            offset = size - len(tail)  # where window starts in pieces
            pieces.append(data)
            size += len(data)
            tail = window[-overlap:]
            if start == -1:
                found = window.find(COMMIT_MARKER)
                if found == -1:
                    continue
                start = offset + found
            end = window.find(COMMIT_MARKER, max(start + 1 - offset, 0))
            if end == -1:
                continue
            buffer = b"".join(pieces) if len(pieces) > 1 else pieces[0]
            records = buffer[start + len(COMMIT_MARKER) :].split(COMMIT_MARKER)
            pieces = [COMMIT_MARKER + records.pop()]  # the last one may be incomplete
            size, tail, start = len(pieces[0]), pieces[0][-overlap:], 0
            for record in records:
                yield parse_commit(record, max_patch_bytes)
        buffer = b"".join(pieces)
        stderr = process.stderr.read()
        if process.wait() != 0:
            lines = stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(lines[-1] if lines else f"git log exited with {process.returncode}")
        if buffer.startswith(COMMIT_MARKER):
            yield parse_commit(buffer[len(COMMIT_MARKER) :], max_patch_bytes)
    finally:
        if ahead is not None:
            ahead.stop()
        if process.poll() is None:
            process.kill()
        if ahead is not None:
            ahead.join(timeout=10)  # git is gone: its read ends
        process.stdout.close()
        process.stderr.close()
        process.wait()


# --------------------------------------------------------------------------------------------------------------------
# Objects: trees and blobs through one cat-file process
# --------------------------------------------------------------------------------------------------------------------


class ObjectMissing(KeyError):
    """An object git cannot read (missing or corrupt)."""


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    sha: str


class ObjectReader:
    """``git cat-file --batch`` kept open for a repository; trees flattened and memoised by (tree id, prefix).

    A corrupt object can make cat-file die: the object is reported missing and the process is restarted."""

    MAX_CACHED_ENTRIES = 2_000_000  # flattened entries kept over all memoised trees (then the memo starts afresh)

    def __init__(self, repo_path: str, hash_bytes: int = 20):
        self.repo_path = repo_path
        self.hash_bytes = hash_bytes
        self._tree_entry = re.compile(rb"([0-7]+) ([^\0]*)\0(.{%d})" % hash_bytes, re.DOTALL)
        self._process: subprocess.Popen | None = None
        self._trees: dict[tuple[str, str], list[TreeEntry]] = {}
        self._raw_trees: dict[str, list[tuple[str, str, str]]] = {}  # tree id -> (mode, name, id) entries
        self._missing: set[str] = set()  # trees git could not read
        self._cached_entries = 0

    def _start(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                git_command(self.repo_path, "cat-file", "--batch"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=git_environment(self.repo_path),
            )
        return self._process

    def read(self, sha: str) -> tuple[str, bytes]:
        """(type, content) of an object; ObjectMissing when git cannot read it."""
        found = self.read_many([sha]).get(sha)
        if found is None:
            raise ObjectMissing(sha)
        return found

    def read_many(self, shas: list[str], batch: int = 256) -> dict[str, tuple[str, bytes] | None]:
        """(type, content) of many objects (None: missing or corrupt), asked for ``batch`` at a time: one pipe round
        trip per batch instead of one per object (the requests of a batch fit in the pipe, so git never waits on us
        while we wait on it)."""
        found: dict[str, tuple[str, bytes] | None] = {}
        wanted = list(dict.fromkeys(shas))
        for first in range(0, len(wanted), batch):
            chunk = wanted[first : first + batch]
            process = self._start()
            try:
                process.stdin.write("".join(f"{sha}\n" for sha in chunk).encode())
                process.stdin.flush()
                for sha in chunk:
                    header = process.stdout.readline().split()
                    if len(header) != 3:
                        if not header:  # cat-file died (a corrupt object can do that): the rest are unknown
                            raise BrokenPipeError(sha)
                        found[sha] = None
                        continue
                    size = int(header[2])
                    content = process.stdout.read(size + 1)[:-1]
                    if len(content) != size:
                        raise BrokenPipeError(sha)
                    found[sha] = (header[1].decode(), content)
            except (BrokenPipeError, OSError, ValueError):
                self.close()  # restarted by the next request; what this batch did not answer is asked one by one
                for sha in chunk:
                    if sha not in found:
                        found[sha] = self._read_alone(sha)
        return found

    def _read_alone(self, sha: str) -> tuple[str, bytes] | None:
        process = self._start()
        try:
            process.stdin.write(f"{sha}\n".encode())
            process.stdin.flush()
            header = process.stdout.readline().split()
            if len(header) != 3:
                return None
            size = int(header[2])
            content = process.stdout.read(size + 1)[:-1]
            return (header[1].decode(), content) if len(content) == size else None
        except (BrokenPipeError, OSError, ValueError):
            self.close()
            return None

    def commit_tree(self, sha: str) -> str:
        kind, content = self.read(sha)
        if kind != "commit" or not content.startswith(b"tree "):
            raise ObjectMissing(sha)
        return content[5 : content.index(b"\n")].decode()

    def _parse_tree(self, content: bytes) -> list[tuple[str, str, str]]:
        """(mode, name, object id) of each entry of a tree object (``<mode> <name>\\0<binary id>``)."""
        pattern = self._tree_entry
        return [
            (mode.decode(), name.decode("utf-8", "surrogateescape"), sha.hex())
            for mode, name, sha in pattern.findall(content)
        ]

    def flat_tree(self, tree_sha: str) -> list[TreeEntry]:
        """Every file of a tree (blobs, symlinks, submodules) with its path, in git's order; ObjectMissing if a tree
        of it cannot be read."""
        return self.flat_trees([tree_sha])[tree_sha]

    def flat_trees(self, roots: list[str]) -> dict[str, list[TreeEntry]]:
        """``flat_tree`` of several trees; the trees not seen before are read level by level, one batch per level
        for all of them. A root with an unreadable tree maps to an ObjectMissing instance instead of entries."""
        if self._cached_entries > self.MAX_CACHED_ENTRIES:  # start afresh (never in the middle of a flattening)
            self._trees.clear()
            self._raw_trees.clear()
            self._cached_entries = 0
        level = [sha for sha in dict.fromkeys(roots) if (sha, "") not in self._trees]
        while level:
            unread = [sha for sha in level if sha not in self._raw_trees and sha not in self._missing]
            objects = self.read_many(unread)
            for sha in unread:
                found = objects.get(sha)
                if found is None or found[0] != "tree":
                    self._missing.add(sha)
                else:
                    self._raw_trees[sha] = self._parse_tree(found[1])
            children = [
                child
                for sha in level
                if sha in self._raw_trees
                for mode, _, child in self._raw_trees[sha]
                if mode == "40000"
            ]
            level = [sha for sha in dict.fromkeys(children) if sha not in self._raw_trees and sha not in self._missing]
        result: dict[str, list[TreeEntry]] = {}
        for root in roots:
            try:
                result[root] = self._flatten(root, "")
            except ObjectMissing as error:
                result[root] = error  # type: ignore[assignment]
        return result

    def _flatten(self, tree_sha: str, prefix: str) -> list[TreeEntry]:
        key = (tree_sha, prefix)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        if tree_sha not in self._raw_trees:
            raise ObjectMissing(tree_sha)
        entries: list[TreeEntry] = []
        for mode, name, sha in self._raw_trees[tree_sha]:
            if mode == "40000":
                entries.extend(self._flatten(sha, f"{prefix}{name}/"))
            else:
                entries.append(TreeEntry(prefix + name, mode, sha))
        self._trees[key] = entries
        self._cached_entries += len(entries)
        return entries

    def close(self) -> None:
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None
