"""Throughput of the quality scorers on CPU: files/s for the LM scorer (tiny Llama) and the fastText scorer.

Everything is built here, offline: the tiny model (recipes.tiny_model), annotations of stdlib files rated with the
stand-in oracle's rule (labels only matter for training; this measures scoring speed), an LM scorer trained for one
short epoch and a fastText scorer. The baseline is the LM scorer at batch size 1, run in the same process.

    python benchmarks/quality_scorer.py [--files 300] [--max-length 1024] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove.pipeline.writers.jsonl import JsonlWriter  # noqa: E402

from datatrove_pipelines.code_readers import make_document  # noqa: E402
from datatrove_pipelines.quality.scorer import ScorerTrainingConfig, load_scorer, train_scorer  # noqa: E402
from datatrove_pipelines.quality.stand_in_oracle import stand_in_rating  # noqa: E402
from recipes.local_code import stdlib_python_files  # noqa: E402
from recipes.tiny_model import TinyModelConfig, build_tiny_model  # noqa: E402

SKIP_PARTS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}


def stdlib_items(limit: int) -> list[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = [p for p in sorted(stdlib.rglob("*.py")) if not SKIP_PARTS & set(p.relative_to(stdlib).parts)]
    return [("Python", p.read_text(encoding="utf-8", errors="replace")) for p in paths[:limit]]


def write_annotations(folder: Path, items: list[tuple[str, str]]) -> None:
    with JsonlWriter(str(folder / "kept")) as writer:
        for index, (_, text) in enumerate(items):
            raw = text.encode()
            doc = make_document("bench", f"file_{index}.py", raw, len(raw))
            doc.metadata["rating"] = stand_in_rating(text)
            writer.write(doc)


def files_per_second(scorer, items: list[tuple[str, str]], repeats: int = 1) -> float:
    scorer.score(items[:4])  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        scorer.score(items)
    return repeats * len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="files scored per measurement")
    parser.add_argument("--max-length", type=int, default=1024, help="LM scorer: tokens of prompt + file")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    items = stdlib_items(max(args.files, 200))
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        root = Path(tmp)
        model_dir = build_tiny_model(
            root / "tiny", stdlib_python_files(limit_files=150), TinyModelConfig(vocab_size=1024)
        )
        write_annotations(root / "annotations", items[:200])
        common = {"annotations_dir": str(root / "annotations"), "eval_fraction": 0.1}
        train_scorer(
            ScorerTrainingConfig(
                output_dir=str(root / "lm"),
                kind="lm",
                base_model=str(model_dir),
                max_length=args.max_length,
                learning_rate=1e-3,
                batch_size=16,
                device="cpu",
                **common,
            )
        )
        train_scorer(ScorerTrainingConfig(output_dir=str(root / "fasttext"), kind="fasttext", **common))

        measured = items[: args.files]
        lm_single = load_scorer(str(root / "lm"), device="cpu", batch_size=1)
        baseline = files_per_second(lm_single, measured)
        lm_batched = load_scorer(str(root / "lm"), device="cpu", batch_size=args.batch_size)
        batched = files_per_second(lm_batched, measured)
        fasttext = files_per_second(load_scorer(str(root / "fasttext")), measured, repeats=5)

    print(f"quality scorer throughput on CPU, {len(measured)} stdlib files, LM max_length {args.max_length}")
    print(f"{'scorer':<34} {'files/s':>10} {'vs baseline':>12}")
    for name, value in (
        ("lm (tiny Llama), batch 1 [baseline]", baseline),
        (f"lm (tiny Llama), batch {args.batch_size}", batched),
        ("fasttext", fasttext),
    ):
        print(f"{name:<34} {value:>10.1f} {value / baseline:>11.1f}x")


if __name__ == "__main__":
    main()
