"""A file's new text from its old text and its git patch section, so the versions a history writes need not be read
back from ``cat-file`` (most of the blobs the context step reads are files the previous commits modified).

The result is only trusted when its git blob id is the one the commit records (``git_blob_id``): anything unusual
(a hunk that does not match, an unknown line, text that was decoded with replacements) gives another id and the
caller reads the blob from git as before.
"""

from __future__ import annotations

import hashlib
import re

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def git_blob_id(content: bytes, hash_bytes: int = 20) -> str:
    """The object id git gives a blob with this content (SHA-1, or SHA-256 in sha256 repositories)."""
    digest = hashlib.sha1() if hash_bytes == 20 else hashlib.sha256()
    digest.update(b"blob %d\0" % len(content))
    digest.update(content)
    return digest.hexdigest()


def apply_patch_section(old: str, section: str) -> str | None:
    """The text after one file's section of a unified git patch (``-U`` hunks, ``\\ No newline at end of file``
    markers); None where the section has no hunks or does not fit the old text. Lines are kept without their
    newlines (one ``split``, one ``join``): only the hunks are walked in Python."""
    parts = apply_patch_lines(old.split("\n"), section)
    return None if parts is None else "\n".join(parts)


def apply_patch_lines(parts: list[str], section: str) -> list[str] | None:
    """``apply_patch_section`` on texts split at their newlines (``text.split("\\n")``, so a final newline leaves an
    empty last part): a file patched again by a later commit starts from the parts the last rebuild gave instead of
    splitting its text again. ``parts`` is not changed."""
    lines = section.split("\n")
    at = 0
    while at < len(lines) and not lines[at].startswith("@@"):
        at += 1
    if at == len(lines):
        return None
    old_final = parts[-1] == ""  # the old text ends with a newline (or is empty)
    old_count_all = len(parts) - 1 if old_final else len(parts)
    out: list[str] = []
    last_newline = True
    position = 0  # next old line not yet copied
    while at < len(lines):
        match = _HUNK.match(lines[at])
        if match is None:
            if lines[at] == "" and at == len(lines) - 1:  # the section's final newline
                break
            return None
        old_start, old_count = int(match[1]), int(match[2]) if match[2] is not None else 1
        new_count = int(match[4]) if match[4] is not None else 1
        first = old_start - 1 if old_count else old_start  # an empty old range names the line it follows
        if first < position or first > old_count_all:
            return None
        if first > position:
            out.extend(parts[position:first])
            last_newline = first < old_count_all or old_final
        position = first
        at += 1
        body: list[list] = []  # [kind, line, ends with a newline]
        old_seen = new_seen = 0
        while at < len(lines) and (old_seen < old_count or new_seen < new_count or lines[at].startswith("\\")):
            line = lines[at]
            kind = line[:1]
            if kind == "\\":
                if not body:
                    return None
                body[-1][2] = False  # "\\ No newline at end of file": the line before has none
            elif kind in (" ", "-", "+"):
                body.append([kind, line[1:], True])
                old_seen += kind != "+"
                new_seen += kind != "-"
            else:
                return None
            at += 1
        if old_seen != old_count or new_seen != new_count:
            return None
        for kind, text, newline in body:
            if kind != "+":
                if position >= old_count_all or parts[position] != text:
                    return None
                if newline != (position < old_count_all - 1 or old_final):
                    return None
                position += 1
            if kind != "-":
                out.append(text)
                last_newline = newline
    if position < old_count_all:
        out.extend(parts[position:old_count_all])
        last_newline = old_final
    if not out or last_newline:
        out.append("")  # the final newline (or the empty text) as ``split`` gives it
    return out
