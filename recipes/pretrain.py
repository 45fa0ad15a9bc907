"""Staged pretraining with transformers' Trainer over datatrove token shards.

    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/pretrain.py \\
        --config recipes/tiny/pretrain.yaml [--output_dir DIR] [--learning_rate X] [--push_to_hub --hub_model_id ID]

Stages run in order; each starts from the previous stage's final weights (the first from ``init_from`` or a seeded
random init of ``model_spec``). Per stage, under ``OUTPUT_DIR/<stage>/``: ``checkpoint-N/`` (model, tokenizer,
optimizer, scheduler, RNG, trainer state: a killed run started again with the same command resumes from the last
complete one at the exact data position), ``final/`` (HF model + tokenizer + model card), ``runs/`` (TensorBoard:
loss, learning rate, tokens/s, MFU). Everything that can be wrong with the inputs (missing shard folders, shards made
with another tokenizer, a sequence length beyond the model's positions, a changed plan on resume) is reported as one
line before the first step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `accelerate launch recipes/pretrain.py` runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove_pipelines.yaml_files import yaml_error_message  # noqa: E402
from recipes.model_specs import ModelSpec, load_model_spec  # noqa: E402
from recipes.pretrain_config import PretrainArguments, RecipeError, StageSpec, stage_summary  # noqa: E402
from recipes.pretrain_data import (  # noqa: E402
    ShardError,
    ShardFolderInfo,
    WeightedMixture,
    check_shards_match,
    collate_windows,
    inspect_shard_folder,
    open_shard_folder,
)

logger = logging.getLogger("recipes.pretrain")

STAGE_DONE_FILE = "stage_complete.json"
PLAN_FILE = "stage_plan.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class StagePlan:
    """A stage with everything derived from it, computed and checked before any training starts."""

    spec: StageSpec
    shards: list[ShardFolderInfo]
    per_device_batch: int
    grad_accum: int
    global_batch: int
    max_steps: int
    output_dir: Path

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch * self.spec.sequence_length

    def fingerprint(self, seed: int) -> dict[str, Any]:
        """What must not change between a killed run and its resumption."""
        return {
            "stage": stage_summary(self.spec),
            "global_batch": self.global_batch,
            "max_steps": self.max_steps,
            "seed": seed,
            "shard_files": [[Path(f).name for f in info.files] for info in self.shards],
        }


def plan_stages(
    script_args: PretrainArguments, training_args, spec: ModelSpec, tokenizer, world_size: int
) -> list[StagePlan]:
    """Check every stage against the model and its shards; compute batch sizes and step counts."""
    plans = []
    for stage in script_args.stage_specs():
        where = f"stage {stage.name}"
        if stage.sequence_length > spec.max_position_embeddings:
            raise RecipeError(
                f"{where}: sequence_length {stage.sequence_length} exceeds the model's max_position_embeddings "
                f"{spec.max_position_embeddings}"
            )
        shards = []
        for source in stage.sources:
            info = inspect_shard_folder(
                source.path,
                expected_token_size=4 if spec.vocab_size > 1 << 16 else 2,
                check=script_args.shard_check,
            )
            check_shards_match(info, tokenizer=tokenizer, vocab_size=spec.vocab_size, what=where)
            if info.total_tokens < stage.sequence_length + 1:
                raise RecipeError(
                    f"{where}: {source.path} holds {info.total_tokens} tokens, less than one window of "
                    f"{stage.sequence_length + 1}"
                )
            shards.append(info)
        per_device = stage.per_device_train_batch_size or training_args.per_device_train_batch_size
        grad_accum = stage.gradient_accumulation_steps or training_args.gradient_accumulation_steps
        global_batch = per_device * grad_accum * world_size
        max_steps = math.ceil(stage.tokens / (global_batch * stage.sequence_length))
        if script_args.max_steps_per_stage is not None:
            max_steps = min(max_steps, script_args.max_steps_per_stage)
        plans.append(
            StagePlan(
                spec=stage,
                shards=shards,
                per_device_batch=per_device,
                grad_accum=grad_accum,
                global_batch=global_batch,
                max_steps=max_steps,
                output_dir=Path(training_args.output_dir) / stage.name,
            )
        )
    return plans


def stage_training_args(training_args, plan: StagePlan):
    """The run's TrainingArguments specialised to one stage: its steps, batch, LR and WSD schedule."""
    stage = plan.spec
    return dataclasses.replace(
        training_args,
        output_dir=str(plan.output_dir),
        max_steps=plan.max_steps,
        num_train_epochs=1,
        per_device_train_batch_size=plan.per_device_batch,
        gradient_accumulation_steps=plan.grad_accum,
        learning_rate=training_args.learning_rate * stage.lr_multiplier,
        warmup_steps=min(stage.warmup_steps, plan.max_steps),
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs={
            "num_decay_steps": stage.num_decay_steps(plan.max_steps),
            "decay_type": stage.decay_type,
            "min_lr_ratio": stage.min_lr_ratio,
        },
        save_steps=stage.save_steps or training_args.save_steps,
        train_sampling_strategy="sequential",  # the mixture is already seeded and shuffled; the index is the position
        remove_unused_columns=False,
        push_to_hub=False,  # the run pushes its final model once (push_final_model)
    )


