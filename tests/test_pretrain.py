"""Staged pretraining on real tokenised code: specs, recipes, shards, mixing, bad input, training, resume, eval.

Shards are made by datatrove's own DocumentTokenizer over the Python stdlib with the tiny tokenizer; training is
transformers' Trainer in process (the kill/resume test launches `accelerate launch` for real).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from recipes.local_code import stdlib_python_files, stdlib_root
from recipes.model_specs import count_parameters_on_meta, load_model_spec
from recipes.pretrain import main as pretrain_main
from recipes.pretrain import parse_args, push_final_model
from recipes.pretrain_config import RecipeError, parse_stages
from recipes.pretrain_data import (
    ShardError,
    WeightedMixture,
    check_shards_match,
    collate_windows,
    inspect_shard_folder,
    open_shard_folder,
    tokenize_files,
)
from recipes.tiny_model import EOS_TOKEN, TinyModelConfig, build_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- shared inputs ---


def split_stdlib(limit: int = 60) -> tuple[list[Path], list[Path]]:
    """Two real sources: stdlib modules and stdlib tests (files under test/ or tests/ folders)."""
    root = stdlib_root()
    files = stdlib_python_files(limit_files=None)
    tests = [f for f in files if any(p in ("test", "tests") for p in f.relative_to(root).parts[:-1])]
    test_set = set(tests)
    return [f for f in files if f not in test_set][:limit], tests[:limit]


def tiny_spec(path: Path, vocab_size: int, max_positions: int = 512) -> Path:
    spec = yaml.safe_load((REPO_ROOT / "recipes" / "tiny" / "model.yaml").read_text())
    spec.update(vocab_size=vocab_size, max_position_embeddings=max_positions)
    path.write_text(yaml.safe_dump(spec))
    return path


def write_recipe(path: Path, *, spec: Path, tokenizer: Path, output: Path, stages: list[dict], **training) -> Path:
    recipe = {
        "model_spec": str(spec),
        "tokenizer_name_or_path": str(tokenizer),
        "stages": stages,
        "output_dir": str(output),
        "seed": 7,
        "learning_rate": 3e-3,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 1,
        "logging_steps": 1,
        "save_steps": 4,
        "report_to": ["tensorboard"],
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "use_cpu": True,
    }
    recipe.update(training)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory, tiny_model_dir):
    """Two datatrove shard folders (stdlib modules, stdlib tests) made with the tiny tokenizer, plus the spec."""
    root = tmp_path_factory.mktemp("shards")
    modules, tests = split_stdlib(60)
    code = tokenize_files(modules, root / "code", tiny_model_dir, eos_token=EOS_TOKEN)
    code_tests = tokenize_files(tests, root / "tests", tiny_model_dir, eos_token=EOS_TOKEN)
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    return {
        "code": code,
        "tests": code_tests,
        "files": {"code": modules, "tests": tests},
        "tokenizer": tiny_model_dir,
        "spec": tiny_spec(root / "model.yaml", vocab),
        "vocab": vocab,
    }


def two_stages(shards, *, tokens=(2048, 1536), seq=(32, 64)) -> list[dict]:
    return [
        {
            "name": "main",
            "sources": [{"path": str(shards["code"]), "weight": 0.7}, {"path": str(shards["tests"]), "weight": 0.3}],
            "sequence_length": seq[0],
            "tokens": tokens[0],
            "warmup_steps": 2,
        },
        {
            "name": "long",
            "sources": [{"path": str(shards["code"]), "weight": 0.5}, {"path": str(shards["tests"]), "weight": 0.5}],
            "sequence_length": seq[1],
            "tokens": tokens[1],
            "lr_multiplier": 1 / math.sqrt(10),
            "decay_fraction": 0.5,
        },
    ]


def losses(trainer_state: Path) -> dict[int, float]:
    history = json.loads(trainer_state.read_text())["log_history"]
    return {record["step"]: record["loss"] for record in history if "loss" in record}


# --- specs and recipes ---


def test_seed_coder_8b_spec_builds_8_25b_parameters_on_meta():
    spec = load_model_spec(REPO_ROOT / "recipes" / "seed_coder_8b" / "model.yaml")
    counted = count_parameters_on_meta(spec)
    assert counted == spec.num_parameters()
    assert 8.2e9 < counted < 8.3e9, counted  # 8,250,462,208 (facts §6: 8.2B, 32 layers)
    config = spec.to_llama_config()
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (32, 4096, 14336)
    assert (config.num_attention_heads, config.num_key_value_heads, config.vocab_size) == (32, 8, 155136)
    assert (config.bos_token_id, config.eos_token_id, config.max_position_embeddings) == (0, 2, 32768)
    assert config.tie_word_embeddings is False and config.rms_norm_eps == 1e-6
    assert config.rope_parameters["rope_theta"] == 500000.0


def test_tiny_spec_is_the_tiny_model_shape():
    spec = load_model_spec(REPO_ROOT / "recipes" / "tiny" / "model.yaml")
    tiny = TinyModelConfig()
    for name in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
        assert getattr(spec, name) == getattr(tiny, name), name
    assert count_parameters_on_meta(spec) == spec.num_parameters()


def test_model_spec_rejects_unknown_keys(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("num_hidden_layers: 2\nhiden_size: 64\n")
    with pytest.raises(ValueError, match="hiden_size"):
        load_model_spec(path)


def test_recipes_parse_from_yaml_with_cli_overrides(tmp_path):
    script_args, training_args = parse_args(
        ["--config", str(REPO_ROOT / "recipes/tiny/pretrain.yaml"), "--learning_rate", "1e-3", "--output_dir", "x"]
    )
    assert training_args.learning_rate == 1e-3 and training_args.output_dir == "x"
    stages = script_args.stage_specs()
    assert [s.name for s in stages] == ["pretrain", "continued"]
    assert stages[1].sequence_length > stages[0].sequence_length
    assert stages[1].lr_multiplier == pytest.approx(1 / math.sqrt(10))
    script_args, training_args = parse_args(
        ["--config", str(REPO_ROOT / "recipes/seed_coder_8b/pretrain.yaml"), "--bf16", "false"]  # no bf16 on CPU
    )
    stages = script_args.stage_specs()
    assert [s.sequence_length for s in stages] == [8192, 32768, 32768]
    assert sum(s.tokens for s in stages) == 6_000_000_000_000  # facts §6: 6T tokens
    assert training_args.learning_rate * stages[1].lr_multiplier == pytest.approx(3e-4 / math.sqrt(10))
    assert training_args.learning_rate * stages[2].lr_multiplier == pytest.approx(3e-5)
    # the stages can be replaced from the command line as JSON
    replaced = json.dumps([{"name": "only", "sources": [{"path": "p"}], "sequence_length": 16, "tokens": 100}])
    script_args, _ = parse_args(["--config", str(REPO_ROOT / "recipes/tiny/pretrain.yaml"), "--stages", replaced])
    assert [s.name for s in script_args.stage_specs()] == ["only"]


@pytest.mark.parametrize(
    "stage, message",
    [
        ({"name": "a", "sources": [{"path": "p"}], "sequence_length": 8, "tokens": 9, "lr": 1}, "unknown keys"),
        ({"name": "a", "sources": [{"path": "p"}], "tokens": 9}, "missing keys"),
        ({"name": "a", "sources": [{"path": "p", "weight": -1}], "sequence_length": 8, "tokens": 9}, "weight"),
        ({"name": "a", "sources": [], "sequence_length": 8, "tokens": 9}, "no sources"),
        ({"name": "a", "sources": [{"path": "p"}], "sequence_length": 8, "tokens": 9, "decay_type": "exp"}, "decay"),
    ],
)
def test_bad_stages_are_one_line_errors(stage, message):
    with pytest.raises(RecipeError, match=message):
        parse_stages([stage])


def test_training_values_that_fail_deep_inside_the_trainer_are_refused_first(capsys):
    """The check the TRL scripts share: --gradient_accumulation_steps 0 was a ZeroDivisionError traceback."""
    recipe = str(REPO_ROOT / "recipes/tiny/pretrain.yaml")
    assert pretrain_main(["--config", recipe, "--gradient_accumulation_steps", "0"]) == 2
    assert "error: --gradient_accumulation_steps must be at least 1, got 0" in capsys.readouterr().err


# --- shards and mixing ---


def test_shards_hold_exactly_the_tokenizer_output(shards):
    """The helper only wraps datatrove: documents in the shards are the tokenizer's encodings plus EOS (peer:
    the tokenizers library on the same files)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(shards["tokenizer"]) / "tokenizer.json"))
    eos = tokenizer.token_to_id(EOS_TOKEN)
    expected = sorted(
        tuple(tokenizer.encode(path.read_text(encoding="utf-8")).ids + [eos]) for path in shards["files"]["tests"]
    )
    info = inspect_shard_folder(shards["tests"], check="full")
    (file,) = info.files
    tokens = np.fromfile(file, dtype=np.uint16)
    ends = np.fromfile(file + ".index", dtype=np.uint64)
    documents = sorted(tuple(tokens[a:b].tolist()) for a, b in zip(np.r_[0, ends[:-1]], ends, strict=True))
    assert documents == expected
    assert info.tokenizer_name.endswith("tokenizer.json") and info.token_size == 2
    assert info.max_token_id < shards["vocab"] and info.total_tokens == len(tokens)
    # datatrove's reader gives consecutive windows of seq_len + 1 tokens; the collator makes inputs and next tokens
    dataset = open_shard_folder(info, 16)
    assert len(dataset) == len(tokens) // 17
    assert dataset[3]["input_ids"].tolist() == tokens[3 * 17 : 4 * 17].tolist()
    batch = collate_windows([dataset[0], dataset[1]])
    assert batch["input_ids"].shape == (2, 16) and torch.equal(
        batch["shift_labels"][:, :-1], batch["input_ids"][:, 1:]
    )


