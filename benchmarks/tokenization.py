"""Throughput of ``datatrove_pipelines.tokenize`` vs raw ``tokenizers`` ``encode_batch`` on the same documents.

    python benchmarks/tokenization.py [--limit-mb 16] [--repeats 5] [--tokenizer PATH_OR_ID] [--vocab-size 8192]

Why the file is not named ``tokenize.py``: run as ``python benchmarks/tokenize.py``, the script's folder goes first on
``sys.path``, so the script would shadow the standard library's ``tokenize`` module, which ``linecache``, ``inspect``
and so ``traceback`` import: any warning or traceback would then import this file instead.

Documents: this Python's standard library ``.py`` files (up to ``--limit-mb``) as one JSONL source. Tokenizer: a
byte-level BPE trained here by ``datatrove_pipelines.tokenizer`` (or ``--tokenizer``). Baseline: the backend
``tokenizers.Tokenizer`` (the same ``tokenizer.json``) encoding the in-memory texts with ``encode_batch`` in batches
of the same size the stage uses, plus the EOS token. Stage: the whole pipeline with one task in this process (the same
workers: both use the ``tokenizers`` thread pool) — reading the gzipped JSONL, the filter, datatrove's
DocumentTokenizer writing, shuffling and indexing the shard — then ``stats.json``. They alternate ``--repeats``
times, which one goes first alternating too (a shared, noisy machine); the ratio of tokens/s per pair and the median are printed, and the median of the
pairs after the first (whose stage run also pays the one-off import of transformers). Target: >= 0.8.
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
from datatrove_pipelines.tokenize import TokenizeConfig, TokenizeSource, run_tokenize  # noqa: E402
from datatrove_pipelines.tokenizer import tokenizer_json, train_tokenizer  # noqa: E402

BATCH_SIZE = 1000


def stdlib_texts(limit_bytes: int) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    texts, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if text.strip():
            texts.append(text)
            total += len(text.encode())
        if total >= limit_bytes:
            break
    return texts


def baseline(tokenizer_file: str, texts: list[str]) -> tuple[int, float]:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(tokenizer_file)
    start = time.perf_counter()
    tokens = 0
    for begin in range(0, len(texts), BATCH_SIZE):
        for encoding in backend.encode_batch(texts[begin : begin + BATCH_SIZE], add_special_tokens=False):
            tokens += len(encoding.ids) + 1  # + EOS, as the stage writes
    return tokens, time.perf_counter() - start


def stage(tokenizer: str, docs_dir: Path, output: Path) -> tuple[int, float]:
    config = TokenizeConfig(
        sources=[TokenizeSource("stdlib", str(docs_dir))],
        output_dir=str(output),
        tokenizer=tokenizer,
        batch_size=BATCH_SIZE,
        executor=ExecutorConfig(tasks=1, workers=1),
    )
    start = time.perf_counter()
    stats = run_tokenize(config)
    return stats["sources"]["stdlib"]["tokens"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-mb", type=float, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokenizer", default=None, help="Hub id or local path (default: train one here)")
    parser.add_argument("--vocab-size", type=int, default=8192)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    from loguru import logger

    logger.remove()
    texts = stdlib_texts(int(args.limit_mb * 1e6))
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        tokenizer = args.tokenizer
        if tokenizer is None:
            tokenizer = str(scratch_dir / "tokenizer")
            train_tokenizer(texts[:300], args.vocab_size).save_pretrained(tokenizer)
        docs = scratch_dir / "docs"
        docs.mkdir()
        with gzip.open(docs / "00000.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as handle:
            for i, text in enumerate(texts):
                handle.write(json.dumps({"text": text, "id": str(i)}) + "\n")
        size = sum(len(t.encode()) for t in texts) / 1e6
        print(f"{len(texts)} documents, {size:.1f} MB, tokenizer {tokenizer}")
        ratios = []
        for repeat in range(args.repeats):
            if repeat % 2:  # alternate which runs first, so a load change on the machine favours neither
                stage_tokens, stage_seconds = stage(tokenizer, docs, scratch_dir / f"out{repeat}")
                base_tokens, base_seconds = baseline(tokenizer_json(tokenizer), texts)
            else:
                base_tokens, base_seconds = baseline(tokenizer_json(tokenizer), texts)
                stage_tokens, stage_seconds = stage(tokenizer, docs, scratch_dir / f"out{repeat}")
            if stage_tokens != base_tokens:
                raise SystemExit(f"token counts differ: stage {stage_tokens}, baseline {base_tokens}")
            ratio = (stage_tokens / stage_seconds) / (base_tokens / base_seconds)
            ratios.append(ratio)
            print(
                f"pair {repeat}: encode_batch {base_tokens / base_seconds / 1e6:.2f} M tokens/s, "
                f"tokenize stage {stage_tokens / stage_seconds / 1e6:.2f} M tokens/s, ratio {ratio:.2f}"
            )
        print(
            f"ratio tokenize / encode_batch: median {statistics.median(ratios):.2f} of {len(ratios)} (target >= 0.8)"
        )
        if len(ratios) > 2:  # the first stage run also imports transformers (loading the tokenizer): a one-off cost
            print(f"  median of the warm pairs 1..{len(ratios) - 1}: {statistics.median(ratios[1:]):.2f}")


if __name__ == "__main__":
    main()
