"""Sandbox-verified SFT data (facts §7): seeds → generator writes instruction + solution + tests → sandbox → the
error output goes back to the generator, up to N attempts → only verified examples; then tree-sitter syntax check of
the response's code blocks, 10-gram decontamination, length.

    python -m datatrove_pipelines.sft_data --input mbpp_train --output DIR --generator-model NAME \
        --generator-base-url http://127.0.0.1:8000/v1 [--max-attempts 3] [--benchmarks DIR]
    python -m datatrove_pipelines.sft_data --config recipes/tiny/sft_data.yaml

``--input``: ``mbpp_train`` (MBPP task ids 601-974 from the local benchmark copies, decontaminated first) or a
documents folder of seed snippets (e.g. a code_files run: each text a snippet, ``metadata.language``). Output:
``kept/`` (``metadata.messages`` is the chat example, plus the tests that verified it), ``excluded/<step>/``,
``stats.json``, the dataset card. ``trl_scripts/sft.py --dataset_name DIR`` trains on it. See docs/post_training.md.
"""

from __future__ import annotations

import argparse

from datatrove_pipelines.decontamination import DecontaminationConfig, DecontaminationFilter
from datatrove_pipelines.post_training.cli import builder_main, builder_parser, generator_config, seed_steps
from datatrove_pipelines.post_training.steps import (
    CodeBlockSyntaxFilter,
    LengthConfig,
    LengthFilter,
    SelfCorrectingSynthesis,
    SynthesisConfig,
)
from datatrove_pipelines.stage import StageCard, parse_stage_args
from datatrove_pipelines.writers import exclusion_writer, kept_writer

CARD = """Sandbox-verified instruction data in the style of Seed-Coder-Instruct's SFT set (facts §7): a generator model
wrote an instruction, a solution and unit tests from each seed; the tests ran in the project's sandbox; failing attempts
were sent back with the error output until they passed or the attempts ran out; only verified examples are kept, then
filtered by a tree-sitter syntax check of the code blocks, 10-gram decontamination against the evaluation benchmarks and
length. Each record: `metadata.messages` (user/assistant), `metadata.tests`, `metadata.attempts`."""


def build_pipeline(args: argparse.Namespace) -> list:
    out = args.output
    steps = seed_steps(args, "seed_decontamination")
    synthesis = SynthesisConfig(
        generator=generator_config(args, "generator"),
        max_attempts=args.max_attempts,
        batch_size=args.batch_size,
        timeout_s=args.timeout_s,
        sandbox_workers=args.sandbox_workers,
    )
    steps += [
        SelfCorrectingSynthesis(synthesis, exclusion_writer(out, "synthesis")),
        CodeBlockSyntaxFilter(exclusion_writer(out, "syntax")),
    ]
    if not args.no_decontamination:
        decontamination = DecontaminationConfig(benchmarks_dir=args.benchmarks)
        steps.append(DecontaminationFilter(decontamination, exclusion_writer(out, "decontamination")))
    steps += [
        LengthFilter(LengthConfig(args.min_response_chars, args.max_response_chars), exclusion_writer(out, "length")),
        kept_writer(out),
    ]
    return steps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = builder_parser(
        __doc__, "'mbpp_train' or a documents folder of seed snippets", "generator", defaults=SynthesisConfig
    )
    parser.add_argument(
        "--max-attempts", type=int, default=SynthesisConfig.max_attempts, help="first try plus self-corrections"
    )
    parser.add_argument("--min-response-chars", type=int, default=LengthConfig.min_response_chars)
    parser.add_argument("--max-response-chars", type=int, default=LengthConfig.max_response_chars)
    args = parse_stage_args(parser, argv)
    if args.max_attempts < 1:
        parser.error("--max-attempts must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    card = StageCard("Sandbox-verified SFT data", CARD, tags=("code", "seed-coder", "datatrove", "sft"))
    builder_main("sft_data", card, parse_args, build_pipeline, argv)


if __name__ == "__main__":
    main()
