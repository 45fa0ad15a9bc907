"""Our serialization of a commit example, and the token budget it is cut to (docs/commits.md shows one).

    <commit_message>            the message (the instruction)
    <readme path="README.md">   the README at the parent commit (if any)
    <repository_tree>           the parent snapshot's directory tree (collapsed around the change when long)
    <related_file path="...">   the top-5 BM25-related files at the parent, best first
    <changed_files>             the target, part 1: one line per file, "M path", "A path", "D path", "R old -> new"
    <diff>                      the target, part 2: git's unified diff (``index`` lines dropped), applies with git apply

The target is never cut: an example whose message and target alone exceed the budget is excluded. The context is
fitted to what is left, cutting the related files first (lowest ranked first), then the tree, then the README; a cut
section ends with a line saying how many lines were left out. Tokens are estimated as characters / ``chars_per_token``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+(?: [0-7]+)?\n", re.MULTILINE)


@dataclass
class BudgetConfig:
    max_tokens: int = 8192  # the whole example (pretraining stage 1 context)
    chars_per_token: float = 3.5  # code BPE tokenizers average ~3-4 characters per token
    readme_max_tokens: int = 1024
    tree_max_tokens: int = 768
    tree_max_entries: int = 200  # lines of the tree before directories away from the change are collapsed
    related_max_tokens: int = 1536  # per related file

    def chars(self, tokens: int) -> int:
        return int(tokens * self.chars_per_token)

    def tokens(self, text: str) -> int:
        return int(len(text) / self.chars_per_token + 0.999)


@dataclass
class CommitExample:
    message: str
    changes: list[tuple[str, str, str]]  # (status, old path, new path)
    diff: str
    readme: tuple[str, str] | None = None  # (path, text)
    tree: str = ""
    related: list[tuple[str, str]] = field(default_factory=list)  # (path, text), best first
    newlines: dict[str, int] = field(default_factory=dict)  # path -> newlines of its text, where already known
    # ``related_file_section`` as the caller memoizes it (a related file recurs over consecutive commits)
    related_section: Callable[[str, str, int, int | None], tuple[str, bool]] | None = None


def target_diff(patch: str) -> str:
    """git's patch without the ``index <blob>..<blob>`` lines (blob ids mean nothing to a model; git apply does not
    need them for text changes)."""
    return INDEX_LINE.sub("", patch)


def changed_files_lines(changes: list[tuple[str, str, str]]) -> str:
    lines = []
    for status, old_path, path in changes:
        lines.append(f"{status} {old_path} -> {path}" if status in "RC" and old_path != path else f"{status} {path}")
    return "\n".join(lines)


def truncate_lines(text: str, max_chars: int, newlines: int | None = None) -> tuple[str, bool]:
    """``text`` cut at a line end to at most ``max_chars`` (with the marker line), and whether it was cut.
    ``newlines``: ``text.count("\\n")`` where the caller knows it."""
    if len(text) <= max_chars:
        return text, False
    marker_room = 48
    cut = text.rfind("\n", 0, max(max_chars - marker_room, 0))
    kept = text[: cut + 1] if cut >= 0 else ""
    if newlines is None:
        newlines = _newlines(text)
    left_out = newlines - kept.count("\n") + (0 if text.endswith("\n") else 1)
    return f"{kept}… [{left_out} more lines]\n", True


@lru_cache(maxsize=64)
def _newlines(text: str) -> int:
    """Newlines of a whole text whose count the caller does not give: the tree listing recurs from commit to commit
    (the same cached string object, whose hash Python keeps), so its lines are counted once."""
    return text.count("\n")


def related_file_section(path: str, text: str, limit: int, newlines: int | None = None) -> tuple[str, bool]:
    """A related file's section, its text cut to ``limit`` characters, and whether it was cut."""
    body, was_cut = truncate_lines(text, limit, newlines)
    return _section("related_file", body, f' path="{path}"'), was_cut


def _section(tag: str, body: str, attributes: str = "") -> str:
    if body and not body.endswith("\n"):
        body += "\n"
    return f"<{tag}{attributes}>\n{body}</{tag}>\n"


