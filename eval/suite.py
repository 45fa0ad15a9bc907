"""The suite's task table and run options, without lighteval: what the CLI needs to parse and check arguments.

``python -m eval.run --help`` and argument errors must come back at once, so nothing here imports lighteval, torch or
transformers; :mod:`eval.tasks` turns these specs into lighteval task configs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eval.benchmarks import MULTIPL_E_LANGUAGES
from eval.fim import SEED_CODER_FIM, FimFormat

MODES = ("base", "instruct")


@dataclass
class TaskOptions:
    """Everything a task's rows depend on; the runner fills the model-specific parts (FIM tokens, context)."""

    mode: str = "base"
    n_samples: int = 1
    ks: tuple[int, ...] = (1,)
    data_dir: str | None = None
    fim_format: FimFormat = SEED_CODER_FIM
    max_context: int = 32768
    count_tokens: Callable[[str], int] | None = field(default=None, repr=False)
    max_new_tokens: int | None = None
    workers: int | None = None
    task_ids: frozenset[str] | None = None  # only these problems (``--task-ids``); None: all

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")


@dataclass(frozen=True)
class TaskSpec:
    """One task: which benchmark and check it uses, how long answers are, and whether chat templates apply."""

    name: str
    kind: str
    benchmark: str
    generation_size: int = 512
    raw_prompt: bool = False  # FIM and needle prompts are never wrapped in a chat template
    exact_match: bool = False


TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("humaneval", "humaneval", "humaneval"),
        TaskSpec("humaneval_plus", "evalplus", "humaneval_plus"),
        TaskSpec("mbpp", "mbpp", "mbpp"),
        TaskSpec("mbpp_sanitized", "mbpp", "mbpp_sanitized"),
        TaskSpec("mbpp_plus", "evalplus", "mbpp_plus"),
        *[TaskSpec(f"multipl_e_{lang}", "multipl_e", f"multipl_e_{lang}") for lang in MULTIPL_E_LANGUAGES],
        TaskSpec("cruxeval_input", "cruxeval_input", "cruxeval", generation_size=256),
        TaskSpec("cruxeval_output", "cruxeval_output", "cruxeval", generation_size=256),
        TaskSpec("fim_single_line", "fim", "humaneval", generation_size=64, raw_prompt=True, exact_match=True),
        TaskSpec("needle_in_code", "needle", "needle", generation_size=16, raw_prompt=True, exact_match=True),
    ]
}
LIVECODEBENCH_TASK = "livecodebench"
ALL_TASKS = (*TASK_SPECS, LIVECODEBENCH_TASK)
