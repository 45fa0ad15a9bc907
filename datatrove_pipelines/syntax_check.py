"""Tree-sitter syntax check: files whose parse tree contains an error are excluded ("syntax_error").

Every language whose grammar tree-sitter-language-pack bundles is checked (see ``languages.py``); the others pass and
are counted as ``unchecked`` (``funnel/syntax/note/unchecked``). Parsers are built once per grammar per task.
"""

from __future__ import annotations

from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from datatrove_pipelines.common import FunnelFilter
from datatrove_pipelines.languages import grammar_for


@dataclass
class SyntaxCheckConfig:
    enabled: bool = True


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
        if has_syntax_error(self.parser(grammar), doc.text):
            return "syntax_error"
        self.funnel_note("checked", doc)
        return None

    def __getstate__(self):  # parsers are C objects: rebuilt in each task, never pickled
        state = self.__dict__.copy()
        state["_parsers"] = {}
        return state
