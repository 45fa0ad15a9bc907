"""The end marker: how a test program proves that its last test ran, in every sandbox language.

Exit status 0 alone is not a pass: a program that calls ``sys.exit(0)``, ``os._exit(0)``, ``process.exit(0)``,
``os.Exit(0)``, ``std::exit(0)``, ``System.exit(0)`` or ``exit 0`` before its tests also exits 0. So every test
program gets a fresh random marker printed *after* its last test, and the sandbox (``run_program(...,
end_marker=...)``) reports ``passed`` only for exit 0 together with the marker in the output.

Where the marker goes, per language (MultiPL-E's harness shapes, and any program of the same shape):

* Python, JavaScript, TypeScript, Bash: a print appended at the end of the program.
* Go (``go test``): one more test function appended; tests run in source order, so it runs last.
* C++, Rust: a local object at the top of the *last* ``main`` whose destructor (``Drop``) prints the marker. It
  runs when ``main`` returns (also through ``return``), never through ``exit``/``process::exit``/``abort``.
* Java: the body of the last ``static void main`` wrapped in ``try { ... } finally { print }``; ``System.exit``
  skips ``finally``.

The marker proves that control reached the end of the tests; it is not a secret from a program that reads its own
source file (a hostile program can also rewrite its tests; the sandbox contains it, the verdict cannot).
"""

from __future__ import annotations

import json
import re
import secrets

from eval.sandbox import languages


def new_end_marker() -> str:
    """A fresh random marker (one per execution)."""
    return f"@@seed-coder-end-{secrets.token_hex(12)}@@"


class NoPlaceForEndMarker(ValueError):
    """The program has no ``main`` (C++, Rust, Java) to put the marker in: it cannot be judged."""


_CPP_MAIN = re.compile(r"\bint\s+main\s*\([^)]*\)\s*\{")
_RUST_MAIN = re.compile(r"\bfn\s+main\s*\(\s*\)\s*\{")
_JAVA_MAIN = re.compile(r"\bstatic\s+void\s+main\s*\([^)]*\)\s*(?:throws\s+[\w.,\s]+)?\{")


def _last_match(pattern: re.Pattern[str], program: str, language: str) -> re.Match[str]:
    matches = list(pattern.finditer(program))
    if not matches:
        raise NoPlaceForEndMarker(f"no main function in the {language} program to place the end marker in")
    return matches[-1]


def matching_brace(code: str, open_at: int) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``open_at``, skipping string/char literals and comments."""
    depth, i, n = 0, open_at, len(code)
    while i < n:
        char = code[i]
        if code.startswith("//", i):
            newline = code.find("\n", i)
            i = n if newline < 0 else newline
        elif code.startswith("/*", i):
            end = code.find("*/", i + 2)
            i = n if end < 0 else end + 1
        elif char in "\"'":
            i += 1
            while i < n and code[i] != char and code[i] != "\n":
                i += 2 if code[i] == "\\" else 1
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def with_end_marker(language: str, program: str, marker: str) -> str:
    """``program`` with ``marker`` printed after its last test; raises :class:`NoPlaceForEndMarker` if it cannot."""
    lang = languages.normalize_language(language)
    quoted = json.dumps(marker)  # a valid string literal in every language here (the marker is plain ASCII)
    if lang == "python":
        # os.write: a program that replaced sys.stdout (or closed it) cannot swallow the marker by accident.
        return f"{program}\n__import__('os').write(1, {(marker + chr(10)).encode()!r})\n"
    if lang in ("javascript", "typescript"):
        return f"{program}\n;console.log({quoted});\n"
    if lang == "bash":
        return f"{program}\nprintf '%s\\n' '{marker}'\n"
    if lang == "go":
        return f"{program}\n\nfunc TestZzzSeedCoderEndMarker(t *testing.T) {{ println({quoted}) }}\n"
    if lang in ("cpp", "rust"):
        # a guard declared first in main prints the marker when main returns (C++ destructor, Rust Drop)
        if lang == "cpp":
            main = _CPP_MAIN
            guard = (
                "struct SeedCoderEndMarker { ~SeedCoderEndMarker() { "
                f'__builtin_printf("%s\\n", {quoted}); }} }} seed_coder_end_marker;'
            )
        else:
            main = _RUST_MAIN
            guard = (
                "struct SeedCoderEndMarker; impl Drop for SeedCoderEndMarker { fn drop(&mut self) { "
                f'println!("{{}}", {quoted}); }} }} let _seed_coder_end_marker = SeedCoderEndMarker;'
            )
        at = _last_match(main, program, lang).end()
        return program[:at] + guard + program[at:]
    if lang == "java":
        match = _last_match(_JAVA_MAIN, program, lang)
        close = matching_brace(program, match.end() - 1)
        if close is None:
            raise NoPlaceForEndMarker("the java main method is not closed")
        body = program[match.end() : close]
        return (
            program[: match.end()]
            + " try {"
            + body
            + f"\n}} finally {{ System.out.println({quoted}); }}\n"
            + program[close:]
        )
    raise ValueError(f"no end marker for language {language!r}")
