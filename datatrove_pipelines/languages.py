"""The one language map of the project: the 89 languages of the Seed-Coder paper, by extension and file name.

Each language has its extensions (lower-case, with the dot), exact file names (``Dockerfile``, ``CMakeLists.txt``),
and, where tree-sitter-language-pack bundles one, the grammar that checks its syntax. Some extensions need a
different grammar than the rest of their language (``.tsx``, OCaml ``.mli``); some are deliberately not checked
(fixed-form Fortran, which the bundled grammar does not parse). Where two languages claim an extension, the choice
follows GitHub linguist's most common use and is recorded once, in ``EXTENSION_OWNER``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LanguageSpec:
    """How to recognise one language and which tree-sitter grammar (if any) checks its syntax."""

    name: str
    extensions: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    grammar: str | None = None
    # extension -> grammar, where an extension needs another grammar than ``grammar`` (None: do not check it)
    grammar_by_extension: dict[str, str | None] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    # a short lower-case identifier: the sandbox's language names, code-fence tags, eval task names ("cpp", "bash")
    key: str = ""
    # how a prompt names it, where that differs from ``name`` (the sandbox runs Shell as bash)
    prompt_name: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", re.sub(r"[^a-z0-9+#]+", "-", self.name.lower()))
        if not self.prompt_name:
            object.__setattr__(self, "prompt_name", self.name)

    def grammar_for(self, path: str | None) -> str | None:
        """The grammar that checks a file of this language at ``path`` (None: no bundled grammar, unchecked)."""
        if path and self.grammar_by_extension:
            extension = _extension(path)
            if extension in self.grammar_by_extension:
                return self.grammar_by_extension[extension]
        return self.grammar


def _spec(name: str, extensions: str = "", filenames: str = "", grammar: str | None = None, **kwargs) -> LanguageSpec:
    return LanguageSpec(name, tuple(extensions.split()), tuple(filenames.split()), grammar, **kwargs)


# fmt: off
LANGUAGE_SPECS: tuple[LanguageSpec, ...] = (
    _spec("ANTLR", ".g4 .g"),
    _spec("Ada", ".adb .ads .ada", grammar="ada"),
    _spec("Agda", ".agda", grammar="agda"),
    _spec("Alloy", ".als"),
    _spec("AppleScript", ".applescript"),
    _spec("Assembly", ".asm .s .nasm .a51", grammar="asm"),
    _spec("Augeas", ".aug"),
    _spec("AWK", ".awk"),
    _spec("Batchfile", ".bat .cmd"),
    _spec("Bluespec", ".bsv"),
    _spec("C", ".c .h", grammar="c"),
    _spec("C#", ".cs .csx", grammar="csharp", aliases=("csharp", "c-sharp")),
    _spec("C++", ".cpp .cc .cxx .c++ .hpp .hh .hxx .h++ .ipp .tpp .inl", grammar="cpp", aliases=("cpp", "cc", "cxx"), key="cpp"),
    _spec("CMake", ".cmake", "CMakeLists.txt", grammar="cmake"),
    _spec("CSS", ".css", grammar="css"),
    _spec("Clojure", ".clj .cljs .cljc .edn", grammar="clojure"),
    _spec("CoffeeScript", ".coffee .cson", "Cakefile", aliases=("coffee",)),
    _spec("Common Lisp", ".lisp .lsp .cl .asd", grammar="commonlisp", aliases=("commonlisp", "lisp")),
    _spec("CUDA", ".cu .cuh", grammar="cuda"),
    _spec("Dart", ".dart", grammar="dart"),
    _spec("Dockerfile", ".dockerfile", "Dockerfile Containerfile", grammar="dockerfile", aliases=("docker",)),
    _spec("Elixir", ".ex .exs", grammar="elixir"),
    _spec("Elm", ".elm", grammar="elm"),
    _spec("Emacs Lisp", ".el", ".emacs _emacs", grammar="elisp", aliases=("elisp", "emacs-lisp")),
    _spec("Erlang", ".erl .hrl", "rebar.config", grammar="erlang"),
    _spec("F#", ".fs .fsx .fsi", grammar="fsharp", grammar_by_extension={".fsi": "fsharp_signature"},
          aliases=("fsharp", "f-sharp")),
    # the bundled grammar parses free-form Fortran; fixed-form files (.f .for .f77) pass unchecked
    _spec("Fortran", ".f90 .f95 .f03 .f08 .f .for .f77 .fpp", grammar="fortran",
          grammar_by_extension={".f": None, ".for": None, ".f77": None}),
    _spec("GLSL", ".glsl .vert .frag .geom .comp .tesc .tese .vs", grammar="glsl"),
    _spec("Go", ".go", grammar="go", aliases=("golang",), key="go"),
    _spec("Groovy", ".groovy .gradle .gvy .gy", "Jenkinsfile", grammar="groovy"),
    _spec("HTML", ".html .htm .xhtml", grammar="html"),
    _spec("Haskell", ".hs .hs-boot .hsc", grammar="haskell"),
    _spec("Idris", ".idr .lidr"),
    _spec("Isabelle", ".thy"),
    _spec("JSON", ".json .geojson .topojson .jsonc .webmanifest", ".babelrc .eslintrc .jshintrc", grammar="json"),
    _spec("Java", ".java", grammar="java", key="java"),
    _spec("Java Server Pages", ".jsp .jspf .tag", aliases=("jsp",)),
    _spec("JavaScript", ".js .mjs .cjs .jsx", grammar="javascript", aliases=("js", "node"), key="javascript"),
    _spec("Julia", ".jl", grammar="julia"),
    _spec("Kotlin", ".kt .kts", grammar="kotlin"),
    _spec("Lean", ".lean"),
    _spec("Literate Agda", ".lagda"),
    _spec("Literate CoffeeScript", ".litcoffee"),
    _spec("Literate Haskell", ".lhs"),
    _spec("Lua", ".lua", grammar="lua"),
    _spec("Makefile", ".mk .mak .make", "Makefile makefile GNUmakefile", grammar="make", aliases=("make",)),
    _spec("Maple", ".mpl .maple .mws"),
    _spec("Markdown", ".md .markdown .mdown .mkd .mkdn", grammar="markdown", aliases=("md",)),
    _spec("Mathematica", ".nb .wl .wls .ma .mt", aliases=("wolfram",)),
    _spec("MATLAB", ".m", grammar="matlab", aliases=("matlab",)),
    _spec("OCaml", ".ml .mli .mll .mly", grammar="ocaml",
          grammar_by_extension={".mli": "ocaml_interface", ".mll": None, ".mly": None}),
    _spec("PHP", ".php .phtml .php3 .php4 .php5 .phps", grammar="php"),
    _spec("Pascal", ".pas .pp .dpr .lpr .dfm", grammar="pascal", grammar_by_extension={".dfm": None},
          aliases=("delphi", "object pascal")),
    _spec("Perl", ".pl .pm .t .pod .psgi", grammar="perl", grammar_by_extension={".pod": None}),
    _spec("PowerShell", ".ps1 .psm1 .psd1", grammar="powershell", aliases=("pwsh",)),
    _spec("Prolog", ".pro .prolog .P"),
    _spec("Protocol Buffer", ".proto", grammar="proto", aliases=("protobuf", "proto")),
    _spec("Python", ".py .pyw .pyi .py3", "SConstruct SConscript", grammar="python", aliases=("py", "python3"),
          key="python"),
    _spec("R", ".r .rd .rsx", ".Rprofile", grammar="r", grammar_by_extension={".rd": None}),
    _spec("RMarkdown", ".rmd", aliases=("r markdown",)),
    _spec("Racket", ".rkt .rktl .rktd", grammar="racket"),
    _spec("Ruby", ".rb .rake .gemspec .rbw .ru", "Rakefile Gemfile Guardfile Vagrantfile", grammar="ruby"),
    _spec("Rust", ".rs", grammar="rust", aliases=("rs",), key="rust"),
    _spec("SAS", ".sas"),
    _spec("SPARQL", ".sparql .rq", grammar="sparql"),
    _spec("SQL", ".sql .ddl .dml .pgsql .psql", grammar="sql"),
    _spec("Scala", ".scala .sc .sbt", grammar="scala"),
    _spec("Scheme", ".scm .ss .sld .sls .sps", grammar="scheme"),
    _spec("Shell", ".sh .bash .zsh .ksh .bats", ".bashrc .bash_profile .profile .zshrc", grammar="bash",
          grammar_by_extension={".zsh": None, ".ksh": None}, aliases=("bash", "sh", "zsh"), key="bash",
          prompt_name="Bash"),
    _spec("Smalltalk", ".st"),
    _spec("Solidity", ".sol", grammar="solidity"),
    _spec("Stan", ".stan"),
    _spec("Standard ML", ".sml .sig .fun", aliases=("sml",)),
    _spec("Stata", ".do .ado .doh .mata"),
    _spec("Swift", ".swift", grammar="swift"),
    _spec("SystemVerilog", ".sv .svh", grammar="verilog"),
    _spec("Tcl", ".tcl .tk .itcl", grammar="tcl"),
    _spec("Tcsh", ".tcsh .csh"),
    _spec("TeX", ".tex .sty .cls .ltx .dtx .ins", grammar="latex", aliases=("latex",)),
    _spec("Thrift", ".thrift", grammar="thrift"),
    _spec("TypeScript", ".ts .mts .cts .tsx", grammar="typescript", grammar_by_extension={".tsx": "tsx"},
          aliases=("ts", "tsx"), key="typescript"),
    _spec("VHDL", ".vhd .vhdl", grammar="vhdl"),
    _spec("Verilog", ".v .vh", grammar="verilog"),
    _spec("Visual Basic", ".vb .vbs .bas .vba .frm", aliases=("vb", "vba", "visual basic .net", "vbscript")),
    _spec("XSLT", ".xsl .xslt", grammar="xml"),
    _spec("YAML", ".yml .yaml", ".clang-format .clang-tidy", grammar="yaml", aliases=("yml",)),
    _spec("Yacc", ".y .yacc .yy", aliases=("bison",)),
    _spec("Zig", ".zig", grammar="zig"),
    _spec("reStructuredText", ".rst .rest", grammar="rst", aliases=("rst", "restructuredtext")),
)
# fmt: on

LANGUAGES: dict[str, LanguageSpec] = {spec.name: spec for spec in LANGUAGE_SPECS}

# Extensions several languages could claim; the owner is the language that lists it above. Kept as a record of the
# decision (checked by the tests): .h -> C (not C++/Objective-C), .m -> MATLAB (not Objective-C/Mathematica),
# .pl -> Perl (not Prolog), .v -> Verilog (not Coq), .cl -> Common Lisp (not OpenCL), .fs -> F# (not GLSL),
# .cls -> TeX (not Visual Basic), .pp -> Pascal (not Puppet), .t -> Perl (tests), .sc -> Scala, .st -> Smalltalk.
AMBIGUOUS_EXTENSIONS = (".h", ".m", ".pl", ".v", ".cl", ".fs", ".cls", ".pp", ".t", ".sc", ".st")

EXTENSION_OWNER: dict[str, str] = {}
_CASE_SENSITIVE_EXTENSIONS: dict[str, str] = {}
FILENAME_OWNER: dict[str, str] = {}
for _spec_entry in LANGUAGE_SPECS:
    for _extension in _spec_entry.extensions:
        if _extension != _extension.lower():  # e.g. Prolog's ".P": only the exact spelling
            _CASE_SENSITIVE_EXTENSIONS[_extension] = _spec_entry.name
            continue
        if _extension in EXTENSION_OWNER:
            raise ValueError(f"extension {_extension} claimed by {EXTENSION_OWNER[_extension]} and {_spec_entry.name}")
        EXTENSION_OWNER[_extension] = _spec_entry.name
    for _filename in _spec_entry.filenames:
        FILENAME_OWNER[_filename] = _spec_entry.name  # exact names, dot-files included (.bashrc)

_ALIASES: dict[str, str] = {}
LANGUAGE_BY_KEY: dict[str, LanguageSpec] = {}
for _spec_entry in LANGUAGE_SPECS:
    for _alias in {_spec_entry.name.lower(), _spec_entry.key, *(alias.lower() for alias in _spec_entry.aliases)}:
        if _ALIASES.get(_alias, _spec_entry.name) != _spec_entry.name:
            raise ValueError(f"alias {_alias!r} claimed by {_ALIASES[_alias]} and {_spec_entry.name}")
        _ALIASES[_alias] = _spec_entry.name
    if _spec_entry.key in LANGUAGE_BY_KEY:
        raise ValueError(f"key {_spec_entry.key!r} of {LANGUAGE_BY_KEY[_spec_entry.key].name} and {_spec_entry.name}")
    LANGUAGE_BY_KEY[_spec_entry.key] = _spec_entry


def _extension(path: str) -> str:
    """The lower-cased extension of ``path``."""
    name = os.path.basename(path)
    _, extension = os.path.splitext(name)
    return extension.lower()


def detect_language(path: str) -> str | None:
    """The language of a file from its name, or None if it is none of the 89 languages.

    Exact file names win (``Dockerfile``, ``CMakeLists.txt``, ``Makefile``), then ``Dockerfile.<x>`` and
    ``Makefile.<x>`` variants, then the extension.
    """
    name = os.path.basename(path)
    if name in FILENAME_OWNER:
        return FILENAME_OWNER[name]
    stem, extension = os.path.splitext(name)
    if stem in ("Dockerfile", "Containerfile"):
        return "Dockerfile"
    if stem in ("Makefile", "makefile", "GNUmakefile"):
        return "Makefile"
    if extension in _CASE_SENSITIVE_EXTENSIONS:
        return _CASE_SENSITIVE_EXTENSIONS[extension]
    return EXTENSION_OWNER.get(extension.lower())


def normalize_language(name: str | None) -> str | None:
    """Map a language label from another dataset (``c++``, ``Python``, ``shell``) to ours, or None if unknown."""
    if not name:
        return None
    return _ALIASES.get(str(name).strip().lower())


def resolve_language(path: str | None, declared: str | None = None) -> str | None:
    """The language of a document: its declared label when that is one of ours, else the one its path implies."""
    return normalize_language(declared) or (detect_language(path) if path else None)


def grammar_for(language: str | None, path: str | None = None) -> str | None:
    """The tree-sitter-language-pack grammar that checks ``language`` (at ``path``), or None if there is none."""
    spec = LANGUAGES.get(language) if language else None
    return spec.grammar_for(path) if spec else None


def languages_with_grammar() -> list[str]:
    return [spec.name for spec in LANGUAGE_SPECS if spec.grammar]


def language_spec(label: str | None) -> LanguageSpec | None:
    """The language a label names: its name, key or an alias in any case (``"c++"``, ``"cpp"``, ``"js"``, ``"sh"``,
    ``"rs"``, ``"golang"``), or None."""
    name = normalize_language(label)
    return LANGUAGES[name] if name else None


def language_key(label: str | None) -> str | None:
    """The short key (``"cpp"``, ``"javascript"``, ``"bash"``) of the language a label names, or None: what the
    sandbox, code fences and MultiPL-E task names (``"rs"`` -> ``"rust"``) go by."""
    spec = language_spec(label)
    return spec.key if spec else None


def language_aliases(label: str | None) -> frozenset[str]:
    """Every lower-case name of the language a label names (name, key, aliases): e.g. the code-fence tags an answer
    in that language may carry (``{"c++", "cpp", "cc"}``). Empty when the label names none of ours."""
    spec = language_spec(label)
    if spec is None:
        return frozenset()
    return frozenset(alias for alias, name in _ALIASES.items() if name == spec.name)
