"""Every post-training recipe parses with its script's TrlParser (an unknown or misspelt key is an error there), and
the 8B recipes carry the paper's hyper-parameters (facts §7). The 8B recipes are otherwise only ever run on a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import trl

from trl_scripts.configs import GRPOScriptArguments, PostTrainingScriptArguments

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT_CLASSES = {
    "sft": (PostTrainingScriptArguments, trl.SFTConfig),
    "longcot": (PostTrainingScriptArguments, trl.SFTConfig),
    "dpo": (PostTrainingScriptArguments, trl.DPOConfig),
    "grpo": (GRPOScriptArguments, trl.GRPOConfig),
}


def parse_recipe(model: str, stage: str):
    script_class, training_class = SCRIPT_CLASSES[stage]
    parser = trl.TrlParser((script_class, training_class, trl.ModelConfig))
    argv = ["--config", str(REPO_ROOT / "recipes" / model / stage / "config.yaml")]
    if model != "tiny":
        argv += ["--bf16", "false"]  # the 8B recipes train in bf16 on GPUs; this machine has none
    return parser.parse_args_and_config(argv)


@pytest.mark.parametrize("model", ["tiny", "seed_coder_8b"])
@pytest.mark.parametrize("stage", sorted(SCRIPT_CLASSES))
def test_recipe_parses_with_its_script(model, stage):
    script_args, training_args, model_args = parse_recipe(model, stage)
    assert model_args.model_name_or_path and script_args.dataset_name and script_args.system_prompt
    if stage in ("sft", "longcot"):
        assert training_args.packing and training_args.learning_rate == 2e-5
    if stage == "longcot":
        assert "<think>" in script_args.system_prompt


def test_8b_recipes_carry_the_paper_hyper_parameters():
    _, sft, _ = parse_recipe("seed_coder_8b", "sft")
    assert (sft.num_train_epochs, sft.learning_rate, sft.packing) == (3, 2e-5, True)
    _, longcot, model = parse_recipe("seed_coder_8b", "longcot")
    assert longcot.max_length == 32768 and model.model_name_or_path.endswith("Base")
    script, grpo, _ = parse_recipe("seed_coder_8b", "grpo")
    assert script.reward_funcs == ["code_execution", "format"] and script.curriculum_threshold == 0.875
    assert (grpo.beta, grpo.epsilon_high, grpo.loss_type, grpo.temperature) == (0.0, 0.28, "dapo", 0.6)
    assert grpo.mask_truncated_completions and grpo.learning_rate == 1e-6
    assert (grpo.generation_batch_size, grpo.num_generations, grpo.max_completion_length) == (128, 16, 16384)
    assert grpo.max_steps == 90
