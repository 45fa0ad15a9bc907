"""Pretraining throughput: recipes/pretrain.py over datatrove shards vs a run_clm.py-style baseline, same process.

    python benchmarks/pretrain.py [--steps 40] [--seq 256] [--batch 8] [--files 200] [--repeats 3]

Both train the same tiny Llama (same init seed, optimizer, batch, steps) with transformers' Trainer on the same
stdlib files. The baseline is what transformers' examples/pytorch/language-modeling/run_clm.py does: a `datasets`
dataset tokenised with `map` and grouped into blocks (`group_texts`), `default_data_collator`, a plain Trainer. Ours
reads the `.ds` shards datatrove's DocumentTokenizer wrote (tokenised once, upstream) through the weighted mixture.

Printed per engine (medians over repeats, runs interleaved): steady-state tokens/s (every logging interval after the
first, timed by the same callback on both) and time to the first step (from "start" to the end of step 1: for the
baseline this includes tokenising and grouping, which is the point of tokenising once with datatrove), and the ratio
ours / baseline (target >= 1.0 steady state). Tokens per CPU-second of the process over the same intervals are printed
too: on a shared machine the wall-clock rate swings with the other load (one run's intervals ranged 860-3,900
tokens/s at load 6), CPU time per token much less. First, the data path alone (no model): batches/s through a DataLoader
for both, which shows whether reading shards could ever be the bottleneck.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _training_args(output: Path, steps: int, batch: int):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=0,
    )


def run_ours(work: Path, tokenizer_dir: Path, shards: Path, spec: Path, steps: int, seq: int, batch: int) -> dict:
    import json

    from recipes.pretrain import parse_args, run

    output = work / f"ours-{time.monotonic_ns()}"
    stage = {
        "name": "bench",
        "sources": [{"path": str(shards)}],
        "sequence_length": seq,
        "tokens": steps * seq * batch,
    }
    argv = [
        "--model_spec",
        str(spec),
        "--tokenizer_name_or_path",
        str(tokenizer_dir),
        "--stages",
        json.dumps([stage]),
        "--output_dir",
        str(output),
        "--per_device_train_batch_size",
        str(batch),
        "--learning_rate",
        "3e-3",
        "--logging_steps",
        "5",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--use_cpu",
        "true",
        "--seed",
        "0",
        "--shard_check",
        "sample",
    ]
    start = time.perf_counter()
    script_args, training_args = parse_args(argv)
    final = run(script_args, training_args)
    done = json.loads((final / "stage_complete.json").read_text())
    return {
        "tokens_per_second": done["steady_tokens_per_second"],
        "tokens_per_cpu_second": done["steady_tokens_per_cpu_second"],
        "first_step": done["time_to_first_step"],
        "total": time.perf_counter() - start,
    }


def run_baseline(
    work: Path, tokenizer_dir: Path, files: list[Path], spec_path: Path, steps: int, seq: int, batch: int
) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, LlamaForCausalLM, Trainer, default_data_collator

    from recipes.model_specs import load_model_spec
    from recipes.pretrain_callbacks import ThroughputCallback

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts = [p.read_text(encoding="utf-8") for p in files]
    raw = Dataset.from_dict({"text": texts})
    tokenized = raw.map(
        lambda b: tokenizer([t + tokenizer.eos_token for t in b["text"]]), batched=True, remove_columns=["text"]
    )

    def group_texts(examples):  # as in run_clm.py
        concatenated = {k: sum(examples[k], []) for k in examples}
        total = (len(concatenated["input_ids"]) // seq) * seq
        result = {k: [t[i : i + seq] for i in range(0, total, seq)] for k, t in concatenated.items()}
        result["labels"] = result["input_ids"].copy()
        return result

    grouped = tokenized.map(group_texts, batched=True)
    spec = load_model_spec(spec_path)
    torch.manual_seed(0)
    model = LlamaForCausalLM(spec.to_llama_config(attn_implementation="sdpa"))
    throughput = ThroughputCallback(
        tokens_per_step=batch * seq, flops_per_token=0, peak_tflops_per_device=None, num_devices=1
    )
    throughput.created = start
    trainer = Trainer(
        model=model,
        args=_training_args(work / f"base-{time.monotonic_ns()}", steps, batch),
        train_dataset=grouped,
        data_collator=default_data_collator,
    )
    trainer.callback_handler.callbacks.insert(0, throughput)
    trainer.train()
    return {
        "tokens_per_second": throughput.steady_tokens_per_second,
        "tokens_per_cpu_second": throughput.steady_tokens_per_cpu_second,
        "first_step": throughput.time_to_first_step,
        "total": time.perf_counter() - start,
    }


def data_path_batches_per_second(
    tokenizer_dir: Path, files: list[Path], shards: Path, seq: int, batch: int, batches: int = 200
) -> tuple[float, float]:
    """The data path alone (no model): batches/s through a DataLoader for our mixture over the shards and for the
    baseline's grouped `datasets` dataset (after its tokenisation, which is not timed here)."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, default_data_collator

    from recipes.pretrain_data import WeightedMixture, collate_windows, inspect_shard_folder, open_shard_folder

    def rate(dataset, collate) -> float:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, collate_fn=collate)
        start = time.perf_counter()
        for count, _ in enumerate(loader, start=1):
            if count == batches:
                break
        return count / (time.perf_counter() - start)

    source = open_shard_folder(inspect_shard_folder(shards), seq)
    ours = rate(WeightedMixture([source], [1.0], num_samples=batches * batch, seed=0), collate_windows)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    ids = [i for p in files for i in tokenizer(p.read_text(encoding="utf-8") + tokenizer.eos_token)["input_ids"]]
    blocks = [ids[i : i + seq] for i in range(0, len(ids) - seq + 1, seq)]
    grouped = Dataset.from_dict({"input_ids": blocks, "labels": blocks})
    return ours, rate(grouped, default_data_collator)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both engines (0: torch's default). One by default: with two threads on a shared "
        "machine, a descheduled thread stalls the other at every parallel region (one run's intervals swung from "
        "800 to 25,000 tokens/s at load 4)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import logging

    import yaml

    from recipes.local_code import stdlib_python_files
    from recipes.pretrain_data import tokenize_files
    from recipes.tiny_model import EOS_TOKEN, TinyModelConfig, build_tiny_model

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = stdlib_python_files(limit_files=args.files)
        files = [f for f in files if f.read_bytes().strip()]
        tokenizer_dir = build_tiny_model(work / "model", files, TinyModelConfig(vocab_size=2048))
        shards = tokenize_files(files, work / "shards", tokenizer_dir, eos_token=EOS_TOKEN)
        spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes/tiny/model.yaml").read_text())
        spec_path = work / "model.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        data_ours, data_base = data_path_batches_per_second(tokenizer_dir, files, shards, args.seq, args.batch)
        print(f"  data path only: ours {data_ours:,.0f} batches/s, baseline {data_base:,.0f} batches/s", flush=True)
        results: dict[str, list[dict]] = {"ours": [], "baseline": []}
        for repeat in range(args.repeats):
            order = ("ours", "baseline") if repeat % 2 == 0 else ("baseline", "ours")
            for name in order:
                if name == "ours":
                    result = run_ours(work, tokenizer_dir, shards, spec_path, args.steps, args.seq, args.batch)
                else:
                    result = run_baseline(work, tokenizer_dir, files, spec_path, args.steps, args.seq, args.batch)
                results[name].append(result)
                print(
                    f"  {name:8s} repeat {repeat}: {result['tokens_per_second']:,.0f} tokens/s steady "
                    f"({result['tokens_per_cpu_second']:,.0f} per CPU-second), "
                    f"first step after {result['first_step']:.2f} s",
                    flush=True,
                )
    medians = {
        name: {
            key: statistics.median(r[key] for r in runs)
            for key in ("tokens_per_second", "tokens_per_cpu_second", "first_step")
        }
        for name, runs in results.items()
    }
    print(
        f"\n{args.files} stdlib files, tiny Llama, seq {args.seq}, batch {args.batch}, {args.steps} steps, "
        f"medians of {args.repeats}, torch threads {args.threads or 'default'}"
    )
    for name, values in medians.items():
        print(
            f"{name:8s}: {values['tokens_per_second']:10,.0f} tokens/s steady "
            f"({values['tokens_per_cpu_second']:,.0f} per CPU-second)   "
            f"time to first step {values['first_step']:6.2f} s"
        )
    ratio = medians["ours"]["tokens_per_second"] / medians["baseline"]["tokens_per_second"]
    cpu_ratio = medians["ours"]["tokens_per_cpu_second"] / medians["baseline"]["tokens_per_cpu_second"]
    first = medians["baseline"]["first_step"] / medians["ours"]["first_step"]
    print(f"steady-state ratio ours/baseline: {ratio:.2f} (target >= 1.0); time-to-first-step speed-up: {first:.2f}x")
    print(f"steady-state ratio per CPU-second (less sensitive to other load on the machine): {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
