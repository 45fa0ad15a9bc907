"""Prompt text for every task in both modes, stop sequences per language, and answer extraction.

Base (completion) mode gives the model code to continue and cuts the continuation at the language's stop sequences;
instruct mode wraps the problem in a chat request and extracts the first fenced code block of the answer. Keeping
both here means a prompt change touches one file and shows up in the task version.
"""

from __future__ import annotations

import ast
import re

from datatrove_pipelines.languages import language_aliases, language_spec
from eval.benchmarks import Problem

# Where a base model's continuation of one function ends (the HumanEval/Codex convention for Python; MultiPL-E's own
# per-language stop tokens for the other languages, kept in each record's ``stop_tokens``).
PYTHON_STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")
MULTIPL_E_DEFAULT_STOP_SEQUENCES = {
    "cpp": ("\n}",),
    "java": ("\n    }\n",),
    "javascript": ("\nfunction ", "\n/*", "\n//", "\nconsole.log"),
    "typescript": ("\nfunction ", "\n/*", "\n//", "\nconsole.log"),
    "go": ("\nfunc", "struct", "\n// "),
    "rust": ("\n}",),
    "bash": ("\n}",),
}
MBPP_STOP_SEQUENCES = ('\n"""', "\nassert ", "\nif __name__", "\nprint(", "\n# Test", "\n```")
CRUXEVAL_STOP_SEQUENCES = ("[/ANSWER]", "\n[/PYTHON]", "\nassert ")


def stop_sequences(problem: Problem) -> tuple[str, ...]:
    """Stop sequences for base-mode generation of one problem."""
    if problem.benchmark.startswith("multipl_e"):
        own = problem.raw.get("stop_tokens")
        return tuple(own) if own else MULTIPL_E_DEFAULT_STOP_SEQUENCES[problem.language]
    if problem.benchmark.startswith("mbpp"):
        return MBPP_STOP_SEQUENCES
    return PYTHON_STOP_SEQUENCES


# ---------------------------------------------------------------------------------------------------------------------
# Code generation: HumanEval(+), MBPP(+), MultiPL-E


def mbpp_description(problem: Problem) -> str:
    """The natural-language task of an MBPP-family problem (MBPP+ stores it inside a docstring)."""
    text = problem.prompt.strip()
    for quote in ('"""', "'''"):
        if text.startswith(quote) and text.endswith(quote):
            text = text[3:-3].strip()
    return text


def mbpp_first_test(problem: Problem) -> str:
    tests = [line for line in problem.test.splitlines() if line.strip().startswith("assert")]
    return tests[0].strip() if tests else ""


def base_prompt(problem: Problem) -> str:
    """What a base model continues: the function header and docstring, or MBPP's task as a module docstring."""
    if problem.benchmark.startswith("mbpp"):
        # bigcode-evaluation-harness / EvalPlus style: the task and one example test in a docstring.
        return f'"""\n{mbpp_description(problem)}\n{mbpp_first_test(problem)}\n"""\n'
    return problem.prompt


def instruct_prompt(problem: Problem) -> str:
    """A chat request that asks for one self-contained code block."""
    spec = language_spec(problem.language)  # names live in datatrove_pipelines.languages
    language = spec.prompt_name if spec else problem.language
    fence = problem.language
    if problem.benchmark.startswith("mbpp"):
        return (
            f"{mbpp_description(problem)}\nYour code should pass this test:\n{mbpp_first_test(problem)}\n\n"
            f"Write the {language} function in one ```{fence} code block."
        )
    return (
        f"Complete the following {language} code. Return the complete, self-contained function (with the given "
        f"signature) in one ```{fence} code block.\n\n```{fence}\n{problem.prompt.rstrip()}\n```"
    )


_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code_block(text: str, language: str | None = None, last: bool = False) -> str:
    """The code of a chat answer: the first (``last``: the last) fenced block in the wanted language, else the
    first (last) block, else the text (up to a closing fence that ends it: an answer that continued a prompt's fence).

    An unterminated last block (generation hit the token limit) still counts as code. ``last=True`` is for rewards
    and data builders: reasoning models sketch first and answer last.
    """
    stripped = text.rstrip()
    if stripped.endswith("```") and "```" not in stripped[:-3]:
        return stripped[:-3]
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return text
    wanted = language_aliases(language) | {language or ""}  # every fence tag of the language ("c++", "py", "sh")
    tagged = [body for lang, body in blocks if lang in wanted]
    chosen = tagged or [body for _, body in blocks]
    return chosen[-1] if last else chosen[0]


