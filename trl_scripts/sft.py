"""Supervised fine-tuning (Seed-Coder-Instruct's SFT, and the LongCoT warm-up of Seed-Coder-Reasoning; facts §7).

    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml trl_scripts/sft.py \
        --config recipes/tiny/sft/config.yaml [--output_dir DIR --max_steps 4 ...]

Chat template with a system message, packing, optional LoRA (``use_peft: true``; merge with trl_scripts/merge_lora.py),
resume from the last checkpoint in ``output_dir``, a model card, ``--push_to_hub``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the project root (see docs)

import trl  # noqa: E402

from trl_scripts.common import finish, load_tokenizer, model_kwargs, parse, resume_checkpoint  # noqa: E402
from trl_scripts.configs import PostTrainingScriptArguments  # noqa: E402
from trl_scripts.data import sft_dataset  # noqa: E402


def main() -> None:
    script_args, training_args, model_args = parse(PostTrainingScriptArguments, trl.SFTConfig)
    tokenizer = load_tokenizer(model_args, script_args)
    dataset = sft_dataset(script_args)
    training_args.model_init_kwargs = model_kwargs(model_args, training_args)
    trainer = trl.SFTTrainer(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=trl.get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(training_args, script_args))
    finish(trainer, training_args, script_args, model_args, ["sft"], script_args.dataset_name)


if __name__ == "__main__":
    main()
