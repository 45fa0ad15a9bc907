"""Single-line fill-in-the-middle: examples built from reference solutions, prompts in the model's own FIM format.

Every non-blank line of every HumanEval reference solution is one example (the InCoder/SantaCoder "single-line
infilling" construction): the code before the line is the prefix, the code after it the suffix, and the model must
produce the line. Scored by exact match of the stripped line. Seed-Coder trained with SPM only (facts §4):
``<[fim-suffix]>SUFFIX<[fim-prefix]>PREFIX<[fim-middle]>``; other model families' PSM formats are recognised too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datatrove_pipelines.tokenizer import FIM_MIDDLE_TOKEN, FIM_PREFIX_TOKEN, FIM_SUFFIX_TOKEN
from eval.benchmarks import Problem


@dataclass(frozen=True)
class FimFormat:
    """A model's FIM special tokens and the order (SPM or PSM) the segments are given in."""

    prefix_token: str
    suffix_token: str
    middle_token: str
    order: str = "spm"

    def prompt(self, prefix: str, suffix: str) -> str:
        if self.order == "spm":
            return f"{self.suffix_token}{suffix}{self.prefix_token}{prefix}{self.middle_token}"
        return f"{self.prefix_token}{prefix}{self.suffix_token}{suffix}{self.middle_token}"


# Seed-Coder first: it is the model this project reproduces, and the default when no tokenizer is at hand.
# (the token strings' home is datatrove_pipelines.tokenizer, which the tokenizer, FIM stage and tiny model share)
SEED_CODER_FIM = FimFormat(FIM_PREFIX_TOKEN, FIM_SUFFIX_TOKEN, FIM_MIDDLE_TOKEN, "spm")
KNOWN_FIM_FORMATS = (
    SEED_CODER_FIM,
    FimFormat("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "psm"),  # Qwen2.5-Coder
    FimFormat("<fim_prefix>", "<fim_suffix>", "<fim_middle>", "psm"),  # StarCoder / OpenCoder
    FimFormat("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "psm"),  # DeepSeek-Coder
)


class MissingFimTokensError(ValueError):
    """The tokenizer has no known set of FIM special tokens, so FIM cannot be evaluated."""


def find_fim_format(tokenizer: Any) -> FimFormat:
    """The FIM format whose three tokens are all single tokens of this tokenizer's vocabulary."""
    vocab = tokenizer.get_vocab()
    for fim in KNOWN_FIM_FORMATS:
        if all(token in vocab for token in (fim.prefix_token, fim.suffix_token, fim.middle_token)):
            return fim
    known = "; ".join(f"{f.prefix_token} {f.suffix_token} {f.middle_token}" for f in KNOWN_FIM_FORMATS)
    raise MissingFimTokensError(
        f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has none of the known FIM token sets ({known}); "
        "fim_single_line needs a model trained with fill-in-the-middle"
    )


@dataclass(frozen=True)
class FimExample:
    task_id: str
    prefix: str
    suffix: str
    middle: str


def problem_id(row_id: str) -> str:
    """The benchmark problem a row belongs to: FIM rows are ``<problem>/L<line>``, other rows the problem's id."""
    return row_id.rsplit("/L", 1)[0] if "/L" in row_id else row_id


def single_line_examples(problems: list[Problem]) -> list[FimExample]:
    """One example per non-blank line of each reference solution; deterministic (no sampling)."""
    examples = []
    for problem in problems:
        lines = problem.canonical_solution.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            prefix = problem.prompt + "".join(lines[:index])
            middle = line.rstrip("\n")
            suffix = line[len(middle) :] + "".join(lines[index + 1 :])
            examples.append(FimExample(f"{problem.task_id}/L{index}", prefix, suffix, middle))
    return examples


def first_line(generation: str) -> str:
    """The infilled line: generation up to the first newline."""
    return generation.split("\n", 1)[0]


def line_matches(generation: str, expected: str) -> bool:
    return first_line(generation).strip() == expected.strip()
