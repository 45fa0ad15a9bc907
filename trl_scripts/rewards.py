"""GRPO rewards, chosen by name in the recipe (``reward_funcs: [code_execution, format]``), and the curriculum.

* ``code_execution``: the fraction of the row's unit tests the completion's code passes in the project's sandbox
  (``eval.code_reward``: one parallel batch per step, any sandbox language, per-sample time limits). A completion
  without code, or one the sandbox could not run, gets 0 and its reason is logged; a reward step never raises.
* ``format``: 1 when the answer is one fenced code block after an optional closed ``<think>`` section, else 0.

The curriculum (facts §7: problems with pass rate > 87.5% are dropped) keeps a rolling pass rate per prompt, fed by the
``code_execution`` reward; :class:`CurriculumCallback` retires prompts above the threshold after each step and
:class:`CurriculumSampler` stops sampling them.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from transformers import TrainerCallback

from eval.code_reward import CodeTests, score_tests
from eval.prompts import extract_code_block

log = logging.getLogger("trl_scripts.rewards")

_FORMAT = re.compile(r"^\s*(?:<think>.*?</think>\s*)?```[\w+#.-]*\n.*?```\s*$", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The text of a completion (conversational: the assistant messages' content)."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


class PassRateTracker:
    """Rolling pass rate per prompt over its last ``window`` rollouts; a rollout passes when every test passes."""

    def __init__(self, threshold: float = 0.875, window: int = 64, min_rollouts: int = 8):
        self.threshold, self.window, self.min_rollouts = threshold, window, min_rollouts
        self.history: dict[int, deque[bool]] = {}
        self.retired: set[int] = set()

    def record(self, prompt_id: int, passed: bool) -> None:
        self.history.setdefault(int(prompt_id), deque(maxlen=self.window)).append(bool(passed))

    def pass_rate(self, prompt_id: int) -> float | None:
        seen = self.history.get(int(prompt_id))
        return sum(seen) / len(seen) if seen else None

    def update(self) -> list[int]:
        """Retire the prompts whose rolling pass rate exceeds the threshold; returns the newly retired ones."""
        newly = []
        for prompt_id, seen in self.history.items():
            if prompt_id in self.retired or len(seen) < self.min_rollouts:
                continue
            if sum(seen) / len(seen) > self.threshold:
                self.retired.add(prompt_id)
                newly.append(prompt_id)
        return newly


class CodeExecutionReward:
    """Fraction of unit tests passed, through the sandbox; records pass/fail per prompt for the curriculum."""

    __name__ = "code_execution"

    def __init__(
        self,
        timeout_s: float = 10.0,
        test_timeout_s: float = 3.0,
        workers: int | None = None,
        tracker: PassRateTracker | None = None,
    ):
        self.timeout_s, self.test_timeout_s, self.workers, self.tracker = timeout_s, test_timeout_s, workers, tracker

    def __call__(self, completions: list, tests: list, language: list | None = None, **kwargs) -> list[float]:
        count = len(completions)
        languages = language or ["python"] * count
        setups = kwargs.get("test_setup") or [""] * count
        specs = [
            CodeTests(lang or "python", list(t or []), setup or "", self.timeout_s, self.test_timeout_s)
            for t, lang, setup in zip(tests, languages, setups, strict=True)
        ]
        codes = [
            extract_code_block(completion_text(c), spec.language, last=True)
            for c, spec in zip(completions, specs, strict=True)
        ]
        try:
            runs = score_tests(codes, specs, workers=self.workers)
        except Exception as error:  # never a crashed step: the whole batch scores 0, with the reason logged
            log.warning("code_execution reward: sandbox failed for the batch (reward 0): %s", error)
            return [0.0] * count
        rewards = []
        for index, run in enumerate(runs):
            if run.status == "sandbox_error":
                log.warning("code_execution reward 0 for completion %d: %s", index, run.reason[:300])
            rewards.append(run.fraction)
        if self.tracker is not None and kwargs.get("prompt_id") is not None:
            for prompt_id, run in zip(kwargs["prompt_id"], runs, strict=True):
                self.tracker.record(prompt_id, run.all_passed)
        return rewards


def format_reward(completions: list, **kwargs) -> list[float]:
    """1.0 for ``[<think>...</think>] ```lang\\ncode``` `` and nothing else around it, else 0.0."""
    return [1.0 if _FORMAT.match(completion_text(c)) else 0.0 for c in completions]


format_reward.__name__ = "format"


def build_rewards(names: list[str], script_args, tracker: PassRateTracker | None) -> list[Callable]:
    """The reward callables named in the recipe, in order; an unknown name is a clear error."""
    factories: dict[str, Callable[[], Callable]] = {
        "code_execution": lambda: CodeExecutionReward(
            script_args.reward_timeout_s, script_args.reward_test_timeout_s, script_args.reward_workers, tracker
        ),
        "format": lambda: format_reward,
    }
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise SystemExit(f"error: unknown reward_funcs {unknown}; known: {sorted(factories)}")
    return [factories[name]() for name in names]


REWARDS = ("code_execution", "format")


class CurriculumCallback(TrainerCallback):
    """After each step, drop the prompts whose rolling pass rate exceeds the threshold; stop when none are left."""

    def __init__(self, tracker: PassRateTracker, num_prompts: int):
        self.tracker, self.num_prompts = tracker, num_prompts

    def on_step_end(self, args, state, control, **kwargs):
        newly = self.tracker.update()
        if newly:
            log.info("curriculum: dropped prompts %s (pass rate > %.3f)", newly, self.tracker.threshold)
        state.log_history.append({"step": state.global_step, "curriculum/retired": len(self.tracker.retired)})
        if self.num_prompts and len(self.tracker.retired) >= self.num_prompts:
            log.info("curriculum: every prompt is solved above the threshold; stopping")
            control.should_training_stop = True
        return control


class CurriculumSampler:
    """Wraps TRL's RepeatSampler: indices of retired prompts are replaced by active ones, the same replacement for
    every repeat of an index within a generation block (so GRPO's groups stay groups) and the length unchanged."""

    def __init__(self, base, prompt_ids: list[int], tracker: PassRateTracker):
        self.base, self.prompt_ids, self.tracker = base, list(prompt_ids), tracker

    def __len__(self) -> int:
        return len(self.base)

    def _block_size(self) -> int:
        base = self.base
        return max(1, base.batch_size * base.mini_repeat_count * base.repeat_count)

    def __iter__(self) -> Iterator[int]:
        block: list[int] = []
        for index in self.base:
            block.append(index)
            if len(block) == self._block_size():
                yield from self._replace(block)
                block = []
        yield from self._replace(block)

    def _replace(self, block: list[int]) -> list[int]:
        retired = self.tracker.retired
        if not retired:
            return block
        active = [i for i, pid in enumerate(self.prompt_ids) if pid not in retired]
        if not active:
            return block
        return [i if self.prompt_ids[i] not in retired else active[(i * 7919) % len(active)] for i in block]