def stage_seed(seed: int, stage_name: str) -> int:
    """The mixture's seed for a stage: depends on the run seed and the stage's name, not on its position, so a stage
    rerun alone (``init_from`` the previous stage's final weights) draws the same data."""
    return zlib.crc32(f"{seed}:{stage_name}".encode())


def last_complete_checkpoint(stage_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` whose ``trainer_state.json`` (written last by the Trainer) exists."""
    if not stage_dir.is_dir():
        return None
    found = []
    for child in stage_dir.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def _check_plan_unchanged(plan: StagePlan, seed: int, is_main: bool) -> None:
    path = plan.output_dir / PLAN_FILE
    fingerprint = plan.fingerprint(seed)
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous != json.loads(json.dumps(fingerprint)):
            raise RecipeError(
                f"stage {plan.spec.name}: {plan.output_dir} holds a run with a different plan (sources, weights, "
                "batch, steps or seed changed); resume with the same recipe or pick a new --output_dir"
            )
    elif is_main:
        plan.output_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(fingerprint, indent=2))
        partial.replace(path)  # atomic: other ranks never read half a file


def model_card(spec: ModelSpec, plans: list[StagePlan], done: int, final_loss: float | None, command: str) -> str:
    """README.md for a stage's final checkpoint: the stages so far with their data, and how to reproduce."""
    import yaml

    header = {"library_name": "transformers", "pipeline_tag": "text-generation", "tags": ["code", "seed-coder"]}
    rows = [
        "| stage | sources (weight) | sequence length | tokens | steps | LR multiplier | schedule |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for plan in plans[: done + 1]:
        stage = plan.spec
        sources = ", ".join(f"{s.name} ({s.weight:g})" for s in stage.sources)
        schedule = f"warm-up {stage.warmup_steps}, {stage.decay_type} decay {stage.num_decay_steps(plan.max_steps)}"
        rows.append(
            f"| {stage.name} | {sources} | {stage.sequence_length} | {plan.max_steps * plan.tokens_per_step:,} | "
            f"{plan.max_steps} | {stage.lr_multiplier:g} | {schedule} |"
        )
    parameters = spec.num_parameters()
    loss = f"{final_loss:.4f}" if final_loss is not None else "n/a"
    return "\n".join(
        [
            "---",
            yaml.safe_dump(header, sort_keys=False).rstrip(),
            "---",
            "",
            f"# Seed-Coder-style base model ({parameters / 1e6:,.1f}M parameters), after stage "
            f"`{plans[done].spec.name}`",
            "",
            "Pretrained with the seed-coder recipes (transformers Trainer over datatrove token shards), a reproduction"
            " of Seed-Coder: Let the Code Model Curate Data for Itself (ByteDance Seed, 2025), arXiv:2506.03524.",
            "",
            f"Architecture: Llama, {spec.num_hidden_layers} layers, hidden {spec.hidden_size}, "
            f"{spec.num_attention_heads}/{spec.num_key_value_heads} heads, vocab {spec.vocab_size}, RoPE θ "
            f"{spec.rope_theta:g}. Final training loss: {loss}.",
            "",
            "## Stages",
            "",
            *rows,
            "",
            "## Reproduce",
            "",
            "```bash",
            command,
            "```",
            "",
        ]
    )


