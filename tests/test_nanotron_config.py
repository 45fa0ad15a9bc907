"""Generated nanotron configs: in sync with the recipe, every field nanotron requires, the same plan as the trainer.

nanotron is not importable here (DEVELOPERS.md); its config dataclasses were read at the pinned commit
(src/nanotron/config/config.py @ 00708b80c88ee7c05c89502e80c3201df916d774, models_config.py, parallelism_config.py)
and are listed below: REQUIRED are fields without a default (dacite raises MissingValueError without them), KNOWN all
fields (dacite runs with strict=True, so any other key is an error).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from recipes.nanotron_config import NANOTRON_COMMIT, build_nanotron_configs, main, render
from recipes.pretrain_config import parse_stages

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE = REPO_ROOT / "recipes" / "seed_coder_8b" / "pretrain.yaml"
COMMITTED = REPO_ROOT / "nanotron_configs" / "seed_coder_8b"

# (required, known) per nanotron dataclass
SCHEMA = {
    "Config": (
        {"general", "parallelism", "model"},
        {
            "general",
            "parallelism",
            "model",
            "tokenizer",
            "checkpoints",
            "logging",
            "tokens",
            "optimizer",
            "data_stages",
            "profiler",
            "lighteval",
            "s3_upload",
        },
    ),
    "GeneralArgs": (
        {"project"},
        {"project", "run", "seed", "step", "consumed_train_samples", "benchmark_csv_path", "ignore_sanity_checks"},
    ),
    "ParallelismArgs": (
        {"dp", "pp", "tp"},
        {
            "dp",
            "pp",
            "tp",
            "pp_engine",
            "tp_mode",
            "tp_linear_async_communication",
            "recompute_layer",
            "tp_recompute_allgather",
            "expert_parallel_size",
            "context_parallel_size",
        },
    ),
    "ModelArgs": (
        {"model_config", "init_method"},
        {"model_config", "init_method", "dtype", "make_vocab_size_divisible_by", "ddp_bucket_cap_mb"},
    ),
    # LlamaConfig: every field has a default; is_llama_config tells nanotron which model class to build
    "LlamaConfig": (
        {"is_llama_config"},
        {
            "bos_token_id",
            "eos_token_id",
            "hidden_act",
            "hidden_size",
            "initializer_range",
            "intermediate_size",
            "is_llama_config",
            "max_position_embeddings",
            "num_attention_heads",
            "num_hidden_layers",
            "attention_bias",
            "num_key_value_heads",
            "pad_token_id",
            "pretraining_tp",
            "rms_norm_eps",
            "rope_scaling",
            "rope_theta",
            "rope_interleaved",
            "tie_word_embeddings",
            "use_cache",
            "vocab_size",
        },
    ),
    "RandomInit": ({"std"}, {"std", "scaling_method"}),
    "ExistingCheckpointInit": ({"path"}, {"path"}),
    "TokenizerArgs": (set(), {"tokenizer_name_or_path", "tokenizer_revision", "tokenizer_max_length"}),
    "CheckpointsArgs": (
        {"checkpoints_path", "checkpoint_interval"},
        {
            "checkpoints_path",
            "checkpoint_interval",
            "save_initial_state",
            "save_final_state",
            "resume_checkpoint_path",
            "load_lr_scheduler",
            "load_optimizer",
            "checkpoints_path_is_shared_file_system",
        },
    ),
    "LoggingArgs": (set(), {"log_level", "log_level_replica", "iteration_step_info_interval"}),
    "TokensArgs": (
        {"sequence_length", "train_steps", "micro_batch_size", "batch_accumulation_per_replica"},
        {
            "sequence_length",
            "train_steps",
            "micro_batch_size",
            "batch_accumulation_per_replica",
            "val_check_interval",
            "limit_val_batches",
            "limit_test_batches",
        },
    ),
    "OptimizerArgs": (
        {
            "optimizer_factory",
            "zero_stage",
            "weight_decay",
            "clip_grad",
            "accumulate_grad_in_fp32",
            "learning_rate_scheduler",
        },
        {
            "optimizer_factory",
            "zero_stage",
            "weight_decay",
            "clip_grad",
            "accumulate_grad_in_fp32",
            "learning_rate_scheduler",
            "weight_decay_exclude_named_params",
        },
    ),
    "AdamWOptimizerArgs": (
        {"adam_eps", "adam_beta1", "adam_beta2", "torch_adam_is_fused"},
        {"adam_eps", "adam_beta1", "adam_beta2", "torch_adam_is_fused", "name"},
    ),
    # lr_warmup_style has a None default, but __post_init__ raises unless it is "linear" or "constant"
    "LRSchedulerArgs": (
        {"learning_rate", "lr_warmup_style"},
        {
            "learning_rate",
            "lr_warmup_steps",
            "lr_warmup_style",
            "lr_decay_style",
            "lr_decay_steps",
            "lr_decay_starting_step",
            "min_decay_lr",
        },
    ),
    "DatasetStageArgs": ({"name", "start_training_step", "data"}, {"name", "start_training_step", "data"}),
    "DataArgs": ({"dataset", "seed"}, {"dataset", "seed", "num_loading_workers"}),
    "NanosetDatasetsArgs": (
        {"dataset_folder"},
        {"dataset_folder", "dataset_weights", "tokenizer_name", "vocab_size", "token_size_in_bytes"},
    ),
}


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # recipes name their model spec relative to the repository root


def _check(section: dict, name: str, where: str) -> None:
    required, known = SCHEMA[name]
    assert isinstance(section, dict), where
    missing = required - set(section)
    unknown = set(section) - known
    assert not missing, f"{where} ({name}): missing required {sorted(missing)}"
    assert not unknown, f"{where} ({name}): fields nanotron does not know {sorted(unknown)}"


def check_against_nanotron_schema(config: dict) -> None:
    _check(config, "Config", "config")
    _check(config["general"], "GeneralArgs", "general")
    _check(config["parallelism"], "ParallelismArgs", "parallelism")
    _check(config["model"], "ModelArgs", "model")
    _check(config["model"]["model_config"], "LlamaConfig", "model.model_config")
    init = config["model"]["init_method"]
    _check(init, "RandomInit" if "std" in init else "ExistingCheckpointInit", "model.init_method")
    _check(config["tokenizer"], "TokenizerArgs", "tokenizer")
    _check(config["checkpoints"], "CheckpointsArgs", "checkpoints")
    _check(config["logging"], "LoggingArgs", "logging")
    _check(config["tokens"], "TokensArgs", "tokens")
    _check(config["optimizer"], "OptimizerArgs", "optimizer")
    _check(config["optimizer"]["optimizer_factory"], "AdamWOptimizerArgs", "optimizer.optimizer_factory")
    scheduler = config["optimizer"]["learning_rate_scheduler"]
    _check(scheduler, "LRSchedulerArgs", "optimizer.learning_rate_scheduler")
    assert scheduler["lr_warmup_style"] in ("linear", "constant")
    assert scheduler["lr_decay_style"] in ("linear", "cosine", "1-sqrt")
    stages = config["data_stages"]
    assert any(stage["start_training_step"] == 1 for stage in stages)  # Config.__post_init__ asserts it
    for index, stage in enumerate(stages):
        _check(stage, "DatasetStageArgs", f"data_stages[{index}]")
        _check(stage["data"], "DataArgs", f"data_stages[{index}].data")
        dataset = stage["data"]["dataset"]
        _check(dataset, "NanosetDatasetsArgs", f"data_stages[{index}].data.dataset")
        assert len(dataset["dataset_weights"]) == len(dataset["dataset_folder"])  # NanosetDatasetsArgs checks it
    model = config["model"]["model_config"]
    tp = config["parallelism"]["tp"]
    assert model["num_attention_heads"] % tp == 0 and model["num_key_value_heads"] >= tp  # Config.__post_init__


def test_committed_configs_are_in_sync_with_the_recipe():
    generated = build_nanotron_configs(RECIPE.relative_to(REPO_ROOT))
    files = sorted(COMMITTED.glob("*.yaml"))
    assert [f.name for f in files] == [f"stage{i}_{name}.yaml" for i, name in enumerate(generated, start=1)]
    for file, config in zip(files, generated.values(), strict=True):
        expected = render(config, RECIPE.relative_to(REPO_ROOT))
        assert file.read_text() == expected, (
            f"{file} is stale: run python -m recipes.nanotron_config recipes/seed_coder_8b/pretrain.yaml "
            "--output nanotron_configs/seed_coder_8b/"
        )
        assert NANOTRON_COMMIT in file.read_text()


@pytest.mark.parametrize("path", sorted(COMMITTED.glob("*.yaml")), ids=lambda p: p.name)
def test_committed_configs_have_every_field_nanotron_requires(path):
    check_against_nanotron_schema(yaml.safe_load(path.read_text()))


def test_nanotron_plan_matches_the_transformers_plan():
    """Same shards and weights, sequence lengths, global batch, steps, LRs; stages chained by checkpoint."""
    recipe = yaml.safe_load(RECIPE.read_text())
    stages = parse_stages(recipe["stages"])
    gpus = 256
    configs = build_nanotron_configs(RECIPE.relative_to(REPO_ROOT), gpus=gpus, tp=4, pp=1)
    previous = None
    for stage, (name, config) in zip(stages, configs.items(), strict=True):
        assert name == stage.name
        parallelism, tokens = config["parallelism"], config["tokens"]
        assert parallelism["dp"] * parallelism["tp"] * parallelism["pp"] == gpus
        per_device = stage.per_device_train_batch_size or recipe["per_device_train_batch_size"]
        global_batch = tokens["micro_batch_size"] * tokens["batch_accumulation_per_replica"] * parallelism["dp"]
        assert global_batch == per_device * recipe["gradient_accumulation_steps"] * gpus
        assert tokens["sequence_length"] == stage.sequence_length
        assert tokens["train_steps"] == math.ceil(stage.tokens / (global_batch * stage.sequence_length))
        dataset = config["data_stages"][0]["data"]["dataset"]
        assert dataset["dataset_folder"] == [s.path for s in stage.sources]
        assert dataset["dataset_weights"] == [s.weight for s in stage.sources]
        lr = config["optimizer"]["learning_rate_scheduler"]["learning_rate"]
        assert lr == pytest.approx(recipe["learning_rate"] * stage.lr_multiplier)
        assert config["tokenizer"]["tokenizer_name_or_path"] == recipe["tokenizer_name_or_path"]
        init = config["model"]["init_method"]
        assert init == ({"std": 0.02} if previous is None else {"path": previous})
        previous = f"{config['checkpoints']['checkpoints_path']}/{tokens['train_steps']}"
    lrs = [c["optimizer"]["learning_rate_scheduler"]["learning_rate"] for c in configs.values()]
    assert lrs == pytest.approx([3e-4, 3e-4 / math.sqrt(10), 3e-5])  # facts §6
    assert [c["tokens"]["sequence_length"] for c in configs.values()] == [8192, 32768, 32768]
    model = configs["pretrain"]["model"]["model_config"]
    assert model["rope_interleaved"] is False and model["vocab_size"] == 155136 and model["num_hidden_layers"] == 32


def test_decaying_stage_maps_to_nanotron_decay_fields(tmp_path):
    recipe = yaml.safe_load((REPO_ROOT / "recipes" / "tiny" / "pretrain.yaml").read_text())
    recipe["model_spec"] = str(REPO_ROOT / recipe["model_spec"])
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(recipe))
    configs = build_nanotron_configs(path, gpus=2, tp=2, pp=1)
    for config in configs.values():
        check_against_nanotron_schema(config)
    scheduler = configs["continued"]["optimizer"]["learning_rate_scheduler"]
    steps = configs["continued"]["tokens"]["train_steps"]
    assert scheduler["lr_decay_style"] == "linear" and scheduler["min_decay_lr"] == 0.0
    assert scheduler["lr_decay_starting_step"] + scheduler["lr_decay_steps"] == steps
    assert scheduler["lr_decay_steps"] == round(0.2 * steps)
    constant = configs["pretrain"]["optimizer"]["learning_rate_scheduler"]
    assert constant["min_decay_lr"] == constant["learning_rate"]  # decays from the LR to itself: constant


def test_cli_writes_files_and_rejects_impossible_parallelism(tmp_path, capsys):
    main([str(RECIPE.relative_to(REPO_ROOT)), "--output", str(tmp_path / "out"), "--gpus", "64", "--tp", "2"])
    written = sorted((tmp_path / "out").glob("*.yaml"))
    assert len(written) == 3
    assert yaml.safe_load(written[0].read_text())["parallelism"]["dp"] == 32
    with pytest.raises(SystemExit) as raised:
        main([str(RECIPE.relative_to(REPO_ROOT)), "--output", str(tmp_path / "bad"), "--tp", "16"])
    assert raised.value.code == 2 and "tp=16" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--gpus", "--tp", "--pp"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_parallelism_below_one_is_an_error_not_a_division_by_zero(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as raised:
        main([str(RECIPE.relative_to(REPO_ROOT)), "--output", str(tmp_path / "bad"), flag, value])
    err = capsys.readouterr().err
    assert raised.value.code == 2 and "must be at least 1" in err and "Traceback" not in err
