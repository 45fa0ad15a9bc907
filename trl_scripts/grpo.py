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

from trl_scripts.common import finish, load_tokenizer, model_kwargs, parse, resume_checkpoint  # noqa: E402
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


def main() -> None:
    script_args, training_args, model_args = parse(GRPOScriptArguments, trl.GRPOConfig)
    tokenizer = load_tokenizer(model_args, script_args)
    dataset = grpo_dataset(script_args)
    tracker = None
    callbacks = []
    if script_args.curriculum_threshold is not None:
        tracker = PassRateTracker(
            script_args.curriculum_threshold, script_args.curriculum_window, script_args.curriculum_min_rollouts
        )
        callbacks.append(CurriculumCallback(tracker, len(dataset)))
    training_args.model_init_kwargs = model_kwargs(model_args, training_args)
    trainer = CurriculumGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=build_rewards(script_args.reward_funcs, script_args, tracker),
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=trl.get_peft_config(model_args),
        callbacks=callbacks,
        tracker=tracker,
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(training_args, script_args))
    finish(trainer, training_args, script_args, model_args, ["grpo"], script_args.dataset_name)


if __name__ == "__main__":
    main()