def serialize(example: CommitExample, budget: BudgetConfig) -> tuple[str, dict] | None:
    """(text, info) of the example fitted to the budget; None when the message and target alone do not fit.
    ``info``: estimated tokens, the sections that were cut, the related files that made it in."""
    head = _section("commit_message", example.message.strip())
    target = _section("changed_files", changed_files_lines(example.changes)) + _section("diff", example.diff)
    room = budget.chars(budget.max_tokens) - len(head) - len(target)
    if room < 0:
        return None
    cut: list[str] = []
    context: list[str] = []
    if example.readme:
        path, text = example.readme
        overhead = len(_section("readme", "", f' path="{path}"'))
        limit = min(budget.chars(budget.readme_max_tokens), room - overhead)
        body, was_cut = truncate_lines(text, limit, example.newlines.get(path))
        if room - overhead > 0 and body.strip():
            context.append(_section("readme", body, f' path="{path}"'))
            room -= len(context[-1])
            if was_cut:
                cut.append("readme")
    if example.tree:
        overhead = len(_section("repository_tree", ""))
        body, was_cut = truncate_lines(example.tree, min(budget.chars(budget.tree_max_tokens), room - overhead))
        if room - overhead > 0 and body.strip():
            context.append(_section("repository_tree", body))
            room -= len(context[-1])
            if was_cut:
                cut.append("tree")
    related_paths = []
    section_of = example.related_section or related_file_section
    for path, text in example.related:
        overhead = len(_section("related_file", "", f' path="{path}"'))
        if room - overhead < 64:
            cut.append(f"related:{path}")
            continue
        limit = min(budget.chars(budget.related_max_tokens), room - overhead)
        section, was_cut = section_of(path, text, limit, example.newlines.get(path))
        context.append(section)
        room -= len(context[-1])
        related_paths.append(path)
        if was_cut:
            cut.append(f"related:{path}")
    text = "".join([head, *context, target])  # one copy of the whole example
    return text, {"tokens": budget.tokens(text), "cut": cut, "related_paths": related_paths}


def parse_target(text: str) -> tuple[list[str], str]:
    """(changed-file lines, diff) of a serialized example: what a model must produce, for checks and evaluation."""
    changed_start = text.rindex("\n<changed_files>\n") + 1  # diff lines start with " ", "+", "-": never this
    diff_start = text.index("<diff>\n", changed_start)
    changed = text[changed_start + len("<changed_files>\n") : text.index("</changed_files>\n", changed_start)]
    diff = text[diff_start + len("<diff>\n") :]
    if not diff.endswith("</diff>\n"):
        raise ValueError("not a serialized commit example: no closing </diff>")
    return [line for line in changed.splitlines() if line], diff[: -len("</diff>\n")]


# --------------------------------------------------------------------------------------------------------------------
# The directory tree
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class _Directory:
    entries: list[tuple[str, _Directory | None]]  # sorted: directories first, then files, each by name
    files: int


@lru_cache(maxsize=16)
def _directory_tree(paths: tuple[str, ...]) -> _Directory:
    """The nested, sorted directories of ``paths``; consecutive snapshots mostly share their paths, so it is cached."""
    root: dict = {}
    for path in paths:
        node = root
        parts = path.split("/")
        for part in parts[:-1]:
            child = node.get(part + "/")
            if child is None:
                child = node[part + "/"] = {}
            node = child
        node[parts[-1]] = None

    def build(node: dict) -> _Directory:
        entries = [
            (name, None if child is None else build(child))
            for name, child in sorted(node.items(), key=lambda item: (not item[0].endswith("/"), item[0]))
        ]
        return _Directory(entries, sum(1 if child is None else child.files for _, child in entries))

    return build(root)


def render_tree(paths: list[str], focus: set[str], max_entries: int) -> str:
    """An indented tree of ``paths``. Over ``max_entries`` lines, directories that hold none of the ``focus`` paths
    are shown collapsed (``name/ (N files)``); still over, the listing stops with a count of what is left.
    A listing that fits whole does not depend on ``focus``: it is rendered once per path set (consecutive commits
    mostly share theirs); ``render_tree_plain`` is the reference."""
    if len(paths) <= max_entries:
        text, count = _whole_listing(tuple(paths))
        if 0 < count <= max_entries:
            return text
    return render_tree_plain(paths, focus, max_entries)


@lru_cache(maxsize=16)
def _whole_listing(paths: tuple[str, ...]) -> tuple[str, int]:
    """The uncollapsed listing of ``paths`` and its number of lines."""
    text = render_tree_plain(list(paths), set(), max_entries=1 << 62)
    return text, text.count("\n")


def render_tree_plain(paths: list[str], focus: set[str], max_entries: int) -> str:
    """``render_tree`` rendered afresh every time."""
    root = _directory_tree(tuple(paths))
    focus_dirs = {"/".join(path.split("/")[:i]) + "/" for path in focus for i in range(1, path.count("/") + 1)}

    def lines_of(node: _Directory, prefix: str, depth: int, collapse: bool, lines: list[str]) -> None:
        indent = "  " * depth
        for name, child in node.entries:
            if child is None:
                lines.append(indent + name)
            elif collapse and prefix + name not in focus_dirs:
                lines.append(f"{indent}{name} ({child.files} files)")
            else:
                lines.append(indent + name)
                lines_of(child, prefix + name, depth + 1, collapse, lines)

    lines: list[str] = []
    if len(paths) <= max_entries:
        lines_of(root, "", 0, False, lines)
    if not lines or len(lines) > max_entries:
        lines = []
        lines_of(root, "", 0, True, lines)
    if len(lines) > max_entries:
        lines = lines[:max_entries] + [f"… [{len(lines) - max_entries} more entries]"]
    return "\n".join(lines) + ("\n" if lines else "")
