"""Throughput of ``datatrove_pipelines.repo_context`` vs reading + tree-sitter parsing the same files.

    python benchmarks/repo_context.py [--limit-mb 16] [--repeats 5] [--tokenizer PATH_OR_ID]

Files: this Python's standard library ``.py`` files (each top-level package one repository, the loose modules one
more) plus the C headers under /usr/include when present (each top-level folder one repository), up to
``--limit-mb``, files of at most 64 KB (so that none is over the 32K-token budget and skipped). Baseline: read each file from disk and parse it with its tree-sitter grammar (the floor of any
tree-sitter import resolution). Stage: the whole pipeline with one task in this process — reading the JSONL documents,
the file checks, the bucket files, the import queries and resolution, ordering, splitting, writing the repository
documents, stats.json. Tokens are estimated (bytes/3) unless ``--tokenizer`` is given. Baseline and stage alternate
``--repeats`` times (a shared, noisy machine); per pair the ratio of files/s, then the median. Target: >= 0.5.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove_pipelines.executors import ExecutorConfig  # noqa: E402
from datatrove_pipelines.languages import resolve_language  # noqa: E402
from datatrove_pipelines.repo_context import RepoContextConfig, run_repo_context  # noqa: E402
from datatrove_pipelines.repo_context.imports import grammar_of  # noqa: E402

MAX_FILE_BYTES = 64_000


def corpus(limit_bytes: int) -> list[tuple[Path, str, str]]:
    """(file, repository, path inside it) for stdlib .py files and /usr/include headers."""
    files: list[tuple[Path, str, str]] = []
    total = 0
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [(stdlib, "*.py", "cpython"), (Path("/usr/include"), "*.h", "include")]
    for root, pattern, name in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(pattern)):
            relative = path.relative_to(root)
            if "site-packages" in relative.parts or "__pycache__" in relative.parts or not path.is_file():
                continue
            size = path.stat().st_size
            if not size or size > MAX_FILE_BYTES:  # every file fits the budget: the stage must parse them all
                continue
            repo = f"{name}/{relative.parts[0]}" if len(relative.parts) > 1 else f"{name}/_root"
            inner = "/".join(relative.parts[1:]) if len(relative.parts) > 1 else relative.name
            files.append((path, repo, inner))
            total += size
            if total >= limit_bytes / 2 and name == "cpython":
                break
            if total >= limit_bytes:
                return files
    return files


def baseline(files: list[tuple[Path, str, str]]) -> float:
    from tree_sitter_language_pack import get_parser

    parsers: dict[str, object] = {}
    start = time.perf_counter()
    for path, _, inner in files:
        data = path.read_bytes()
        grammar = grammar_of(resolve_language(inner), inner)
        if grammar:
            if grammar not in parsers:
                parsers[grammar] = get_parser(grammar)
            parsers[grammar].parse(data)
    return time.perf_counter() - start


def stage(docs: Path, output: Path, tokenizer: str | None) -> tuple[float, dict]:
    config = RepoContextConfig(
        input=str(docs),
        output_dir=str(output),
        max_tokens=32768,
        tokenizer=tokenizer,
        executor=ExecutorConfig(tasks=1, workers=1),
    )
    start = time.perf_counter()
    stats = run_repo_context(config)
    return time.perf_counter() - start, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-mb", type=float, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokenizer", default=None)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    from loguru import logger

    logger.remove()
    files = corpus(int(args.limit_mb * 1e6))
    with tempfile.TemporaryDirectory() as scratch:
        docs = Path(scratch) / "docs"
        docs.mkdir()
        with gzip.open(docs / "00000.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as handle:
            for path, repo, inner in files:
                text = path.read_text(encoding="utf-8", errors="replace")
                handle.write(
                    json.dumps({"text": text, "id": f"{repo}/{inner}", "metadata": {"repo": repo, "path": inner}})
                )
                handle.write("\n")
        size = sum(path.stat().st_size for path, _, _ in files) / 1e6
        print(f"{len(files)} files, {size:.1f} MB, {len({repo for _, repo, _ in files})} repositories")
        ratios = []
        for repeat in range(args.repeats):
            base_seconds = baseline(files)
            stage_seconds, stats = stage(docs, Path(scratch) / f"out{repeat}", args.tokenizer)
            if stats["total"]["docs_kept"] != len(files):
                raise SystemExit(f"the stage kept {stats['total']['docs_kept']} of {len(files)} files")
            ratio = base_seconds / stage_seconds
            ratios.append(ratio)
            print(
                f"pair {repeat}: read+parse {len(files) / base_seconds:.0f} files/s, "
                f"repo_context {len(files) / stage_seconds:.0f} files/s, ratio {ratio:.2f}; "
                f"{stats['repositories']}"
            )
        print(
            f"ratio repo_context / read+parse: median {statistics.median(ratios):.2f} of {len(ratios)} (target >= 0.5)"
        )


if __name__ == "__main__":
    main()
