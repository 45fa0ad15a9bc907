"""Small benchmark-like files for the pipeline tests, so they run without the offline copies (../shared/benchmarks).

HumanEval- and MBPP-shaped problems (same file layout and fields as the real ones, read by ``eval.benchmarks``), each
a distinct small function made of a shared template (its n-grams are boilerplate, pruned from the index as the real
benchmarks' shared imports are) and its own names and constants (its n-grams are the evidence of contamination).
Only the reference self-checks (e.g. "the stdlib is not flagged by the real benchmarks") need the real data.
"""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

VERBS = ("collect", "merge", "rank", "filter", "group", "scale", "count", "split", "rotate", "clamp", "pack", "trim")
NOUNS = ("orders", "samples", "tiles", "readings", "tokens", "edges", "votes", "prices", "frames", "scores")


def _function(number: int, verb: str, noun: str) -> tuple[str, str, str, str]:
    """(name, prompt, solution, test) of one distinct problem."""
    name = f"{verb}_{noun}_{number}"
    step, offset, modulus = 3 + number % 7, 11 + number, 2 + number % 5
    prompt = (
        f"def {name}(values: list, limit: int) -> list:\n"
        f'    """{verb.capitalize()} the {noun} below limit whose remainder modulo {modulus} is {number % modulus},\n'
        f"    each multiplied by {step} and shifted by {offset}, in increasing order.\n"
        f"    >>> {name}([1, 2, 3], {10 + number})\n"
        f'    """\n'
    )
    solution = (
        f"    {noun}_kept = []\n"
        f"    for {noun}_item in values:\n"
        f"        if {noun}_item < limit and {noun}_item % {modulus} == {number % modulus}:\n"
        f"            {noun}_kept.append({noun}_item * {step} + {offset})\n"
        f"    return sorted({noun}_kept)\n"
    )
    test = (
        "def check(candidate):\n"
        f"    assert candidate([], {number}) == []\n"
        f"    assert candidate(list(range({20 + number})), {15 + number}) == sorted(\n"
        f"        x * {step} + {offset} for x in range({15 + number}) if x % {modulus} == {number % modulus}\n"
        "    )\n"
    )
    return name, prompt, solution, test


def write_mini_benchmarks(root: Path, humaneval: int = 60, mbpp: int = 60) -> Path:
    """Write ``root/humaneval/HumanEval.jsonl.gz`` and ``root/mbpp/mbpp.jsonl``; returns ``root``."""
    pairs = itertools.cycle(itertools.product(VERBS, NOUNS))
    (root / "humaneval").mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "humaneval" / "HumanEval.jsonl.gz", "wt") as handle:
        for number in range(humaneval):
            name, prompt, solution, test = _function(number, *next(pairs))
            record = {
                "task_id": f"HumanEval/{number}",
                "prompt": prompt,
                "canonical_solution": solution,
                "test": test,
                "entry_point": name,
            }
            handle.write(json.dumps(record) + "\n")
    (root / "mbpp").mkdir(parents=True, exist_ok=True)
    with open(root / "mbpp" / "mbpp.jsonl", "w") as handle:
        for number in range(mbpp):
            name, prompt, solution, _ = _function(1000 + number, *next(pairs))
            header = prompt.split("\n")[0]
            record = {
                "task_id": 11 + number,
                "text": f"Write a function {name} that keeps some values below a limit, scaled and shifted.",
                "code": header + "\n" + solution,
                "test_list": [f"assert {name}([], 1) == []", f"assert {name}([0, 5], 1) == []"],
                "test_setup_code": "",
                "challenge_test_list": [],
            }
            handle.write(json.dumps(record) + "\n")
    return root
