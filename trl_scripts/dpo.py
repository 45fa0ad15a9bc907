"""DPO on sandbox-judged on-policy pairs (Seed-Coder-Instruct's preference stage; facts §7).

    python -m datatrove_pipelines.dpo_data --config recipes/tiny/dpo_data.yaml      # the pairs
    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml trl_scripts/dpo.py \
        --config recipes/tiny/dpo/config.yaml

``dataset_name``: a dpo_data run folder (its ``pairs`` are expanded to one row per pair), or any dataset with
``prompt``/``chosen``/``rejected`` columns. Chat template with a system message, optional LoRA, resume, card, push.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the project root (see docs)

import trl  # noqa: E402

from trl_scripts.common import finish, load_tokenizer, model_kwargs, parse, resume_checkpoint  # noqa: E402
from trl_scripts.configs import PostTrainingScriptArguments  # noqa: E402
from trl_scripts.data import dpo_dataset  # noqa: E402


def main() -> None:
    script_args, training_args, model_args = parse(PostTrainingScriptArguments, trl.DPOConfig)
    tokenizer = load_tokenizer(model_args, script_args)
    dataset = dpo_dataset(script_args)
    training_args.model_init_kwargs = model_kwargs(model_args, training_args)
    trainer = trl.DPOTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=trl.get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(training_args, script_args))
    finish(trainer, training_args, script_args, model_args, ["dpo"], script_args.dataset_name)


if __name__ == "__main__":
    main()
