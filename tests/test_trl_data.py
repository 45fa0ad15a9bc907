"""Dataset building of the post-training scripts: system messages, stage-output folders, pair expansion, usage errors."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from trl_scripts.common import SYSTEM_CHAT_TEMPLATE, load_tokenizer, renders_system
from trl_scripts.configs import GRPOScriptArguments, PostTrainingScriptArguments
from trl_scripts.data import dpo_dataset, grpo_dataset, sft_dataset
from trl_scripts.rewards import build_rewards


def write_documents(folder, docs) -> None:
    (folder / "kept").mkdir(parents=True)
    with gzip.open(folder / "kept" / "00000.jsonl.gz", "wt") as handle:
        for doc in docs:
            handle.write(json.dumps(doc) + "\n")


def test_sft_rows_from_a_stage_run_get_the_system_message(tmp_path):
    messages = [{"role": "user", "content": "Add."}, {"role": "assistant", "content": "```python\nx\n```"}]
    write_documents(tmp_path / "run", [{"text": "t", "id": "0", "metadata": {"messages": messages, "attempts": 2}}])
    args = PostTrainingScriptArguments(dataset_name=str(tmp_path / "run"), system_prompt="SYS")
    (row,) = list(sft_dataset(args))
    assert row["messages"] == [{"role": "system", "content": "SYS"}, *messages]


def test_prompt_completion_rows_become_conversations(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"prompt": "Q", "completion": "A"}) + "\n")
    (row,) = list(sft_dataset(PostTrainingScriptArguments(dataset_name=str(path), system_prompt=None)))
    assert row["messages"] == [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]


def test_dpo_pairs_are_expanded_one_row_per_pair(tmp_path):
    meta = {
        "prompt": [{"role": "user", "content": "P"}],
        "pairs": [{"chosen": "c1", "rejected": "r1"}, {"chosen": "c2", "rejected": "r2"}],
    }
    write_documents(tmp_path / "run", [{"text": "P", "id": "0", "metadata": meta}])
    rows = list(dpo_dataset(PostTrainingScriptArguments(dataset_name=str(tmp_path / "run"), system_prompt="S")))
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [("c1", "r1"), ("c2", "r2")]
    assert rows[0]["prompt"][0] == {"role": "system", "content": "S"}


def test_grpo_rows_carry_tests_and_prompt_ids(tmp_path, benchmarks_dir):
    args = GRPOScriptArguments(dataset_name="mbpp_train", benchmarks_dir=str(benchmarks_dir), max_train_samples=5)
    rows = list(grpo_dataset(args))
    assert [r["prompt_id"] for r in rows] == list(range(5))
    assert all(r["tests"] and r["language"] == "python" and r["prompt"][0]["role"] == "system" for r in rows)


def test_usage_errors_are_one_line_messages():
    with pytest.raises(SystemExit, match="set dataset_name"):
        sft_dataset(PostTrainingScriptArguments(dataset_name=None))
    with pytest.raises(SystemExit, match="dpo_data"):
        dpo_dataset(PostTrainingScriptArguments(dataset_name="mbpp_train"))
    with pytest.raises(SystemExit, match="unknown reward_funcs"):
        build_rewards(["code_execution", "bleu"], GRPOScriptArguments(), None)


def test_a_template_without_system_turns_is_replaced(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'system' %}{{ m['content'] }}{% endif %}{% endfor %}"
    )
    tokenizer.save_pretrained(tmp_path / "tok")
    assert not renders_system(tokenizer)
    model_args = SimpleNamespace(model_name_or_path=str(tmp_path / "tok"), model_revision=None)
    loaded = load_tokenizer(model_args, PostTrainingScriptArguments(chat_template=None))
    assert loaded.chat_template == SYSTEM_CHAT_TEMPLATE and renders_system(loaded)


@pytest.mark.parametrize(
    ("script", "arguments", "message"),
    [
        ("sft", ["--config", "recipes/tiny/sft/config.yaml", "--bogus_key", "1"], "not used"),
        ("sft", ["--config", "recipes/tiny/no_such_recipe.yaml"], "no_such_recipe.yaml"),
        ("grpo", ["--config", "recipes/tiny/grpo/config.yaml", "--model_name_or_path", "/no/such/model"], "model"),
        ("dpo", ["--config", "recipes/tiny/dpo/config.yaml", "--dataset_name", "no/such_run"], "dataset_name"),
    ],
)
def test_script_usage_errors_are_one_line_not_tracebacks(script, arguments, message, tiny_model_dir, tmp_path):
    """A careless command line (unknown key, missing recipe, model or dataset) ends with one ``error:`` line."""
    root = Path(__file__).resolve().parents[1]
    if "--model_name_or_path" not in arguments:
        arguments = [*arguments, "--model_name_or_path", str(tiny_model_dir)]
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, f"trl_scripts/{script}.py", *arguments, "--output_dir", str(tmp_path / "out")]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last, last


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be at least 1, got 0"),
        (["--gradient_accumulation_steps", "0"], "--gradient_accumulation_steps must be at least 1, got 0"),
        (["--max_length", "0"], "--max_length must be at least 1, got 0"),
        (["--learning_rate", "-1"], "--learning_rate must be >= 0, got -1.0"),
    ],
)
def test_training_values_that_fail_deep_inside_trl_are_refused_when_parsed(override, message):
    """Before: a ValueError from torch's DataLoader, a ZeroDivisionError, an AssertionError in TRL's packing, the
    optimizer's ValueError, each a traceback after the model and data were loaded."""
    import trl

    from trl_scripts.common import parse
    from trl_scripts.configs import PostTrainingScriptArguments

    with pytest.raises(SystemExit, match=f"^error: {message}"):
        parse(PostTrainingScriptArguments, trl.SFTConfig, ["--config", "recipes/tiny/sft/config.yaml", *override])
