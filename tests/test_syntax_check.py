"""The syntax step on real C headers (those of this Python installation: all must pass) and on truncated,
unbalanced and garbage copies of them (all must fail), with the real tree-sitter grammars."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest
from datatrove.data import Document

from datatrove_pipelines import syntax_check
from datatrove_pipelines.syntax_check import SyntaxCheckFilter

INCLUDE = Path(sysconfig.get_paths()["include"])
HEADERS = sorted(INCLUDE.rglob("*.h")) if INCLUDE.is_dir() else []
needs_headers = pytest.mark.skipif(len(HEADERS) < 50, reason=f"no Python C headers under {INCLUDE}")


def check(text: str, language: str = "C", path: str = "x.h") -> tuple[str | None, dict]:
    doc = Document(text=text, id=path, metadata={"language": language, "path": path})
    return SyntaxCheckFilter().check(doc), doc.metadata


def truncations(text: str, rng: random.Random, count: int = 3) -> list[str]:
    """Copies cut in the middle of a code line past the first fifth of the file (not in a comment line, not a
    preprocessor line): what a download or a copy cut short leaves."""
    lines = text.split("\n")
    code_lines = [
        index
        for index, line in enumerate(lines)
        if index > len(lines) // 5 and len(line.strip()) > 8 and not line.strip().startswith(("/*", "*", "//", "#"))
    ]
    cuts = rng.sample(code_lines, min(count, len(code_lines)))
    return ["\n".join(lines[:index]) + "\n" + lines[index][: len(lines[index]) // 2] for index in cuts]


@needs_headers
def test_every_real_python_header_passes():
    failures = {}
    for path in HEADERS:
        reason, metadata = check(path.read_text(encoding="utf-8", errors="replace"), path=str(path))
        if reason:
            failures[str(path.relative_to(INCLUDE))] = {k: v for k, v in metadata.items() if k.startswith("syntax")}
    assert failures == {}
    # the headers do exercise the tolerance: macro-heavy ones parse with ERROR nodes
    step = SyntaxCheckFilter()
    for path in HEADERS:
        step.check(
            Document(text=path.read_text(encoding="utf-8", errors="replace"), id="h", metadata={"language": "C"})
        )
    assert step.stats["funnel/syntax/note/tolerated_errors/docs"].n >= 5


@needs_headers
def test_truncated_copies_of_the_real_headers_fail():
    rng = random.Random(0)
    issues = {}
    total = 0
    for path in HEADERS:
        for text in truncations(path.read_text(encoding="utf-8", errors="replace"), rng):
            total += 1
            reason, metadata = check(text, path=str(path))
            assert reason == "syntax_error", (path, text[-120:])
            issues[metadata["syntax_issue"]] = issues.get(metadata["syntax_issue"], 0) + 1
    assert total > 300 and issues.keys() >= {"unbalanced", "truncated_end"}


@needs_headers
def test_an_unclosed_block_at_the_end_fails_even_when_tree_sitter_tolerates_it():
    """The issue's case: a C file whose last block is never closed parses with a few MISSING nodes, far below the
    error tolerance; it is a truncated file all the same."""
    header = (INCLUDE / "object.h").read_text(encoding="utf-8")
    cut = header[: header.index("{", len(header) // 2) + 1] + "\n    int field;\n"
    reason, metadata = check(cut)
    assert reason == "syntax_error" and metadata["syntax_issue"] == "unbalanced"
    assert check("int f(void) {\n  return 1;\n")[1]["syntax_issue"] == "unbalanced"
    assert check("int f(void) {\n  return 1;\n}\n")[0] is None
    assert check("/* a comment never closed\nint x;\n")[1]["syntax_issue"] == "unbalanced"
    assert check("int x = f(1,\n")[1]["syntax_issue"] == "unbalanced"
    assert check("#ifndef X_H\n#define X_H\nint x;\n")[1]["syntax_issue"] == "unbalanced"
    assert check("int x;\ntypedef ")[1]["syntax_issue"] == "truncated_end"


def test_braces_in_comments_strings_and_characters_do_not_count():
    text = "/* { */\n// (\nconst char *s = \"}{)(\";\nchar c = '{';\nint f(void) { return 0; }\n"
    assert check(text)[0] is None
    assert check('const char *s = "never closed;\n')[0] == "syntax_error"


def test_garbage_named_c_fails():
    """Prose, random printable bytes and Python code named .c: excluded, by the damage or the structure test."""
    rng = random.Random(1)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    words = " ".join(rng.choice(["the", "a", "file", "of", "words", "and", "more"]) for _ in range(400)) + "\n"
    printable = "".join(chr(rng.randrange(32, 127)) for _ in range(3000)) + "\n"
    texts = [words, printable, (stdlib / "textwrap.py").read_text(encoding="utf-8")]
    for text in texts:
        assert check(text)[0] == "syntax_error"
    license_path = stdlib / "LICENSE.txt"
    if license_path.is_file():  # balanced prose: the unparsed share decides
        prose = license_path.read_text(encoding="utf-8").replace("(", "").replace(")", "") + "\n"
        reason, metadata = check(prose)
        assert reason == "syntax_error" and metadata["syntax_issue"] == "parse_errors"
        assert metadata["syntax_error_fraction"] > 0.5


def test_other_languages_tolerate_no_error():
    assert check("def f(x):\n    return x\n", "Python", "a.py")[0] is None
    reason, metadata = check("def f(x:\n    return x\n", "Python", "a.py")
    assert reason == "syntax_error" and metadata["syntax_issue"] == "parse_errors"
    assert check("fn main() {}\n", "Lean", "a.lean")[0] is None  # no grammar: unchecked


def test_no_dead_code_left():
    assert not hasattr(syntax_check, "has_syntax_error")
