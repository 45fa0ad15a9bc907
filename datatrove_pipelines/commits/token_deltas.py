"""Token counts of a file's new version learnt from its old counts and its patch section: tokens never span lines,
so the new bag is the old one minus the removed lines' tokens plus the added lines' tokens. ``delta_tokens`` is the
plain version; ``apply_token_delta`` (what the context step runs for every file a commit modifies) is tested
against it.
"""

from __future__ import annotations

import re

import numpy as np

from datatrove_pipelines.commits.related import Tokens, split_token_hashes

_ADDED_LINE = re.compile(r"^\+(.*)", re.MULTILINE)
_REMOVED_LINE = re.compile(r"^-(.*)", re.MULTILINE)


def changed_lines(section: str) -> tuple[str, str]:
    """The added lines and the removed lines of a patch section (each joined by newlines, markers dropped): two
    regular-expression scans of the hunks (from the first ``@@`` line on) instead of a loop over every line;
    ``changed_lines_plain`` is the reference."""
    hunks = 0 if section.startswith("@@") else section.find("\n@@") + 1
    if not hunks and not section.startswith("@@"):
        return "", ""
    return "\n".join(_ADDED_LINE.findall(section, hunks)), "\n".join(_REMOVED_LINE.findall(section, hunks))


def changed_lines_plain(section: str) -> tuple[str, str]:
    """``changed_lines`` one line at a time."""
    added, removed = [], []
    in_hunk = False
    for line in section.split("\n"):
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            added.append(line[1:])
        elif in_hunk and line.startswith("-"):
            removed.append(line[1:])
    return "\n".join(added), "\n".join(removed)


def delta_tokens(old: Tokens, section: str) -> Tokens:
    """The token counts of a file after a patch section, from its counts before: tokens never span lines, so the new
    bag is the old one minus the removed lines' tokens plus the added lines' tokens. The plain version (one
    ``np.unique`` over everything) that ``apply_token_delta`` is tested against."""
    plus, minus = split_token_hashes(*changed_lines(section))
    hashes = np.concatenate([old[0], plus, minus])
    weights = np.concatenate([old[1], np.ones(len(plus)), -np.ones(len(minus))])
    unique, inverse = np.unique(hashes, return_inverse=True)
    counts = np.bincount(inverse, weights=weights, minlength=len(unique))
    keep = counts > 0.5
    return unique[keep], counts[keep]


def apply_token_delta(old: Tokens, plus: np.ndarray, minus: np.ndarray) -> Tokens:
    """``delta_tokens`` given the added and removed lines' token hashes: the few changed tokens are merged into the
    sorted old counts by binary search instead of re-sorting the whole file's tokens (it runs for every file every
    commit modifies, so its numpy calls are few: one sort of the changed tokens, one merge instead of inserts)."""
    old_hashes, old_counts = old
    changed = np.concatenate([plus, minus])
    if not len(changed):
        keep = old_counts > 0.5
        return old_hashes[keep], old_counts[keep]
    order = np.argsort(changed, kind="stable")
    changed = changed[order]
    first = np.empty(len(changed), dtype=bool)
    first[0] = True
    np.not_equal(changed[1:], changed[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    delta = np.add.reduceat(np.where(order < len(plus), 1.0, -1.0), starts)  # whole numbers: exact in any order
    changed = changed[starts]
    at = np.searchsorted(old_hashes, changed)
    known = np.zeros(len(changed), dtype=bool)
    inside = at < len(old_hashes)
    known[inside] = old_hashes[at[inside]] == changed[inside]
    counts = old_counts.copy()
    counts[at[known]] += delta[known]
    new = ~known & (delta > 0.5)
    if new.any():  # merge: the new tokens go before the old token at their binary-search position
        slots = at[new] + np.arange(int(new.sum()))
        is_new = np.zeros(len(old_hashes) + len(slots), dtype=bool)
        is_new[slots] = True
        hashes = np.empty(len(is_new), dtype=old_hashes.dtype)
        hashes[slots] = changed[new]
        hashes[~is_new] = old_hashes
        merged = np.empty(len(is_new), dtype=counts.dtype)
        merged[slots] = delta[new]
        merged[~is_new] = counts
        counts = merged
    else:
        hashes = old_hashes
    keep = counts > 0.5
    return hashes[keep], counts[keep]
