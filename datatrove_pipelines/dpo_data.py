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

from datatrove_pipelines.post_training.cli import builder_main, builder_parser, generator_config, seed_steps
from datatrove_pipelines.post_training.steps import OnPolicyPairs, PairsConfig
from datatrove_pipelines.stage import StageCard, parse_stage_args
from datatrove_pipelines.writers import exclusion_writer, kept_writer

CARD = """On-policy preference pairs in the style of Seed-Coder-Instruct's DPO set (facts §7): the policy sampled k
completions per problem; each was run against the problem's unit tests in the project's sandbox; a pair is a completion
that passed every test (chosen) and one that did not (rejected). Each record: `metadata.prompt` (chat messages),
`metadata.pairs` ([{chosen, rejected, rejected_reason}]), `metadata.judged` (how many passed / failed)."""


def build_pipeline(args: argparse.Namespace) -> list:
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
    return [*seed_steps(args), OnPolicyPairs(config, exclusion_writer(args.output, "pairs")), kept_writer(args.output)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = builder_parser(
        __doc__, "'mbpp_train' or a folder of problems with tests (an sft_data run)", "policy", defaults=PairsConfig
    )
    parser.add_argument("--k", type=int, default=PairsConfig.k, help="completions sampled per problem")
    parser.add_argument("--max-pairs-per-prompt", type=int, default=PairsConfig.max_pairs_per_prompt)
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
    card = StageCard("Sandbox-judged DPO pairs", CARD, tags=("code", "seed-coder", "datatrove", "dpo"))
    builder_main("dpo_data", card, parse_args, build_pipeline, argv)


if __name__ == "__main__":
    main()
