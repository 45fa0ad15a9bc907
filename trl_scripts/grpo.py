"""GRPO with code-execution rewards (Seed-Coder-Reasoning's RL stage; facts §7): DAPO-style settings where TRL has
them (beta 0 = no KL, epsilon_high 0.28 = clip-higher, loss_type "dapo" = token-level loss, mask_truncated_completions
= overlong filtering, temperature 0.6), rewards chosen by name, and a pass-rate curriculum.

    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml trl_scripts/grpo.py \
        --config recipes/tiny/grpo/config.yaml
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the project root (see docs)

import trl  # noqa: E402

from trl_scripts.common import train  # noqa: E402
from trl_scripts.configs import GRPOScriptArguments  # noqa: E402
from trl_scripts.data import grpo_dataset  # noqa: E402
from trl_scripts.rewards import CurriculumCallback, CurriculumSampler, PassRateTracker, build_rewards  # noqa: E402


class CurriculumGRPOTrainer(trl.GRPOTrainer):
    """GRPOTrainer whose sampler skips the prompts the curriculum retired."""

    def __init__(self, *args, tracker: PassRateTracker | None = None, **kwargs):
        self.tracker = tracker
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, dataset=None):
        sampler = super()._get_train_sampler(dataset)
        if self.tracker is None:
            return sampler
        dataset = dataset if dataset is not None else self.train_dataset
        return CurriculumSampler(sampler, dataset["prompt_id"], self.tracker)


def curriculum_trainer_kwargs(script_args: GRPOScriptArguments, dataset) -> dict:
    """The rewards chosen by name and, with ``curriculum_threshold``, the pass-rate tracker and its callback."""
    tracker = None
    callbacks = []
    if script_args.curriculum_threshold is not None:
        tracker = PassRateTracker(
            script_args.curriculum_threshold, script_args.curriculum_window, script_args.curriculum_min_rollouts
        )
        callbacks.append(CurriculumCallback(tracker, len(dataset)))
    rewards = build_rewards(script_args.reward_funcs, script_args, tracker)
    return {"reward_funcs": rewards, "callbacks": callbacks, "tracker": tracker}


def main() -> None:
    train(
        GRPOScriptArguments, trl.GRPOConfig, CurriculumGRPOTrainer, grpo_dataset, ["grpo"], curriculum_trainer_kwargs
    )


if __name__ == "__main__":
    main()
