"""Tree-sitter syntax check: files whose parse tree contains an error are excluded ("syntax_error").

Every language whose grammar tree-sitter-language-pack bundles is checked (see ``languages.py``); the others pass and
are counted as ``unchecked`` (``funnel/syntax/note/unchecked``). Parsers are built once per grammar per task.

C, C++ and CUDA need two tests instead of one, because tree-sitter cannot expand preprocessor macros: real, compilable
headers (``PyAPI_FUNC(int) f(void);``, token pasting, ``extern "C" {`` split over ``#ifdef``s) parse with ERROR
regions, sometimes one ERROR node over the whole file whose contents are nonetheless parsed declarations.

1. Structure (``structure_issue``): a truncated or unbalanced file is excluded whatever tree-sitter makes of it:
   braces, parentheses and ``#if``/``#endif`` must balance outside comments, strings and character literals, no
   comment or string may be left open, and the file may not end in a MISSING node (other than the ``}`` / ``#endif``
   that the balance already vouches for) nor, when cut mid-line, in a token inside an ERROR node.
2. Damage: the share of bytes in ERROR nodes that tree-sitter could not parse into any structure (tokens directly
   inside ERROR nodes; a MISSING node counts one byte) may not exceed ``max_error_fraction`` (35%). Measured: every
   header of this Python installation passes both (the worst at 31%), 99% of /usr/include stays under 35%, the
   Python licence named ``.c`` scores 78%; random printable bytes or Python code named ``.c`` fail the structure
   test, and so do copies of the Python headers cut mid-line (tests/test_syntax_check.py).
Other languages tolerate no error at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelFilter
from datatrove_pipelines.languages import grammar_for

C_FAMILY = ("C", "C++", "CUDA")
PARSES = ("checked", "tolerated_errors")  # the outcomes of ``SyntaxCheckFilter.find_issue`` that keep the code


def _default_tolerances() -> dict[str, float]:
    return dict.fromkeys(C_FAMILY, 0.35)


@dataclass
class SyntaxCheckConfig:
    """``max_error_fraction``: per language, the share of unparsed bytes inside ERROR nodes still accepted (languages
    not listed: any parse error excludes the file). ``structure_languages``: languages whose files must also balance
    and must not end truncated (``structure_issue``)."""

    enabled: bool = True
    max_error_fraction: dict[str, float] = field(default_factory=_default_tolerances)
    structure_languages: tuple[str, ...] = C_FAMILY


def unparsed_error_fraction(root, size: int) -> float:
    """Share of the bytes inside ERROR nodes that no structure covers: tokens directly inside an ERROR node (comments
    aside) and MISSING nodes (one byte each); declarations, definitions and other nodes with children that
    tree-sitter did parse inside an ERROR node count as parsed. Walks only erroneous subtrees."""
    if not root.has_error:
        return 0.0
    covered = 0
    stack = [(root, False)]
    while stack:
        node, inside_error = stack.pop()
        if node.is_missing:
            covered += 1
        elif node.is_error:
            stack.extend((child, True) for child in node.children)
        elif inside_error and node.child_count == 0 and node.type != "comment":
            covered += node.end_byte - node.start_byte
        elif node.has_error:
            stack.extend((child, inside_error) for child in node.children)
    return min(covered / max(size, 1), 1.0)


# The C-family tokens that must balance, with what hides them (comments, strings, character literals); an opening
# "/*" or quote without its end matches only the unterminated alternatives.
_C_STRUCTURE_TOKEN = re.compile(
    rb"//[^\n]*|/\*.*?\*/|(?P<open_comment>/\*)|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'"
    rb"|(?P<bracket>[{}()])|^[ \t]*#[ \t]*(?P<directive>if|ifdef|ifndef|endif)\b",
    re.DOTALL | re.MULTILINE,
)
_OPENING = {b"{": b"}", b"(": b")"}
# The last token of a file cut inside a construct is a MISSING node that closes it, or a token tree-sitter could
# not fit (inside an ERROR node); these endings are whole constructs that the balance test already vouches for.
_BALANCED_ENDINGS = frozenset({"}", "#endif"})
_COMPLETE_LAST_TOKENS = frozenset({"}", ";", ")", "#endif", "preproc_directive", "\n"})


def _unbalanced(data: bytes) -> bool:
    """Whether braces, parentheses or #if/#endif do not balance (never closing more than is open) outside comments,
    strings and character literals, or a comment is left open."""
    depth = {b"{": 0, b"(": 0}
    conditionals = 0
    for match in _C_STRUCTURE_TOKEN.finditer(data):
        if match["open_comment"]:
            return True
        bracket, directive = match["bracket"], match["directive"]
        if bracket in _OPENING:
            depth[bracket] += 1
        elif bracket:
            opening = b"{" if bracket == b"}" else b"("
            depth[opening] -= 1
            if depth[opening] < 0:
                return True
        elif directive == b"endif":
            conditionals -= 1
            if conditionals < 0:
                return True
        elif directive:
            conditionals += 1
    return any(depth.values()) or conditionals != 0


def _truncated_end(root, data: bytes) -> bool:
    """Whether the file ends in a MISSING node other than a balanced closer, or (cut mid-line: no final newline) in a
    token tree-sitter could only put in an ERROR node."""
    node, inside_error = root, False
    while node.child_count:
        children = [child for child in node.children if child.type != "comment"]
        if not children:
            break
        node = children[-1]
        inside_error = inside_error or node.is_error
    if node.is_missing:
        return node.type not in _BALANCED_ENDINGS
    return inside_error and not data.endswith(b"\n") and node.type not in _COMPLETE_LAST_TOKENS


def structure_issue(root, data: bytes) -> str | None:
    """``unbalanced`` or ``truncated_end`` for a C-family file that is cut or unbalanced, else None."""
    if _unbalanced(data):
        return "unbalanced"
    if _truncated_end(root, data):
        return "truncated_end"
    return None


class SyntaxCheckFilter(FunnelFilter):
    """Excludes files tree-sitter cannot parse; languages without a bundled grammar pass as ``unchecked``. Excluded
    files say why in ``metadata.syntax_issue`` (``unbalanced``, ``truncated_end``, ``parse_errors``) and, for parse
    errors, ``metadata.syntax_error_fraction``."""

    def __init__(self, config: SyntaxCheckConfig | None = None, exclusion_writer: DiskWriter | None = None):
        super().__init__("syntax", exclusion_writer)
        self.config = config or SyntaxCheckConfig()
        self._parsers: dict[str, object] = {}

    def parser(self, grammar: str):
        if grammar not in self._parsers:
            from tree_sitter_language_pack import get_parser

            self._parsers[grammar] = get_parser(grammar)
        return self._parsers[grammar]

    def find_issue(self, text: str, language: str | None, path: str | None = None) -> tuple[str | None, float]:
        """(issue, unparsed error fraction) of ``text`` in ``language``: issue is ``unbalanced``, ``truncated_end``,
        ``parse_errors``, ``tolerated_errors``, ``checked``, or None when no grammar checks it (``unchecked``).
        The one definition of "does this code parse", for files and for code blocks in answers alike."""
        grammar = grammar_for(language, path)
        if not self.config.enabled or grammar is None:
            return None, 0.0
        data = text.encode("utf-8", errors="surrogatepass")
        root = self.parser(grammar).parse(data).root_node
        if language in self.config.structure_languages:
            issue = structure_issue(root, data)
            if issue:
                return issue, 0.0
        if not root.has_error:
            return "checked", 0.0
        tolerance = self.config.max_error_fraction.get(language, 0.0)
        fraction = unparsed_error_fraction(root, len(data))
        if fraction > tolerance or not tolerance:
            return "parse_errors", fraction
        return "tolerated_errors", fraction

    def check(self, doc: Document) -> str | None:
        issue, fraction = self.find_issue(doc.text, doc.metadata.get("language"), doc.metadata.get("path"))
        if issue is None:
            self.funnel_note("unchecked", doc)
            return None
        if issue in PARSES:
            if issue == "tolerated_errors":
                self.funnel_note("tolerated_errors", doc)
            self.funnel_note("checked", doc)
            return None
        doc.metadata["syntax_issue"] = issue
        if issue == "parse_errors":
            doc.metadata["syntax_error_fraction"] = round(fraction, 4)
        return "syntax_error"

    def __getstate__(self):  # parsers are C objects: rebuilt in each task, never pickled
        state = self.__dict__.copy()
        state["_parsers"] = {}
        return state
