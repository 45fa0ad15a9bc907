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

from trl_scripts.common import train  # noqa: E402
from trl_scripts.configs import PostTrainingScriptArguments  # noqa: E402
from trl_scripts.data import dpo_dataset  # noqa: E402


def main() -> None:
    train(PostTrainingScriptArguments, trl.DPOConfig, trl.DPOTrainer, dpo_dataset, ["dpo"])


if __name__ == "__main__":
    main()
