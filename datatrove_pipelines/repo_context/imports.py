"""File dependencies inside a repository: tree-sitter finds the import/include nodes, the repo's paths resolve them.

Why tree-sitter queries and not regexes: only real ``import_statement`` / ``import_declaration`` / ``preproc_include``
nodes create edges, so an import mentioned in a comment or a string never does, and a file with syntax errors still
yields the imports tree-sitter could parse around the errors.

Resolution (against the repository's own paths; anything else, the standard library or a package, is no edge):
- Python: ``import a.b`` / ``from a.b import c`` resolve ``a/b.py``, ``a/b/__init__.py`` and (for ``c``) ``a/b/c.py``
  under any folder of the repo (src layouts), preferring the candidate closest to the importer; relative imports
  (``from ..m import x``) resolve from the importer's package.
- Java: ``import com.x.Y;`` is the file ``com/x/Y.java`` under any source root; ``com.x.*`` is every file of
  ``com/x/``; ``import static com.x.Y.m;`` is ``com/x/Y.java``.
- C/C++: ``#include "p"`` is ``p`` relative to the including file first, then any repo file whose path ends in ``/p``;
  ``#include <p>`` only the latter (a repo's own include folder).
- JavaScript/TypeScript: relative specifiers (``./a``, ``../b.js``) of ``import``/``export ... from`` and
  ``require("...")``, trying the usual extensions and ``index`` files; bare package names are no edge.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# language (languages.py names) -> the grammar whose imports we resolve
RESOLVED_LANGUAGES = {
    "Python": "python",
    "Java": "java",
    "C": "c",
    "C++": "cpp",
    "CUDA": "cpp",
    "JavaScript": "javascript",
    "TypeScript": "typescript",
}
QUERIES = {
    "python": "(import_statement) @import (import_from_statement) @import",
    "java": "(import_declaration) @import",
    "c": "(preproc_include path: (_) @path)",
    "cpp": "(preproc_include path: (_) @path)",
    "javascript": (
        "(import_statement source: (string) @source) (export_statement source: (string) @source)"
        " (call_expression function: (identifier) @function arguments: (arguments . (string) @source))"
    ),
    "typescript": (
        "(import_statement source: (string) @source) (export_statement source: (string) @source)"
        " (import_require_clause source: (string) @source)"
        " (call_expression function: (identifier) @function arguments: (arguments . (string) @source))"
    ),
}
QUERIES["tsx"] = QUERIES["typescript"]
JS_EXTENSIONS = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts", ".d.ts")


@dataclass(frozen=True)
class ImportSpec:
    """One import as written: ``kind`` (python, java, include, js), the target, and its details."""

    kind: str
    target: str  # python: dotted module ("" for "from . import x"); java: dotted name; include/js: the path
    level: int = 0  # python: leading dots
    names: tuple[str, ...] = ()  # python: the names of "from m import a, b"
    wildcard: bool = False  # java: ".*"
    static: bool = False  # java: "import static"
    system: bool = False  # include: <...>


def grammar_of(language: str | None, path: str) -> str | None:
    grammar = RESOLVED_LANGUAGES.get(language or "")
    if grammar == "typescript" and path.endswith(".tsx"):
        return "tsx"
    return grammar


class ImportExtractor:
    """Parsers and compiled queries, built once per grammar (C objects: rebuilt after unpickling)."""

    def __init__(self) -> None:
        self._tools: dict[str, tuple] = {}

    def __getstate__(self):
        return {"_tools": {}}

    def _tool(self, grammar: str):
        if grammar not in self._tools:
            from tree_sitter import Query, QueryCursor
            from tree_sitter_language_pack import get_language, get_parser

            query = Query(get_language(grammar), QUERIES[grammar])
            self._tools[grammar] = (get_parser(grammar), query, QueryCursor)
        return self._tools[grammar]

    def extract(self, grammar: str, source: bytes) -> tuple[list[ImportSpec], bool]:
        """The imports of one file and whether its parse tree has errors."""
        parser, query, cursor_type = self._tool(grammar)
        root = parser.parse(source).root_node
        specs: list[ImportSpec] = []
        for _, captures in cursor_type(query).matches(root):
            if grammar == "python":
                specs += _python_specs(captures["import"][0])
            elif grammar == "java":
                spec = _java_spec(captures["import"][0])
                if spec:
                    specs.append(spec)
            elif grammar in ("c", "cpp"):
                spec = _include_spec(captures["path"][0])
                if spec:
                    specs.append(spec)
            else:
                function = captures.get("function")
                if function and function[0].text != b"require":
                    continue
                text = _string_content(captures["source"][0])
                if text:
                    specs.append(ImportSpec("js", text))
        return specs, root.has_error


def _text(node) -> str:
    return node.text.decode("utf-8", errors="replace")


def _string_content(node) -> str:
    return _text(node)[1:-1] if node.type in ("string", "string_literal") else _text(node)


def _python_specs(node) -> list[ImportSpec]:
    if node.type == "import_statement":
        specs = []
        for child in node.children_by_field_name("name"):
            name = child.child_by_field_name("name") if child.type == "aliased_import" else child
            specs.append(ImportSpec("python", _text(name)))
        return specs
    module = node.child_by_field_name("module_name")
    if module is None:
        return []
    level, target = 0, ""
    if module.type == "relative_import":
        for child in module.children:
            if child.type == "import_prefix":
                level = len(_text(child).strip())
            elif child.type == "dotted_name":
                target = _text(child)
    else:
        target = _text(module)
    names = []
    for child in node.children_by_field_name("name"):
        name = child.child_by_field_name("name") if child.type == "aliased_import" else child
        names.append(_text(name))
    return [ImportSpec("python", target, level=level, names=tuple(names))]


def _java_spec(node) -> ImportSpec | None:
    name = next((c for c in node.children if c.type in ("scoped_identifier", "identifier")), None)
    if name is None:
        return None
    kinds = {c.type for c in node.children}
    return ImportSpec("java", _text(name), wildcard="asterisk" in kinds, static="static" in kinds)


def _include_spec(node) -> ImportSpec | None:
    if node.type == "system_lib_string":
        return ImportSpec("include", _text(node)[1:-1].strip(), system=True)
    if node.type == "string_literal":
        return ImportSpec("include", _string_content(node).strip())
    return None  # a macro include (#include FOO): cannot be resolved without the preprocessor


class RepoIndex:
    """The paths of one repository, indexed for the resolutions above."""

    def __init__(self, paths: Iterable[str]):
        self.paths = set(paths)
        self.python_modules: dict[str, list[str]] = defaultdict(list)  # dotted name under some root -> paths
        self.suffixes: dict[str, list[str]] = defaultdict(list)  # "x/y.h" -> paths ending in /x/y.h (or equal)
        self.java_dirs: dict[str, list[str]] = defaultdict(list)  # "com/x" -> .java files directly in */com/x
        for path in sorted(self.paths):
            parts = path.split("/")
            for start in range(len(parts)):
                self.suffixes["/".join(parts[start:])].append(path)
            if path.endswith((".py", ".pyi")):
                module = (
                    parts[:-1] if parts[-1] in ("__init__.py", "__init__.pyi") else [*parts[:-1], _stem(parts[-1])]
                )
                for start in range(len(module)):
                    self.python_modules[".".join(module[start:])].append(path)
            elif path.endswith(".java"):
                folder = parts[:-1]
                for start in range(len(folder) + 1):
                    self.java_dirs["/".join(folder[start:])].append(path)

    def resolve(self, importer: str, spec: ImportSpec) -> set[str]:
        if spec.kind == "python":
            found = self._python(importer, spec)
        elif spec.kind == "java":
            found = self._java(spec)
        elif spec.kind == "include":
            found = self._include(importer, spec)
        else:
            found = self._js(importer, spec)
        found.discard(importer)
        return found

    def _closest(self, importer: str, candidates: list[str]) -> str | None:
        """The candidate sharing the longest folder prefix with the importer (then the shortest, then by name)."""
        if not candidates:
            return None
        folder = importer.split("/")[:-1]

        def shared(path: str) -> int:
            count = 0
            for a, b in zip(folder, path.split("/")[:-1], strict=False):
                if a != b:
                    break
                count += 1
            return count

        return min(candidates, key=lambda path: (-shared(path), path.count("/"), path))

    def _python_file(self, folder: str, dotted: str) -> str | None:
        """The module file of ``dotted`` under ``folder`` ("" the repo root): ``x.py``, ``x.pyi`` or a package."""
        parts = [part for part in folder.split("/") if part] + (dotted.split(".") if dotted else [])
        base = "/".join(parts)
        prefix = f"{base}/" if base else ""
        options = ([f"{base}.py", f"{base}.pyi"] if base else []) + [f"{prefix}__init__.py", f"{prefix}__init__.pyi"]
        return next((option for option in options if option in self.paths), None)

    def _python(self, importer: str, spec: ImportSpec) -> set[str]:
        found: set[str] = set()
        if spec.level:
            folder = posixpath.dirname(importer)
            for _ in range(spec.level - 1):
                folder = posixpath.dirname(folder)
            module = self._python_file(folder, spec.target) if spec.target else None
            if module:
                found.add(module)
            for name in spec.names:
                dotted = f"{spec.target}.{name}" if spec.target else name
                submodule = self._python_file(folder, dotted)
                if submodule:
                    found.add(submodule)
            if not spec.target:  # "from . import x" runs the package's __init__ too
                package = self._python_file(folder, "")
                if package:
                    found.add(package)
            return found
        module = self._closest(importer, self.python_modules.get(spec.target, []))
        if module:
            found.add(module)
        for name in spec.names:
            submodule = self._closest(importer, self.python_modules.get(f"{spec.target}.{name}", []))
            if submodule:
                found.add(submodule)
        return found

    def _java(self, spec: ImportSpec) -> set[str]:
        parts = spec.target.split(".")
        if spec.wildcard:
            return set(self.java_dirs.get("/".join(parts), []))
        if spec.static:
            parts = parts[:-1]
        candidates = self.suffixes.get("/".join(parts) + ".java", [])
        return {min(candidates, key=lambda path: (path.count("/"), path))} if candidates else set()

    def _include(self, importer: str, spec: ImportSpec) -> set[str]:
        if not spec.target:
            return set()
        if not spec.system:
            local = posixpath.normpath(posixpath.join(posixpath.dirname(importer), spec.target))
            if local in self.paths:
                return {local}
        target = posixpath.normpath(spec.target)
        while target.startswith("../"):  # "../include/x.h" from elsewhere: match the part below the parents
            target = target[3:]
        best = self._closest(importer, self.suffixes.get(target, []))
        return {best} if best else set()

    def _js(self, importer: str, spec: ImportSpec) -> set[str]:
        if not spec.target.startswith("."):
            return set()  # a package, not a file of this repository
        base = posixpath.normpath(posixpath.join(posixpath.dirname(importer), spec.target))
        candidates = [base] + [base + ext for ext in JS_EXTENSIONS] + [f"{base}/index{ext}" for ext in JS_EXTENSIONS]
        for candidate in candidates:
            if candidate in self.paths:
                return {candidate}
        return set()


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]