def defines(code: str, name: str, language: str) -> bool:
    """Whether a code block defines the entry point itself (then it replaces the prompt instead of continuing it)."""
    if language == "python":
        return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
    return re.search(rf"\b{re.escape(name)}\s*\(", code) is not None and "{" in code


def python_imports(prompt: str) -> str:
    """The import lines of a Python prompt, prepended to an instruct answer that may have dropped them."""
    lines = [line for line in prompt.splitlines() if re.match(r"^(?:from\s+\S+\s+)?import\s", line)]
    return "\n".join(lines) + ("\n\n" if lines else "")


# ---------------------------------------------------------------------------------------------------------------------
# CRUXEval (Gu et al. 2024): the direct prompts of the paper, with its [PYTHON]/[ANSWER] markers.

CRUXEVAL_OUTPUT_EXAMPLE = """[PYTHON]
def f(s):
    s = s + s
    return "b" + s + "a"
assert f("hi") == ??
[/PYTHON]
[ANSWER]
assert f("hi") == "bhihia"
[/ANSWER]"""

CRUXEVAL_INPUT_EXAMPLE = """[PYTHON]
def f(x):
    return x + 1
assert f(??) == 17
[/PYTHON]
[ANSWER]
assert f(16) == 17
[/ANSWER]"""


def cruxeval_prompt(problem: Problem, direction: str, instruct: bool) -> str:
    """Predict the output of ``f`` on the input (``output``) or an input that gives the output (``input``)."""
    code, given_input, given_output = problem.prompt, problem.raw["input"], problem.raw["output"]
    if direction == "output":
        question = f"[PYTHON]\n{code}\nassert f({given_input}) == ??\n[/PYTHON]"
        task = (
            "You are given a Python function and an assertion containing an input to the function. Complete the "
            "assertion with a literal (no unsimplified expressions, no function calls) containing the output when "
            "executing the provided code on the given input, even if the function is incorrect or incomplete."
        )
        example = CRUXEVAL_OUTPUT_EXAMPLE
    else:
        question = f"[PYTHON]\n{code}\nassert f(??) == {given_output}\n[/PYTHON]"
        task = (
            "You will be given a function f and an output in the form f(??) == output. Find any input such that "
            "executing f on the input leads to the given output. There may be multiple answers; give only one."
        )
        example = CRUXEVAL_INPUT_EXAMPLE
    if instruct:
        return (
            f"{task} Think step by step, then give the completed assertion between [ANSWER] and [/ANSWER].\n\n"
            f"{example}\n\n{question}"
        )
    return f"{task}\n\n{example}\n\n{question}\n[ANSWER]\nassert f("


def cruxeval_answer(text: str, direction: str) -> str:
    """The predicted literal: from the last [ANSWER] block (or the whole text), the argument list of ``f(...)``
    (``input``) or the right-hand side of ``== ...`` (``output``). Base-mode callers prepend the prompt's ``f(``."""
    if "[ANSWER]" in text:
        text = text.rsplit("[ANSWER]", 1)[1]
    text = text.split("[/ANSWER]", 1)[0].strip().splitlines()
    text = text[0].strip() if text else ""
    text = text.removeprefix("assert").strip()
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        tree = None
    if isinstance(tree, ast.Compare) and len(tree.comparators) == 1 and isinstance(tree.ops[0], ast.Eq):
        call = tree.left
        if direction == "output":
            return ast.get_source_segment(text, tree.comparators[0]) or ""
        if isinstance(call, ast.Call):
            segment = ast.get_source_segment(text, call) or ""
            return segment[segment.index("(") + 1 : -1].strip()
    if direction == "output":
        return text.split("==", 1)[1].strip() if "==" in text and text.startswith("f(") else text
    text = text.removeprefix("f(")
    return text.rsplit("==", 1)[0].rstrip().removesuffix(")").strip() if "==" in text else text
