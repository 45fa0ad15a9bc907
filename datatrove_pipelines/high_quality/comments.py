"""How much of a file is comments and docstrings: one of the seed criteria of the high-quality subset (paper §4).

With a tree-sitter grammar (languages.py) the comment nodes are counted (``comment``, ``line_comment``,
``block_comment``, ``doc_comment``...) and, for Python, docstrings (the first string statement of a module, class or
function); strings that are not docstrings are code. Without a grammar, lines starting with a common comment marker
count. The ratio is comment characters over non-whitespace characters.
"""

from __future__ import annotations

COMMENT_NODE_TYPES = ("comment", "line_comment", "block_comment", "doc_comment", "multiline_comment")
# the grammar puts a docstring directly in the block (older versions: inside an expression_statement); each pattern
# that compiles with the installed grammar is used
PYTHON_DOCSTRINGS = (
    "(module . (string) @doc)",
    "(function_definition body: (block . (string) @doc))",
    "(class_definition body: (block . (string) @doc))",
    "(module . (expression_statement (string) @doc))",
    "(function_definition body: (block . (expression_statement (string) @doc)))",
    "(class_definition body: (block . (expression_statement (string) @doc)))",
)
LINE_MARKERS = ("#", "//", "--", ";", "/*", "*", "%", "'", "<!--", "rem ", "REM ")


def _non_space(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def line_comment_ratio(text: str) -> float:
    """The fallback for languages without a grammar: share of non-space characters on comment-marker lines."""
    total = commented = 0
    for line in text.splitlines():
        stripped = line.strip()
        size = _non_space(stripped)
        total += size
        if stripped.startswith(LINE_MARKERS):
            commented += size
    return commented / total if total else 0.0


class CommentCounter:
    """Comment share per file; parsers and queries built once per grammar (rebuilt after unpickling)."""

    def __init__(self) -> None:
        self._tools: dict[str, tuple | None] = {}

    def __getstate__(self):
        return {"_tools": {}}

    def _tool(self, grammar: str):
        if grammar not in self._tools:
            from tree_sitter import Query, QueryCursor
            from tree_sitter_language_pack import get_language, get_parser

            language = get_language(grammar)
            patterns = []
            candidates = [f"({node_type}) @comment" for node_type in COMMENT_NODE_TYPES]
            for pattern in candidates + (list(PYTHON_DOCSTRINGS) if grammar == "python" else []):
                try:
                    Query(language, pattern)
                except Exception:  # this grammar has no such node type or shape
                    continue
                patterns.append(pattern)
            query = Query(language, " ".join(patterns)) if patterns else None
            self._tools[grammar] = (get_parser(grammar), query, QueryCursor) if query else None
        return self._tools[grammar]

    def ratio(self, text: str, grammar: str | None) -> float:
        tool = self._tool(grammar) if grammar else None
        if tool is None:
            return line_comment_ratio(text)
        parser, query, cursor_type = tool
        data = text.encode("utf-8", errors="surrogatepass")
        root = parser.parse(data).root_node
        spans = sorted(
            (node.start_byte, node.end_byte) for nodes in cursor_type(query).captures(root).values() for node in nodes
        )
        commented, end = 0, 0
        for start, stop in spans:  # nested captures (a comment inside a docstring's span) counted once
            start = max(start, end)
            if stop > start:
                commented += _non_space(data[start:stop].decode("utf-8", errors="replace"))
                end = stop
        total = _non_space(text)
        return min(1.0, commented / total) if total else 0.0
