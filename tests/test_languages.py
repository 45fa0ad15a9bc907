"""The language map: all 89 paper languages, special file names, and real tree-sitter grammars behind it."""

from __future__ import annotations

import pytest
from tree_sitter_language_pack import get_parser

from datatrove_pipelines.languages import (
    AMBIGUOUS_EXTENSIONS,
    EXTENSION_OWNER,
    LANGUAGE_BY_KEY,
    LANGUAGE_SPECS,
    LANGUAGES,
    detect_language,
    grammar_for,
    language_aliases,
    language_key,
    language_spec,
    normalize_language,
    resolve_language,
)

PAPER_LANGUAGES = """ANTLR, Ada, Agda, Alloy, AppleScript, Assembly, Augeas, AWK, Batchfile, Bluespec, C, C#, C++,
CMake, CSS, Clojure, CoffeeScript, Common Lisp, CUDA, Dart, Dockerfile, Elixir, Elm, Emacs Lisp, Erlang, F#,
Fortran, GLSL, Go, Groovy, HTML, Haskell, Idris, Isabelle, JSON, Java, Java Server Pages, JavaScript, Julia, Kotlin,
Lean, Literate Agda, Literate CoffeeScript, Literate Haskell, Lua, Makefile, Maple, Markdown, Mathematica, MATLAB,
OCaml, PHP, Pascal, Perl, PowerShell, Prolog, Protocol Buffer, Python, R, RMarkdown, Racket, Ruby, Rust, SAS, SPARQL,
SQL, Scala, Scheme, Shell, Smalltalk, Solidity, Stan, Standard ML, Stata, Swift, SystemVerilog, Tcl, Tcsh, TeX,
Thrift, TypeScript, VHDL, Verilog, Visual Basic, XSLT, YAML, Yacc, Zig, reStructuredText"""


def test_exactly_the_89_paper_languages():
    paper = {name.strip() for name in PAPER_LANGUAGES.replace("\n", " ").split(",")}
    assert len(paper) == 89
    assert set(LANGUAGES) == paper


def test_every_language_is_detectable_from_a_file_name():
    for spec in LANGUAGE_SPECS:
        examples = [f"src/x{ext}" for ext in spec.extensions] + [f"src/{name}" for name in spec.filenames]
        assert examples, spec.name
        for example in examples:
            assert detect_language(example) == spec.name, example


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("Dockerfile", "Dockerfile"),
        ("docker/Dockerfile.prod", "Dockerfile"),
        ("Makefile", "Makefile"),
        ("lib/GNUmakefile", "Makefile"),
        ("CMakeLists.txt", "CMake"),
        ("cmake/FindFoo.cmake", "CMake"),
        ("a/b/module.PY", "Python"),
        ("include/stdio.h", "C"),
        ("x.hpp", "C++"),
        ("app.tsx", "TypeScript"),
        ("run.sh", "Shell"),
        (".bashrc", "Shell"),
        ("README", None),
        ("notes.txt", None),
        ("image.png", None),
    ],
)
def test_detect_language(path, language):
    assert detect_language(path) == language


def test_ambiguous_extensions_have_one_documented_owner():
    for extension in AMBIGUOUS_EXTENSIONS:
        assert extension in EXTENSION_OWNER
    assert EXTENSION_OWNER[".h"] == "C" and EXTENSION_OWNER[".pl"] == "Perl" and EXTENSION_OWNER[".m"] == "MATLAB"


def test_declared_labels_from_other_datasets_are_normalized():
    assert normalize_language("c++") == "C++"
    assert normalize_language("Python") == "Python"
    assert normalize_language("bash") == "Shell"
    assert normalize_language("Jupyter Notebook") is None
    assert resolve_language("x.py", "Roff") == "Python"  # unknown label: fall back to the path
    assert resolve_language("x.txt", "Go") == "Go"


