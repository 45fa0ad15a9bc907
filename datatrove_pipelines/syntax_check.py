"""Tree-sitter syntax check: files whose parse tree contains an error are excluded ("syntax_error").

Every language whose grammar tree-sitter-language-pack bundles is checked (see ``languages.py``); the others pass and
are counted as ``unchecked`` (``funnel/syntax/note/unchecked``). Parsers are built once per grammar per task.
For C-family languages a small share of ERROR bytes is tolerated, because tree-sitter cannot expand macros.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.funnel import FunnelFilter
from datatrove_pipelines.languages import grammar_for


def _default_tolerances() -> dict[str, float]:
    # tree-sitter does not expand C preprocessor macros: real, compilable headers (``PyAPI_FUNC(int) f(void);``,
    # glibc's ``__THROW``) parse with small ERROR regions. Measured on this machine's Python and /usr/include
    # headers: most clean headers stay under 5% of bytes in ERROR nodes; a genuinely broken small file is ~95%.
    return {"C": 0.1, "C++": 0.1, "CUDA": 0.1}


@dataclass
class SyntaxCheckConfig:
    """``max_error_fraction``: per language, the share of bytes inside ERROR/MISSING nodes still accepted
    (0 for languages not listed: any parse error excludes the file)."""

    enabled: bool = True
    max_error_fraction: dict[str, float] = field(default_factory=_default_tolerances)


def error_fraction(root, size: int) -> float:
    """Share of the bytes covered by ERROR nodes (a MISSING node counts as one byte); walks only erroneous subtrees."""
    if not root.has_error:
        return 0.0
    covered = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            covered += max(node.end_byte - node.start_byte, 1)
        elif node.has_error:
            stack.extend(node.children)
    return min(covered / max(size, 1), 1.0)


def has_syntax_error(parser, text: str) -> bool:
    """Whether tree-sitter finds an ERROR or MISSING node when parsing ``text``."""
    return parser.parse(text.encode("utf-8")).root_node.has_error


class SyntaxCheckFilter(FunnelFilter):
    """Excludes files tree-sitter cannot parse; languages without a bundled grammar pass as ``unchecked``."""

    def __init__(self, config: SyntaxCheckConfig | None = None, exclusion_writer: DiskWriter | None = None):
        super().__init__("syntax", exclusion_writer)
        self.config = config or SyntaxCheckConfig()
        self._parsers: dict[str, object] = {}

    def parser(self, grammar: str):
        if grammar not in self._parsers:
            from tree_sitter_language_pack import get_parser

            self._parsers[grammar] = get_parser(grammar)
        return self._parsers[grammar]

    def check(self, doc: Document) -> str | None:
        grammar = grammar_for(doc.metadata.get("language"), doc.metadata.get("path"))
        if not self.config.enabled or grammar is None:
            self.funnel_note("unchecked", doc)
            return None
        data = doc.text.encode("utf-8", errors="surrogatepass")
        root = self.parser(grammar).parse(data).root_node
        if root.has_error:
            tolerance = self.config.max_error_fraction.get(doc.metadata.get("language"), 0.0)
            fraction = error_fraction(root, len(data))
            if fraction > tolerance:
                doc.metadata["syntax_error_fraction"] = round(fraction, 4)
                return "syntax_error"
            self.funnel_note("tolerated_errors", doc)
        self.funnel_note("checked", doc)
        return None

    def __getstate__(self):  # parsers are C objects: rebuilt in each task, never pickled
        state = self.__dict__.copy()
        state["_parsers"] = {}
        return state
