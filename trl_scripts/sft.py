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

from trl_scripts.common import train  # noqa: E402
from trl_scripts.configs import PostTrainingScriptArguments  # noqa: E402
from trl_scripts.data import sft_dataset  # noqa: E402


def main() -> None:
    train(PostTrainingScriptArguments, trl.SFTConfig, trl.SFTTrainer, sft_dataset, ["sft"])


if __name__ == "__main__":
    main()
