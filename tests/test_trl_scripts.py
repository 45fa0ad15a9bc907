"""Each post-training script runs a few steps from its tiny YAML on CPU (accelerate launch, the real command), writes a
loadable checkpoint, and that checkpoint runs through ``python -m eval.run`` in instruct mode. Slow (minutes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow
ACCELERATE = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--config_file",
    "recipes/accelerate_configs/cpu.yaml",
]


def launch(script: str, recipe: str, *overrides: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [*ACCELERATE, f"trl_scripts/{script}.py", "--config", f"recipes/tiny/{recipe}/config.yaml", *overrides]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout + result.stderr


def assert_loadable_and_evaluates(checkpoint: Path, benchmarks_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eval.run import main as eval_main

    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert model.config.vocab_size == len(tokenizer)
    rendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": "SYS"}, {"role": "user", "content": "hi"}], tokenize=False
    )
    assert "SYS" in rendered
    out = tmp_path / f"eval-{checkpoint.name}"
    argv = ["--model", str(checkpoint), "--tasks", "mbpp_sanitized", "--mode", "instruct", "--limit", "1"]
    argv += ["--max-new-tokens", "8", "--data-dir", str(benchmarks_dir), "--output-dir", str(out)]
    assert eval_main(argv) == 0
    metrics = json.loads((out / "results.json").read_text())["tasks"]["mbpp_sanitized"]
    # the score is what the per-sample verdicts say (not merely a number in [0, 1])
    records = [json.loads(line) for line in (out / "problems" / "mbpp_sanitized.jsonl").read_text().splitlines()]
    assert metrics["num_problems"] == len(records) == 1
    assert metrics["pass@1"] == sum(r["samples"][0]["passed"] for r in records) / len(records)
    assert all(s["passed"] == (s["status"] == "passed") for r in records for s in r["samples"])


def common(tiny_model_dir: Path, benchmarks_dir: Path, out: Path) -> list[str]:
    return [
        "--model_name_or_path",
        str(tiny_model_dir),
        "--benchmarks_dir",
        str(benchmarks_dir),
        "--output_dir",
        str(out),
    ]


def test_sft_checkpoint_resume_and_card(tiny_model_dir, benchmarks_dir, tmp_path):
    out = tmp_path / "sft"
    launch("sft", "sft", *common(tiny_model_dir, benchmarks_dir, out))
    assert (out / "checkpoint-2").is_dir() and (out / "model.safetensors").is_file()
    assert "sft" in (out / "README.md").read_text()
    # Resume: a longer run picks up the last checkpoint instead of starting again.
    log = launch("sft", "sft", *common(tiny_model_dir, benchmarks_dir, out), "--max_steps", "4")
    assert "resuming from" in log and str(out / "checkpoint-3") in log
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert_loadable_and_evaluates(out, benchmarks_dir, tmp_path)


def test_sft_lora_adapter_saves_and_merges(tiny_model_dir, benchmarks_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from trl_scripts.merge_lora import merge

    out = tmp_path / "lora"
    launch(
        "sft",
        "sft",
        *common(tiny_model_dir, benchmarks_dir, out),
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "--learning_rate",
        "1e-2",
        "--resume",
        "false",
    )
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    merged_dir = merge(str(out), str(tmp_path / "merged"), base=str(tiny_model_dir))
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merged_dir)(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(ids).logits
    assert torch.allclose(adapted, merged, atol=1e-4)
    assert not torch.allclose(base, merged, atol=1e-6)  # the adapter learnt something and the merge carries it
    assert_loadable_and_evaluates(merged_dir, benchmarks_dir, tmp_path)


def test_longcot_warmup(tiny_model_dir, benchmarks_dir, tmp_path):
    out = tmp_path / "longcot"
    log = launch("sft", "longcot", *common(tiny_model_dir, benchmarks_dir, out))
    # the recipe packs: its 32 examples (~100-450 tokens each) fill fewer rows of 512 tokens
    packed = re.search(r"training on (\d+) packed rows of up to 512 tokens from 32 examples", log)
    assert packed and int(packed.group(1)) < 32, log[-2000:]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["log_history"][0]["num_tokens"] > 512  # two packed rows hold more than one example's worth
    assert_loadable_and_evaluates(out, benchmarks_dir, tmp_path)


def test_dpo_on_sandbox_judged_pairs(tiny_model_dir, benchmarks_dir, tmp_path):
    from datatrove_pipelines.dpo_data import main as dpo_data

    pairs = tmp_path / "pairs"
    dpo_data(
        [
            "--config",
            str(REPO_ROOT / "recipes/tiny/dpo_data.yaml"),
            "--policy-model",
            str(tiny_model_dir),
            "--benchmarks",
            str(benchmarks_dir),
            "--output",
            str(pairs),
        ]
    )
    assert list((pairs / "kept").glob("*.jsonl.gz"))
    out = tmp_path / "dpo"
    launch("dpo", "dpo", *common(tiny_model_dir, benchmarks_dir, out), "--dataset_name", str(pairs))
    assert (out / "model.safetensors").is_file()
    assert_loadable_and_evaluates(out, benchmarks_dir, tmp_path)


def test_grpo_with_code_execution_reward(tiny_model_dir, benchmarks_dir, tmp_path):
    out = tmp_path / "grpo"
    launch("grpo", "grpo", *common(tiny_model_dir, benchmarks_dir, out))
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logged = {key for entry in state["log_history"] for key in entry}
    assert {"rewards/code_execution/mean", "rewards/format/mean", "curriculum/retired"} <= logged
    assert_loadable_and_evaluates(out, benchmarks_dir, tmp_path)
