"""The script-argument dataclasses of the post-training scripts (the ``script`` part of TrlParser's triple).

Each script parses ``(ScriptArguments subclass, TRL's training config, trl.ModelConfig)`` from a YAML recipe plus
command-line overrides, as alignment-handbook and open-r1 do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trl

DEFAULT_SYSTEM_PROMPT = "You are Seed-Coder, a helpful coding assistant. Answer with correct, runnable code."
REASONING_SYSTEM_PROMPT = (
    "You are Seed-Coder, a coding assistant that reasons step by step. Think inside <think> and </think>, then give "
    "the final solution in one fenced code block."
)


@dataclass
class PostTrainingScriptArguments(trl.ScriptArguments):
    """Where the data comes from and how conversations are built.

    ``dataset_name``: a Hub id, a local folder or file (a data-stage run folder with ``kept/`` works), or
    ``mbpp_train`` (MBPP task ids 601-974 from the local benchmark copies, decontaminated and sandbox-verified)."""

    dataset_name: str | None = field(default=None, metadata={"help": "Hub id, local path, or 'mbpp_train'"})
    system_prompt: str | None = field(
        default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "system message prepended to every conversation"}
    )
    chat_template: str | None = field(
        default=None, metadata={"help": "Jinja chat template replacing the tokenizer's (must render a system role)"}
    )
    benchmarks_dir: str | None = field(
        default=None, metadata={"help": "local benchmark copies (mbpp_train seeds, decontamination)"}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "use only this many training rows"})
    decontaminate: bool = field(default=True, metadata={"help": "drop rows sharing a 10-gram with a benchmark"})
    resume: bool = field(
        default=True, metadata={"help": "resume from the last checkpoint in output_dir when there is one"}
    )


@dataclass
class GRPOScriptArguments(PostTrainingScriptArguments):
    """Rewards by name (trl_scripts/rewards.py) and the pass-rate curriculum (facts §7)."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["code_execution", "format"],
        metadata={"help": "reward names from trl_scripts/rewards.py REWARDS"},
    )
    reward_timeout_s: float = field(default=10.0, metadata={"help": "sandbox limit per completion"})
    reward_test_timeout_s: float = field(default=3.0, metadata={"help": "limit per unit test (Python harness)"})
    reward_workers: int | None = field(default=None, metadata={"help": "parallel sandbox executions"})
    curriculum_threshold: float | None = field(
        default=0.875, metadata={"help": "drop prompts whose rolling pass rate exceeds this (None: no curriculum)"}
    )
    curriculum_window: int = field(default=64, metadata={"help": "rollouts per prompt in the rolling pass rate"})
    curriculum_min_rollouts: int = field(default=8, metadata={"help": "rollouts seen before a prompt can be dropped"})
