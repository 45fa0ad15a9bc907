"""Publishing curated data to the Hugging Face Hub: the dataset card and the upload, for every data stage.

Each pipeline writes its card next to its outputs on every run (``DIR/README.md``), so what would be published can be
read before anything leaves the machine; ``--push-to-hub ORG/NAME`` on a pipeline, or ``python -m recipes.hub push``
after a Slurm run, uploads the card with the kept data and ``stats.json``.

The card's YAML header declares the data files (``configs``), so ``datasets.load_dataset("ORG/NAME")`` (or the local
``DIR``) loads the kept documents, and nothing else in the folder, as the ``train`` split.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from datatrove_pipelines.stats import format_funnel

PAPER = "Seed-Coder: Let the Code Model Curate Data for Itself (ByteDance Seed, 2025), arXiv:2506.03524"
DEFAULT_UPLOAD = ("kept/*", "stats.json", "README.md")


def _size_category(documents: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if documents < limit:
            return name
    return "1M<n<10M" if documents < 10_000_000 else "n>10M"


def dataset_card(
    *,
    pretty_name: str,
    description: str,
    stats: dict[str, Any],
    settings: dict[str, Any],
    command: str | None = None,
    data_files: str = "kept/*.jsonl.gz",
    tags: Sequence[str] = ("code", "seed-coder", "datatrove"),
    license: str = "other",
) -> str:
    """A dataset card (README.md) for one pipeline output: YAML metadata that ``datasets`` reads (the kept files as
    the ``train`` split), then what the stage does, its funnel, the settings and the command that made it."""
    header = {
        "pretty_name": pretty_name,
        "license": license,
        "tags": list(tags),
        "size_categories": [_size_category(stats["total"]["docs_kept"])],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}],
    }
    kept_share = stats["total"]["bytes_kept"] / stats["total"]["bytes_in"] if stats["total"]["bytes_in"] else 0.0
    parts = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {pretty_name}",
        "",
        description.strip(),
        "",
        f"Made with the seed-coder recipes, a reproduction of {PAPER}.",
        "",
        "## Funnel",
        "",
        f"{stats['total']['docs_kept']:,} of {stats['total']['docs_in']:,} documents kept "
        f"({100 * kept_share:.1f}% of bytes). Every excluded document was written with its reason; "
        "documents in = kept + Σ excluded for every step.",
        "",
        format_funnel(stats, markdown=True),
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(settings, indent=2, sort_keys=True, default=str),
        "```",
    ]
    if command:
        parts += ["", "## Reproduce", "", "```bash", command, "```"]
    return "\n".join(parts) + "\n"


def write_card(output_dir: str | Path, card: str) -> Path:
    """Write ``card`` as ``DIR/README.md`` through huggingface_hub's ``DatasetCard`` (which checks its YAML header)."""
    from huggingface_hub import DatasetCard

    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    DatasetCard(card).save(path)
    return path


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    include: Sequence[str] = DEFAULT_UPLOAD,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload curated data with seed-coder recipes",
    api: Any = None,
) -> str:
    """Create the dataset repo if needed and upload the files of ``folder`` matching ``include``; returns its URL.

    ``api`` defaults to ``huggingface_hub.HfApi(token=token)`` (any object with its ``create_repo`` and
    ``upload_folder``)."""
    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder}/README.md (the dataset card) is missing: is {folder} a pipeline output?")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        allow_patterns=list(include),
        commit_message=commit_message,
    )
    return f"https://huggingface.co/datasets/{repo_id}"


def add_hub_arguments(parser: argparse.ArgumentParser) -> None:
    """--push-to-hub and --hub-private, for pipelines that publish their output."""
    group = parser.add_argument_group("hub")
    group.add_argument("--push-to-hub", metavar="ORG/NAME", default=None, help="upload kept/, stats.json, README.md")
    group.add_argument("--hub-private", action="store_true", help="create the dataset repo as private")