class _Tagged(torch.utils.data.Dataset):
    def __init__(self, tag: int, length: int):
        self.tag, self.length = tag, length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return {"input_ids": torch.tensor([self.tag, index])}


def test_mixture_draws_sources_in_proportion_seeded_and_in_order():
    weights = [0.5, 0.3, 0.15, 0.05]
    sources = [_Tagged(tag, 100_000) for tag in range(4)]
    mixture = WeightedMixture(sources, weights, num_samples=10_000, seed=3, block_size=512)
    drawn = [mixture[i]["input_ids"].tolist() for i in range(len(mixture))]
    tags = np.array([tag for tag, _ in drawn])
    for tag, weight in enumerate(weights):
        assert abs((tags == tag).mean() - weight) <= 0.02 * weight, (tag, (tags == tag).mean())
    # each source is read in its own order, from its start, without gaps or repeats
    for tag in range(4):
        assert [index for t, index in drawn if t == tag] == list(range(int((tags == tag).sum())))
    # the same seed gives the same order from any index (resuming needs no replay); another seed another order
    again = WeightedMixture(sources, weights, num_samples=10_000, seed=3, block_size=512)
    assert [again[i]["input_ids"].tolist() for i in range(7_000, 7_050)] == drawn[7_000:7_050]
    other = WeightedMixture(sources, weights, num_samples=10_000, seed=4, block_size=512)
    assert [other[i]["input_ids"].tolist() for i in range(200)] != drawn[:200]
    # a short source is read again from its start (and reported as repeated)
    small = WeightedMixture([_Tagged(0, 10), _Tagged(1, 10_000)], [0.5, 0.5], num_samples=1_000, seed=0)
    assert max(small[i]["input_ids"][1].item() for i in range(1_000) if small[i]["input_ids"][0] == 0) == 9
    assert small.passes_over_sources()[0] > 1 > small.passes_over_sources()[1]
    with pytest.raises(IndexError):
        mixture[10_000]


