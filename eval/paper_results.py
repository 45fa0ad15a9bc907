"""Seed-Coder-8B's reported numbers (facts §8), in percent, keyed by our task names, for side-by-side tables.

Base model: HumanEval(+), MBPP(+), MultiPL-E per language (Go and Rust are not reported), CRUXEval input/output
(CoT), single-line FIM exact match, needle-in-code (100% up to 32K). Instruct model: HumanEval(+), MBPP(+),
LiveCodeBench (2410-2502).
"""

from __future__ import annotations

PAPER_MODEL = "Seed-Coder-8B"

SEED_CODER_8B: dict[str, dict[str, float]] = {
    "base": {
        "humaneval": 77.4,
        "humaneval_plus": 68.3,
        "mbpp": 82.0,
        "mbpp_plus": 69.0,
        "multipl_e_cpp": 69.6,
        "multipl_e_java": 72.8,
        "multipl_e_js": 77.6,
        "multipl_e_ts": 77.4,
        "multipl_e_sh": 48.1,
        "cruxeval_input": 52.0,
        "cruxeval_output": 54.8,
        "fim_single_line": 82.4,
        "needle_in_code": 100.0,
    },
    "instruct": {
        "humaneval": 84.8,
        "humaneval_plus": 78.7,
        "mbpp": 85.2,
        "mbpp_plus": 71.2,
        "livecodebench": 24.7,
    },
}

NOTES = {
    "cruxeval_input": "paper: CoT prompting",
    "cruxeval_output": "paper: CoT prompting",
    "mbpp_plus": "local MBPP+ copy is a pre-release snapshot; not comparable to v0.2.0",
    "livecodebench": "paper: problems 2410-2502",
    "needle_in_code": "paper: 100% up to 32K",
}


def paper_value(task: str, mode: str) -> float | None:
    return SEED_CODER_8B.get(mode, {}).get(task)