def test_grammars_exist_and_parse_a_real_snippet():
    grammars = {spec.grammar for spec in LANGUAGE_SPECS if spec.grammar}
    grammars |= {g for spec in LANGUAGE_SPECS for g in spec.grammar_by_extension.values() if g}
    assert len(grammars) >= 60
    for grammar in sorted(grammars):
        assert get_parser(grammar) is not None, grammar
    assert not get_parser(grammar_for("Python", "a.py")).parse(b"def f(x):\n    return x\n").root_node.has_error
    assert get_parser(grammar_for("Python", "a.py")).parse(b"def f(:\n").root_node.has_error
    assert grammar_for("TypeScript", "a.tsx") == "tsx"
    assert grammar_for("Fortran", "old.f") is None  # fixed form: unchecked
    assert grammar_for("Lean", "a.lean") is None


# What eval/ needs from the one language home: the sandbox's language names (keys), the aliases it accepts, the
# MultiPL-E short names (file extensions), code-fence tags and the names prompts use.
SANDBOX_KEYS = {"Python": "python", "C++": "cpp", "Java": "java", "JavaScript": "javascript", "TypeScript": "typescript",
                "Rust": "rust", "Go": "go", "Shell": "bash"}  # fmt: skip
EVAL_ALIASES = {"py": "python", "python3": "python", "c++": "cpp", "cc": "cpp", "js": "javascript",
                "node": "javascript", "ts": "typescript", "rs": "rust", "golang": "go", "sh": "bash", "shell": "bash"}  # fmt: skip
MULTIPL_E_SHORT_NAMES = {"cpp": "cpp", "java": "java", "js": "javascript", "ts": "typescript", "go": "go", "rs": "rust",
                         "sh": "bash"}  # fmt: skip


def test_keys_and_aliases_serve_the_sandbox_prompts_and_benchmarks():
    for name, key in SANDBOX_KEYS.items():
        assert LANGUAGES[name].key == key and LANGUAGE_BY_KEY[key].name == name and language_key(key) == key
        assert language_key(name) == key and language_key(name.upper()) == key
    for alias, key in {**EVAL_ALIASES, **MULTIPL_E_SHORT_NAMES}.items():
        assert language_key(alias) == key, alias
        assert language_key(f"  {alias.upper()} ") == key
    for short, key in MULTIPL_E_SHORT_NAMES.items():  # MultiPL-E's short names are the languages' extensions
        assert detect_language(f"x.{short}") == LANGUAGE_BY_KEY[key].name
    assert language_key("Jupyter Notebook") is None and language_key(None) is None and language_spec("") is None
    assert language_spec("sh").prompt_name == "Bash" and language_spec("cpp").prompt_name == "C++"
    assert {"cpp", "c++", "cc"} <= language_aliases("cpp") and {"sh", "shell", "bash"} <= language_aliases("bash")
    assert {"py", "python"} <= language_aliases("Python") and "js" not in language_aliases("ts")
    assert language_aliases("unknown") == frozenset()


def test_every_key_and_alias_names_one_language():
    keys = [spec.key for spec in LANGUAGE_SPECS]
    assert len(set(keys)) == len(keys) == 89
    claimed: dict[str, str] = {}
    for spec in LANGUAGE_SPECS:
        for alias in language_aliases(spec.name):
            assert claimed.setdefault(alias, spec.name) == spec.name
            assert normalize_language(alias) == spec.name
        assert spec.key == spec.key.lower() and " " not in spec.key


def test_eval_has_no_language_tables_of_its_own():
    """eval/ resolves language names through this module (one home): no alias or display tables of its own, and
    what it derives agrees with the home."""
    from eval import benchmarks, prompts
    from eval.sandbox import languages as sandbox

    for module, table in ((sandbox, "ALIASES"), (benchmarks, "MULTIPL_E_SANDBOX_LANGUAGE")):
        assert not hasattr(module, table), f"{module.__name__}.{table} restates datatrove_pipelines.languages"
    for table in ("DISPLAY_LANGUAGE", "FENCE_LANGUAGE"):
        assert not hasattr(prompts, table), f"eval.prompts.{table} restates datatrove_pipelines.languages"
    for key in sandbox.LANGUAGES:
        assert language_key(key) == key
        for alias in language_aliases(key):
            assert sandbox.normalize_language(alias) == key
            fenced = f"```{alias}\nthe {key} code\n```"
            assert prompts.extract_code_block("```text\nnot code\n```\n" + fenced, key) == f"the {key} code\n"