# --- bad input: clear one-line errors before any step ---


def _run_expecting_error(tmp_path, capsys, shards, stages, **overrides):
    output = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        spec=overrides.pop("spec", shards["spec"]),
        tokenizer=overrides.pop("tokenizer", shards["tokenizer"]),
        output=output,
        stages=stages,
        **overrides,
    )
    assert pretrain_main(["--config", str(recipe)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ")
    assert not list(output.rglob("checkpoint-*")) and not list(output.rglob("final"))  # nothing trained
    return error


def test_missing_shard_folder_is_reported_before_training(tmp_path, capsys, shards):
    stages = two_stages(shards)
    stages[1]["sources"][1]["path"] = str(tmp_path / "never-tokenized")
    error = _run_expecting_error(tmp_path, capsys, shards, stages)
    assert "never-tokenized" in error and "does not exist" in error


def test_sequence_longer_than_positions_is_reported(tmp_path, capsys, shards):
    stages = two_stages(shards, seq=(32, 1024))  # the test spec has 512 positions
    error = _run_expecting_error(tmp_path, capsys, shards, stages)
    assert "1024" in error and "max_position_embeddings" in error


@pytest.fixture(scope="module")
def other_tokenizer_shards(tmp_path_factory):
    """Shards of the same code made with another tokenizer (trained on other files, larger vocabulary)."""
    root = tmp_path_factory.mktemp("other")
    modules, tests = split_stdlib(60)
    other = build_tiny_model(root / "tok", modules[30:90], TinyModelConfig(vocab_size=1536))
    return tokenize_files(tests, root / "shards", other, eos_token=EOS_TOKEN)


def test_shards_from_another_tokenizer_are_reported(tmp_path, capsys, shards, other_tokenizer_shards):
    stages = two_stages(shards)
    stages[0]["sources"][1]["path"] = str(other_tokenizer_shards)
    error = _run_expecting_error(tmp_path, capsys, shards, stages)
    assert "another tokenizer" in error or "vocabulary differs" in error or "differs" in error


def test_shards_without_metadata_are_caught_by_token_ids(tmp_path, shards, other_tokenizer_shards):
    import shutil

    from transformers import AutoTokenizer

    copy = tmp_path / "no-metadata"
    shutil.copytree(other_tokenizer_shards, copy)
    for metadata in copy.glob("*.metadata"):
        metadata.unlink()
    info = inspect_shard_folder(copy, check="full")
    assert info.tokenizer_name is None and info.max_token_id >= shards["vocab"]
    with pytest.raises(ShardError, match="another tokenizer"):
        check_shards_match(
            info, tokenizer=AutoTokenizer.from_pretrained(shards["tokenizer"]), vocab_size=shards["vocab"], what="x"
        )


def test_truncated_shard_is_reported(tmp_path, shards):
    import shutil

    copy = tmp_path / "truncated"
    shutil.copytree(shards["tests"], copy)
    (file,) = copy.glob("*.ds")
    file.write_bytes(file.read_bytes()[:-1])
    with pytest.raises(ShardError, match="truncated"):
        inspect_shard_folder(copy)


# --- training ---


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shards):
    """Two stages in process: 16 steps at 32 tokens, then 6 steps at 64 tokens with LR/√10 and a final decay."""
    root = tmp_path_factory.mktemp("trained")
    stages = two_stages(shards, tokens=(16 * 4 * 32, 6 * 4 * 64))
    recipe = write_recipe(
        root / "recipe.yaml",
        spec=shards["spec"],
        tokenizer=shards["tokenizer"],
        output=root / "run",
        stages=stages,
        peak_tflops=0.05,  # a stated peak for this CPU, so the MFU computation is exercised
    )
    assert pretrain_main(["--config", str(recipe)]) == 0
    return {"root": root, "recipe": recipe, "run": root / "run", "stages": stages, "spec": shards["spec"]}


def test_loss_falls_on_tokenized_code(trained):
    main = losses(trained["run"] / "main" / "checkpoint-16" / "trainer_state.json")
    assert sorted(main) == list(range(1, 17))
    first, last = np.mean([main[s] for s in (1, 2)]), np.mean([main[s] for s in (15, 16)])
    assert last < first - 0.5, main  # from ~ln(vocab) = 6.9 down
    long = losses(trained["run"] / "long" / "checkpoint-6" / "trainer_state.json")
    assert np.mean(list(long.values())) < first  # the second stage starts from the trained weights


def test_stage_schedules_and_logs(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    state = json.loads((trained["run"] / "long" / "checkpoint-6" / "trainer_state.json").read_text())
    lrs = [r["learning_rate"] for r in state["log_history"] if "learning_rate" in r]  # the LR each step used
    peak = 3e-3 / math.sqrt(10)  # constant at LR/√10, then the last half (3 steps) decays linearly
    assert lrs == pytest.approx([peak] * 4 + [peak * 2 / 3, peak / 3])
    main = json.loads((trained["run"] / "main" / "checkpoint-16" / "trainer_state.json").read_text())
    main_lrs = [r["learning_rate"] for r in main["log_history"] if "learning_rate" in r]
    assert main_lrs == pytest.approx([0.0, 1.5e-3] + [3e-3] * 14)  # 2 warm-up steps, then constant
    records = [r for r in state["log_history"] if "loss" in r]
    assert all(r["tokens_per_second"] > 0 for r in records[1:])
    flops_per_token = load_model_spec(trained["spec"]).training_flops_per_token(64)
    for record in records[1:]:  # MFU = achieved model FLOP/s over the stated peak
        assert record["mfu"] == pytest.approx(record["tokens_per_second"] * flops_per_token / 0.05e12)
    assert records[-1]["tokens_seen"] == 16 * 4 * 32 + 6 * 4 * 64  # counted across stages
    (events,) = (trained["run"] / "main" / "runs").rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/tokens_per_second", "train/tokens_seen"} <= tags
    assert len(accumulator.Scalars("train/loss")) == 16


def test_final_checkpoints_load_with_card_and_tokenizer(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = trained["run"] / "long" / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    encoded = tokenizer("def add(a, b):\n    return", return_tensors="pt")
    out = model.generate(**encoded, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == encoded.input_ids.shape[1] + 4
    card = (final / "README.md").read_text()
    assert "| main |" in card and "| long |" in card and "recipes/pretrain.py" in card
    done = json.loads((final / "stage_complete.json").read_text())
    assert done["steps"] == 6 and done["stage"] == "long"


def test_a_second_launch_of_a_finished_run_trains_nothing(trained, capsys):
    before = (trained["run"] / "long" / "final" / "model.safetensors").stat().st_mtime_ns
    assert pretrain_main(["--config", str(trained["recipe"])]) == 0
    assert (trained["run"] / "long" / "final" / "model.safetensors").stat().st_mtime_ns == before


def test_changed_plan_on_an_existing_run_is_refused(trained, tmp_path, capsys):
    stages = json.loads(json.dumps(trained["stages"]))
    stages[0]["sources"][0]["weight"] = 0.9
    recipe = yaml.safe_load(trained["recipe"].read_text())
    recipe["stages"] = stages
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert pretrain_main(["--config", str(path)]) == 2
    assert "different plan" in capsys.readouterr().err


def test_second_stage_starts_from_the_first_stages_final_weights(trained, tmp_path):
    """The long stage alone, initialised from main/final, reproduces the two-stage run's long stage exactly."""
    recipe = yaml.safe_load(trained["recipe"].read_text())
    recipe["stages"] = [trained["stages"][1]]
    recipe["init_from"] = str(trained["run"] / "main" / "final")
    recipe["output_dir"] = str(tmp_path / "alone")
    path = tmp_path / "alone.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert pretrain_main(["--config", str(path)]) == 0
    alone = losses(tmp_path / "alone" / "long" / "checkpoint-6" / "trainer_state.json")
    staged = losses(trained["run"] / "long" / "checkpoint-6" / "trainer_state.json")
    assert alone == pytest.approx(staged, abs=1e-6)


def test_push_to_hub_uploads_the_final_model(trained):
    class StandInHfApi:  # the Hub is unreachable here; records what would be uploaded
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, **kwargs):
            self.calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    api = StandInHfApi()
    final = trained["run"] / "long" / "final"
    url = push_final_model(final, "org/tiny-seed-coder", api=api)
    assert url.endswith("org/tiny-seed-coder")
    assert api.calls[0][2]["repo_type"] == "model"
    assert api.calls[1][2]["folder_path"] == str(final) and api.calls[1][2]["repo_type"] == "model"


@pytest.mark.slow
def test_checkpoint_runs_through_eval_run(trained, tmp_path, benchmarks_dir):
    """`python -m eval.run --model CKPT --tasks humaneval --limit 5` on the pretrained checkpoint (~40 s)."""
    final = trained["run"] / "long" / "final"
    out = tmp_path / "eval"
    command = [
        sys.executable,
        "-m",
        "eval.run",
        "--model",
        str(final),
        "--tasks",
        "humaneval",
        "--limit",
        "5",
        "--max-new-tokens",
        "16",
        "--data-dir",
        str(benchmarks_dir),
        "--output-dir",
        str(out),
    ]
    subprocess.run(
        command,
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        timeout=600,
    )
    result = json.loads((out / "results.json").read_text())
    assert result["tasks"]["humaneval"]["num_problems"] == 5
    # the score is what the per-sample verdicts say (not merely a number in [0, 1])
    records = [json.loads(line) for line in (out / "problems" / "humaneval.jsonl").read_text().splitlines()]
    assert len(records) == 5
    solved = sum(r["samples"][0]["passed"] for r in records)
    assert result["tasks"]["humaneval"]["pass@1"] == pytest.approx(solved / len(records))
    assert all(s["passed"] == (s["status"] == "passed") for r in records for s in r["samples"])


# --- exact resume after SIGKILL, through `accelerate launch` ---


def _launch(recipe: Path, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO_ROOT / "recipes/accelerate_configs/cpu.yaml"),
        "--num_cpu_threads_per_process",
        "1",
        str(REPO_ROOT / "recipes/pretrain.py"),
        "--config",
        str(recipe),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


@pytest.mark.slow
def test_run_killed_mid_stage_resumes_step_for_step(tmp_path, shards):
    """SIGKILL after checkpoint-4 of a 12-step stage; the relaunch continues from it and every loss matches an
    uninterrupted run to 1e-6 (model, optimizer, scheduler, RNG and data position restored)."""
    stages = [two_stages(shards, tokens=(12 * 4 * 32, 1))[0]]
    reference = write_recipe(
        tmp_path / "reference.yaml",
        spec=shards["spec"],
        tokenizer=shards["tokenizer"],
        output=tmp_path / "reference",
        stages=stages,
    )
    killed = write_recipe(
        tmp_path / "killed.yaml",
        spec=shards["spec"],
        tokenizer=shards["tokenizer"],
        output=tmp_path / "killed",
        stages=stages,
    )
    process = _launch(reference, tmp_path / "reference.log")
    assert process.wait(timeout=600) == 0, (tmp_path / "reference.log").read_text()[-3000:]

    process = _launch(killed, tmp_path / "killed-1.log")
    marker = tmp_path / "killed" / "main" / "checkpoint-4" / "trainer_state.json"
    deadline = time.monotonic() + 600
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), (tmp_path / "killed-1.log").read_text()[-3000:]
    os.killpg(process.pid, signal.SIGKILL)  # the launcher and the training process: no clean shutdown
    process.wait()
    assert not (tmp_path / "killed" / "main" / "final").exists()

    process = _launch(killed, tmp_path / "killed-2.log")
    assert process.wait(timeout=600) == 0, (tmp_path / "killed-2.log").read_text()[-3000:]
    assert "resuming from" in (tmp_path / "killed-2.log").read_text()
    expected = losses(tmp_path / "reference" / "main" / "checkpoint-12" / "trainer_state.json")
    resumed = losses(tmp_path / "killed" / "main" / "checkpoint-12" / "trainer_state.json")
    assert sorted(resumed) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert abs(resumed[step] - expected[step]) <= 1e-6, (step, resumed[step], expected[step])


def test_mixture_index_lookup_matches_a_plain_enumeration_of_blocks():
    """The O(log) index -> (source, sample) lookup against building every block in order (the reference)."""
    weights = [0.62, 0.12, 0.2, 0.06]
    mixture = WeightedMixture(
        [_Tagged(t, 10**6) for t in range(4)], weights, num_samples=6_000, seed=11, block_size=97
    )
    reference, seen = [], [0] * 4
    block = 0
    while len(reference) < 6_000:
        counts = np.floor((block + 1) * 97 * np.array(weights) + 1e-9) - np.floor(
            block * 97 * np.array(weights) + 1e-9
        )
        order = np.repeat(np.arange(4), counts.astype(int))
        order = order[np.random.default_rng([11, block]).permutation(len(order))]
        for source in order:
            reference.append((int(source), seen[source]))
            seen[source] += 1
        block += 1
    assert [mixture.locate(i) for i in range(6_000)] == reference[:6_000]
