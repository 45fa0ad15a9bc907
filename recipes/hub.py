"""Upload a pipeline output folder (its dataset card, ``stats.json`` and ``kept/``) to the Hugging Face Hub.

    python -m recipes.hub push DIR --repo-id ORG/NAME [--private] [--include 'kept/*' ...]

The cards and the upload are library functions of the data package (:mod:`datatrove_pipelines.hub`), used by every
stage's ``--push-to-hub``; this is the command for pushing later, e.g. after a Slurm run.
"""

from __future__ import annotations

import argparse

from datatrove_pipelines.hub import DEFAULT_UPLOAD, push_to_hub


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="upload a pipeline output folder (its card must exist)")
    push.add_argument("folder")
    push.add_argument("--repo-id", required=True)
    push.add_argument("--private", action="store_true")
    push.add_argument("--include", nargs="+", default=list(DEFAULT_UPLOAD), help="glob patterns of files to upload")
    args = parser.parse_args(argv)
    print(push_to_hub(args.folder, args.repo_id, include=args.include, private=args.private))


if __name__ == "__main__":
    main()
