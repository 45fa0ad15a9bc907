"""What every post-training script shares: the parser, model/tokenizer loading, LoRA, resume, saving and the card."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import transformers
import trl
import yaml
from transformers.trainer_utils import get_last_checkpoint

from datatrove_pipelines.yaml_files import yaml_error_message

log = logging.getLogger("trl_scripts")

# A chat template that renders a system message (used when the tokenizer has none or one that drops system turns).
SYSTEM_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


# Training arguments that transformers/TRL accept and then fail on deep inside a run (an assertion in TRL's packing,
# a division by zero in the step count, the optimizer's ValueError): checked when the recipe is parsed.
AT_LEAST_ONE = ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "max_completion_length")


def check_training_arguments(training_args: Any) -> None:
    """A ``ValueError`` naming the flag for a value below 1 in :data:`AT_LEAST_ONE` or a negative learning rate."""
    for name in AT_LEAST_ONE:
        value = getattr(training_args, name, None)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}")
    if not getattr(training_args, "learning_rate", 0.0) >= 0:
        raise ValueError(f"--learning_rate must be >= 0, got {training_args.learning_rate}")


def parse(script_class: type, training_class: type, argv: list[str] | None = None) -> tuple[Any, Any, trl.ModelConfig]:
    """``--config recipe.yaml`` plus command-line overrides into (script, training, model) arguments; a usage error
    (unknown key, missing recipe) is one line, not a traceback."""
    parser = trl.TrlParser((script_class, training_class, trl.ModelConfig))
    try:
        script_args, training_args, model_args = parser.parse_args_and_config(argv)
        check_training_arguments(training_args)
    except (ValueError, OSError) as error:  # an unknown key, a missing recipe file: wrong usage, one line
        raise SystemExit(f"error: {error}") from None
    except yaml.YAMLError as error:  # a recipe that is not YAML (TrlParser reads it itself)
        raise SystemExit(f"error: {yaml_error_message(error)}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return script_args, training_args, model_args


def load_tokenizer(model_args: trl.ModelConfig, script_args) -> transformers.PreTrainedTokenizerBase:
    """The model's tokenizer with a chat template that renders the system message, and a pad token."""
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            model_args.model_name_or_path, revision=model_args.model_revision
        )
    except (OSError, ValueError) as error:  # a missing path or an unknown Hub id: one line, not a traceback
        raise SystemExit(f"error: model {model_args.model_name_or_path}: {error}") from None
    if script_args.chat_template:
        tokenizer.chat_template = script_args.chat_template
    elif not tokenizer.chat_template or not renders_system(tokenizer):
        tokenizer.chat_template = SYSTEM_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def renders_system(tokenizer) -> bool:
    probe = "__system_probe__"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": probe}, {"role": "user", "content": "hi"}], tokenize=False
        )
    except Exception:
        return False
    return probe in text


def model_kwargs(model_args: trl.ModelConfig, training_args) -> dict[str, Any]:
    """``model_init_kwargs`` for TRL's trainers (they load the model from its id/path themselves)."""
    kwargs: dict[str, Any] = {
        "revision": model_args.model_revision,
        "dtype": model_args.dtype if model_args.dtype not in (None, "auto") else "auto",
    }
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    quantization = trl.get_quantization_config(model_args)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if getattr(training_args, "gradient_checkpointing", False) or getattr(
        training_args, "activation_checkpointing", False
    ):
        kwargs["use_cache"] = False
    return kwargs


def resume_checkpoint(training_args, script_args) -> str | None:
    """The last checkpoint in output_dir (or the one given in ``resume_from_checkpoint``), when resuming."""
    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    if script_args.resume and os.path.isdir(training_args.output_dir):
        last = get_last_checkpoint(training_args.output_dir)
        if last:
            log.info("resuming from %s", last)
        return last
    return None


def finish(trainer, training_args, script_args, model_args, tags: list[str], dataset_name: str | None) -> None:
    """Save the model (or LoRA adapter) and tokenizer, write the model card, push when asked."""
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(training_args.output_dir)
        trainer.create_model_card(dataset_name=dataset_name, tags=["seed-coder", *tags])
        model = trainer.accelerator.unwrap_model(trainer.model)
        if hasattr(model, "config"):
            model.config.use_cache = True
            if not model_args.use_peft:
                model.config.save_pretrained(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=dataset_name, tags=["seed-coder", *tags])


def dataset_summary(examples: int, rows: int, training_args) -> str:
    """What the trainer trains on: with packing, how many examples went into how many rows of ``max_length``."""
    if getattr(training_args, "packing", False):
        return f"training on {rows} packed rows of up to {training_args.max_length} tokens from {examples} examples"
    return f"training on {rows} rows from {examples} examples"


def train(
    script_class: type,
    training_class: type,
    trainer_class: type,
    build_dataset: Callable[[Any], Any],
    tags: list[str],
    trainer_kwargs: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> None:
    """The whole of a post-training script: parse the recipe, load the tokenizer and the dataset, let TRL's
    ``trainer_class`` load the model (optional LoRA), train (resuming from the last checkpoint when asked), finish.
    ``trainer_kwargs(script_args, dataset)``: what else the trainer takes (GRPO's rewards and curriculum)."""
    script_args, training_args, model_args = parse(script_class, training_class)
    tokenizer = load_tokenizer(model_args, script_args)
    dataset = build_dataset(script_args)
    extra = trainer_kwargs(script_args, dataset) if trainer_kwargs else {}
    training_args.model_init_kwargs = model_kwargs(model_args, training_args)
    trainer = trainer_class(
        model=model_args.model_name_or_path,
        args=training_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=trl.get_peft_config(model_args),
        **extra,
    )
    log.info(dataset_summary(len(dataset), len(trainer.train_dataset), training_args))
    trainer.train(resume_from_checkpoint=resume_checkpoint(training_args, script_args))
    finish(trainer, training_args, script_args, model_args, tags, script_args.dataset_name)
