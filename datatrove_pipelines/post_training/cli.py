"""Flags shared by the post-training data builders (generator/policy endpoint, seeds, sandbox)."""

from __future__ import annotations

import argparse

from datatrove_pipelines.post_training.generation import GeneratorConfig


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


def add_seed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmarks", default=None, help="local benchmark copies (MBPP seeds, decontamination)")
    parser.add_argument("--limit", type=int, default=None, help="read only this many seeds")
    parser.add_argument("--no-decontamination", action="store_true")
    parser.add_argument("--sandbox-workers", type=int, default=None, help="parallel sandbox executions")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="sandbox time limit per execution")
    parser.add_argument("--batch-size", type=int, default=8, help="seeds generated and judged together")
