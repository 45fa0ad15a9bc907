"""What the post-training data builders (sft_data, dpo_data) share: their flags (generator/policy endpoint, seeds,
sandbox), the decontaminated seeds at the start of their pipeline, and their ``main``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from datatrove_pipelines.decontamination import (
    DecontaminationConfig,
    DecontaminationFilter,
    add_decontamination_arguments,
)
from datatrove_pipelines.executors import executor_config_from_args
from datatrove_pipelines.post_training.generation import GeneratorConfig
from datatrove_pipelines.post_training.steps import seed_reader
from datatrove_pipelines.stage import StageCard, StageOutput, StageRun, add_stage_arguments, run_stage, stage_main
from datatrove_pipelines.writers import exclusion_writer

NOT_SETTINGS = ("output", "config", "push_to_hub", "hub_private")  # flags that are not settings of the data


def add_model_arguments(parser: argparse.ArgumentParser, role: str) -> None:
    """``--{role}-model`` (served name, or local path / Hub id), ``--{role}-base-url`` and sampling flags."""
    group = parser.add_argument_group(role)
    group.add_argument(f"--{role}-model", required=True, help="served model name, or local path / Hub id")
    group.add_argument(
        f"--{role}-base-url",
        default=None,
        help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1); "
        "without it the model runs locally with transformers",
    )
    group.add_argument(f"--{role}-api-key-env", default="OPENAI_API_KEY", help="environment variable with the key")
    group.add_argument("--temperature", type=float, default=GeneratorConfig.temperature)
    group.add_argument("--top-p", type=float, default=GeneratorConfig.top_p)
    group.add_argument("--max-new-tokens", type=int, default=GeneratorConfig.max_new_tokens)
    group.add_argument("--seed", type=int, default=None, help="sampling seed")


def generator_config(args: argparse.Namespace, role: str) -> GeneratorConfig:
    key = role.replace("-", "_")
    return GeneratorConfig(
        model=getattr(args, f"{key}_model"),
        base_url=getattr(args, f"{key}_base_url"),
        api_key_env=getattr(args, f"{key}_api_key_env"),
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )


def add_seed_arguments(parser: argparse.ArgumentParser, defaults: type) -> None:
    """The seed and sandbox flags; ``defaults``: the builder's config dataclass (its ``timeout_s``, ``batch_size``)."""
    add_decontamination_arguments(parser, benchmarks_help="local benchmark copies (MBPP seeds, decontamination)")
    parser.add_argument("--limit", type=int, default=None, help="read only this many seeds")
    parser.add_argument("--sandbox-workers", type=int, default=None, help="parallel sandbox executions")
    parser.add_argument("--timeout-s", type=float, default=defaults.timeout_s, help="sandbox time limit per execution")
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="seeds generated and judged together"
    )


def builder_parser(description: str, input_help: str, role: str, defaults: type) -> argparse.ArgumentParser:
    """The parser of a data builder: the stage flags, the ``role`` model's flags, the seed and sandbox flags (their
    defaults from the builder's config dataclass ``defaults``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(parser, input_help=input_help)
    add_model_arguments(parser, role)
    add_seed_arguments(parser, defaults)
    return parser


def seed_steps(args: argparse.Namespace, decontamination_step: str = "decontamination") -> list:
    """The seeds, then (unless ``--no-decontamination``) the 10-gram decontamination of the seeds, whose drops go to
    ``excluded/<decontamination_step>/``."""
    steps = [seed_reader(args.input, args.benchmarks, args.limit)]
    if not args.no_decontamination:
        config = DecontaminationConfig(benchmarks_dir=args.benchmarks)
        writer = exclusion_writer(args.output, decontamination_step)
        steps.append(DecontaminationFilter(config, writer, step_name=decontamination_step))
    return steps


def builder_main(
    name: str,
    card: StageCard,
    parse_args: Callable[[list[str]], argparse.Namespace],
    build_pipeline: Callable[[argparse.Namespace], list],
    argv: list[str] | None,
) -> None:
    """``python -m datatrove_pipelines.NAME``: one datatrove run ``NAME`` of ``build_pipeline(args)``; the card
    (``card``, whose settings are every flag but the output's and the Hub's), stats.json, the funnel printed."""

    def run(args: argparse.Namespace, command: str) -> dict | None:
        settings = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
        output = StageOutput(
            args.output, replace(card, settings=settings), command, args.push_to_hub, args.hub_private
        )
        return run_stage([StageRun(name, build_pipeline(args))], executor_config_from_args(args), output, name)

    stage_main(f"datatrove_pipelines.{name}", argv, parse_args, run)