def push_final_model(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None, api=None) -> str:
    """Upload a final checkpoint folder (weights, tokenizer, card) as a model repo; ``api``: a stand-in in tests."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message="Upload model")
    return f"https://huggingface.co/{repo_id}"


def _initial_model(script_args: PretrainArguments, spec: ModelSpec, seed: int):
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    if script_args.init_from:
        return AutoModelForCausalLM.from_pretrained(
            script_args.init_from, attn_implementation=script_args.attn_implementation
        )
    torch.manual_seed(seed)
    config = spec.to_llama_config(attn_implementation=script_args.attn_implementation)
    return LlamaForCausalLM(config)


def run(script_args: PretrainArguments, training_args, command: str = "", hub_api=None) -> Path:
    """Plan, check, then train every stage in order; returns the last stage's final checkpoint folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    from recipes.pretrain_callbacks import ThroughputCallback, detect_peak_tflops

    started_at = time.perf_counter()  # the first trained stage's time to first step includes planning and checks
    try:
        spec = load_model_spec(script_args.model_spec)
    except (OSError, ValueError) as error:
        raise RecipeError(f"model spec {script_args.model_spec}: {error}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(script_args.tokenizer_name_or_path)
    except (OSError, ValueError) as error:
        raise RecipeError(f"tokenizer {script_args.tokenizer_name_or_path}: {error}") from None
    if len(tokenizer) > spec.vocab_size:
        raise RecipeError(
            f"tokenizer {script_args.tokenizer_name_or_path} has {len(tokenizer)} tokens, more than the model's "
            f"vocab_size {spec.vocab_size}"
        )
    world_size = max(1, training_args.world_size)
    plans = plan_stages(script_args, training_args, spec, tokenizer, world_size)
    for plan in plans:
        _check_plan_unchanged(plan, training_args.seed, training_args.process_index == 0)
    peak = script_args.peak_tflops or detect_peak_tflops()

    model = None
    tokens_before = 0
    final_dir = None
    for index, plan in enumerate(plans):
        final_dir = plan.output_dir / "final"
        if (final_dir / STAGE_DONE_FILE).is_file():
            logger.info("stage %s already complete in %s", plan.spec.name, final_dir)
            model = None  # loaded lazily by the next stage that trains
            tokens_before += plan.max_steps * plan.tokens_per_step
            continue
        if model is None:
            if index == 0:
                model = _initial_model(script_args, spec, training_args.seed)
            else:
                previous = plans[index - 1].output_dir / "final"
                model = AutoModelForCausalLM.from_pretrained(
                    previous, attn_implementation=script_args.attn_implementation
                )
        sources = [open_shard_folder(info, plan.spec.sequence_length) for info in plan.shards]
        dataset = WeightedMixture(
            sources,
            [s.weight for s in plan.spec.sources],
            num_samples=plan.max_steps * plan.global_batch,
            seed=stage_seed(training_args.seed, plan.spec.name),
            block_size=script_args.mixture_block_size,
        )
        for source, passes in zip(plan.spec.sources, dataset.passes_over_sources(), strict=True):
            if passes > 1:
                logger.warning(
                    "stage %s reads source %s %.2f times (repeated data)", plan.spec.name, source.name, passes
                )
        throughput = ThroughputCallback(
            tokens_per_step=plan.tokens_per_step,
            flops_per_token=spec.training_flops_per_token(plan.spec.sequence_length),
            peak_tflops_per_device=peak,
            num_devices=world_size,
            tokens_before=tokens_before,
            started_at=started_at,
        )
        trainer = Trainer(
            model=model,
            args=stage_training_args(training_args, plan),
            train_dataset=dataset,
            data_collator=collate_windows,
            processing_class=tokenizer,
        )
        trainer.callback_handler.callbacks.insert(0, throughput)  # before the loggers, so they see its numbers
        resume = last_complete_checkpoint(plan.output_dir)
        if resume is not None:
            logger.info("stage %s: resuming from %s", plan.spec.name, resume)
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        if trainer.is_fsdp_enabled:  # the final checkpoint is a plain HF one, not FSDP shards (untested here: no GPU)
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(final_dir))
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(final_dir)
            losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
            final_loss = losses[-1] if losses else result.training_loss
            (final_dir / "README.md").write_text(model_card(spec, plans, index, final_loss, command))
            (final_dir / STAGE_DONE_FILE).write_text(
                json.dumps(
                    {
                        "stage": plan.spec.name,
                        "steps": trainer.state.global_step,
                        "final_loss": final_loss,
                        "steady_tokens_per_second": throughput.steady_tokens_per_second,
                        "steady_tokens_per_cpu_second": throughput.steady_tokens_per_cpu_second,
                        "time_to_first_step": throughput.time_to_first_step,
                    },
                    indent=2,
                )
            )
        trainer.accelerator.wait_for_everyone()
        model = trainer.model
        started_at = None
        tokens_before += plan.max_steps * plan.tokens_per_step
    assert final_dir is not None
    if training_args.push_to_hub and training_args.process_index == 0:
        if not training_args.hub_model_id:
            raise RecipeError("--push_to_hub needs --hub_model_id ORG/NAME")
        url = push_final_model(
            final_dir, training_args.hub_model_id, private=bool(training_args.hub_private_repo), api=hub_api
        )
        logger.info("pushed %s to %s", final_dir, url)
    return final_dir


def parse_args(argv: list[str] | None = None):
    from transformers import TrainingArguments
    from trl import TrlParser

    parser = TrlParser((PretrainArguments, TrainingArguments))
    return parser.parse_args_and_config(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    import yaml

    from trl_scripts.common import check_training_arguments

    try:
        script_args, training_args = parse_args(argv)
        check_training_arguments(training_args)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except yaml.YAMLError as error:  # TrlParser reads the recipe itself
        print(f"error: {yaml_error_message(error)}", file=sys.stderr)
        return 2
    try:
        command = (
            "accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/pretrain.py " + " ".join(argv)
        )
        final = run(script_args, training_args, command=command)
    except (RecipeError, ShardError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"final model: {final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
