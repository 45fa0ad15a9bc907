"""On-policy DPO pairs judged in the sandbox (facts §7): k completions per problem from the policy, each run against
the problem's unit tests; chosen = a completion passing every test, rejected = one that does not.

    python -m datatrove_pipelines.dpo_data --input DIR_OR_mbpp_train --output DIR --policy-model PATH \
        [--policy-base-url http://127.0.0.1:8000/v1] [--k 16] [--max-pairs-per-prompt 2]
    python -m datatrove_pipelines.dpo_data --config recipes/tiny/dpo_data.yaml

``--input``: ``mbpp_train`` or a problems folder with tests (an sft_data run: its ``kept/`` carries the verified
tests). Output: ``kept/`` (``metadata.prompt`` and ``metadata.pairs`` [{chosen, rejected}]), ``excluded/pairs/`` with
reasons ``no_passing`` / ``no_failing`` / ``no_tests``, ``stats.json``, the card. ``trl_scripts/dpo.py`` trains on it.
"""

from __future__ import annotations

import argparse
import sys

from datatrove_pipelines.decontamination import DecontaminationConfig, DecontaminationFilter
from datatrove_pipelines.executors import executor_config_from_args
from datatrove_pipelines.post_training.cli import add_model_arguments, add_seed_arguments, generator_config
from datatrove_pipelines.post_training.steps import OnPolicyPairs, PairsConfig, SeedReader
from datatrove_pipelines.stage import (
    StageCard,
    StageOutput,
    StageRun,
    add_stage_arguments,
    command_line,
    parse_stage_args,
    run_stage,
)
from datatrove_pipelines.stats import format_funnel
from datatrove_pipelines.writers import exclusion_writer, kept_writer

CARD = """On-policy preference pairs in the style of Seed-Coder-Instruct's DPO set (facts §7): the policy sampled k
completions per problem; each was run against the problem's unit tests in the project's sandbox; a pair is a completion
that passed every test (chosen) and one that did not (rejected). Each record: `metadata.prompt` (chat messages),
`metadata.pairs` ([{chosen, rejected, rejected_reason}]), `metadata.judged` (how many passed / failed)."""


def build_pipeline(args: argparse.Namespace) -> list:
    out = args.output
    steps = [SeedReader(args.input, args.benchmarks, args.limit)]
    if not args.no_decontamination:
        steps.append(
            DecontaminationFilter(
                DecontaminationConfig(benchmarks_dir=args.benchmarks), exclusion_writer(out, "decontamination")
            )
        )
    config = PairsConfig(
        policy=generator_config(args, "policy"),
        k=args.k,
        max_pairs_per_prompt=args.max_pairs_per_prompt,
        include_reference=args.include_reference,
        timeout_s=args.timeout_s,
        batch_size=args.batch_size,
        sandbox_workers=args.sandbox_workers,
        system_prompt=args.system_prompt,
    )
    return [*steps, OnPolicyPairs(config, exclusion_writer(out, "pairs")), kept_writer(out)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stage_arguments(parser, input_help="'mbpp_train' or a folder of problems with tests (an sft_data run)")
    add_model_arguments(parser, "policy")
    add_seed_arguments(parser)
    parser.add_argument("--k", type=int, default=8, help="completions sampled per problem")
    parser.add_argument("--max-pairs-per-prompt", type=int, default=2)
    parser.add_argument(
        "--include-reference",
        action="store_true",
        help="the seed's reference solution joins the candidates (for a policy that never passes)",
    )
    parser.add_argument("--system-prompt", default=None)
    args = parse_stage_args(parser, argv)
    if args.k < 1:
        parser.error("--k must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "config", "push_to_hub", "hub_private")}
    output = StageOutput(
        args.output,
        StageCard("Sandbox-judged DPO pairs", CARD, settings, tags=("code", "seed-coder", "datatrove", "dpo")),
        command_line("datatrove_pipelines.dpo_data", argv),
        args.push_to_hub,
        args.hub_private,
    )
    stats = run_stage(
        [StageRun("dpo_data", build_pipeline(args))], executor_config_from_args(args), output, "dpo_data"
    )
    if stats is not None:
        print(format_funnel(stats))


if __name__ == "__main__":
    main()
