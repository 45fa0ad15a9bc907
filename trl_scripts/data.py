"""Training datasets for the post-training scripts: chat conversations with a system message.

Sources: a Hub dataset id, a local folder/file (JSON lines, Parquet; a data-stage run folder whose ``kept/`` holds
datatrove documents, whose ``metadata`` fields are lifted to columns), or ``mbpp_train`` built offline from the local
benchmark copies: decontaminated against the evaluation benchmarks and verified in the sandbox (only references that
pass their own tests are kept).
"""

from __future__ import annotations

import glob
import os
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset

from datatrove_pipelines.post_training.seeds import MBPP_TRAIN, decontaminate, mbpp_train_records
from datatrove_pipelines.post_training.steps import problem_prompt
from eval.code_reward import CodeTests, score_tests

_DATA_SUFFIXES = {".jsonl": "json", ".json": "json", ".gz": "json", ".parquet": "parquet"}


def _local_files(path: str) -> tuple[str, list[str]]:
    folder = os.path.join(path, "kept") if os.path.isdir(os.path.join(path, "kept")) else path
    files = (
        [path]
        if os.path.isfile(path)
        else sorted(f for f in glob.glob(os.path.join(folder, "**", "*"), recursive=True) if os.path.isfile(f))
    )
    files = [f for f in files if any(f.endswith(s) for s in (".jsonl", ".jsonl.gz", ".json", ".parquet"))]
    if not files:
        raise SystemExit(f"error: no .jsonl[.gz]/.json/.parquet files under {path}")
    kind = "parquet" if files[0].endswith(".parquet") else "json"
    return kind, files


def _lift_metadata(row: dict[str, Any]) -> dict[str, Any]:
    """A datatrove document's metadata fields as columns (text and id kept)."""
    metadata = row.pop("metadata", None) or {}
    return {**row, **metadata}


def verified_mbpp_train(benchmarks_dir: str | None, decontaminated: bool = True) -> list[dict[str, Any]]:
    """MBPP train problems whose reference solution passes its own tests in the sandbox (decontaminated first)."""
    records = mbpp_train_records(benchmarks_dir)
    if decontaminated:
        records = decontaminate(records, benchmarks_dir)
    runs = score_tests(
        [r["reference"] for r in records], [CodeTests("python", r["tests"], r["test_setup"]) for r in records]
    )
    return [r for r, run in zip(records, runs, strict=True) if run.all_passed]


def _mbpp_rows(kind: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for index, record in enumerate(records):
        user = {"role": "user", "content": problem_prompt(record)}
        answer = {"role": "assistant", "content": f"```python\n{record['reference']}\n```"}
        if kind == "sft":
            rows.append({"messages": [user, answer]})
        else:  # grpo: prompt + what the reward needs
            rows.append(
                {
                    "prompt": [user],
                    "tests": record["tests"],
                    "test_setup": record["test_setup"],
                    "language": "python",
                    "prompt_id": index,
                }
            )
    return rows


def load_raw_dataset(script_args, kind: str) -> Dataset:
    """The training split of ``script_args.dataset_name`` (see the module docstring)."""
    name = script_args.dataset_name
    if not name:
        raise SystemExit("error: set dataset_name (a Hub id, a local path, or 'mbpp_train')")
    if name == MBPP_TRAIN:
        if kind == "dpo":
            raise SystemExit("error: DPO needs pairs: build them with python -m datatrove_pipelines.dpo_data")
        records = verified_mbpp_train(script_args.benchmarks_dir, script_args.decontaminate)
        dataset = Dataset.from_list(_mbpp_rows(kind, records))
    elif os.path.exists(name):
        builder, files = _local_files(name)
        dataset = load_dataset(builder, data_files={"train": files}, split="train")
        if "metadata" in dataset.column_names:
            dataset = Dataset.from_list([_lift_metadata(dict(row)) for row in dataset])
    else:
        try:
            loaded = load_dataset(name, script_args.dataset_config)
        except (OSError, ValueError) as error:  # neither a local path nor a reachable Hub dataset: one line
            raise SystemExit(
                f"error: dataset_name {name!r} is not a local path or a loadable dataset: {error}"
            ) from None
        dataset = loaded[script_args.dataset_train_split] if isinstance(loaded, DatasetDict) else loaded
    if script_args.max_train_samples:
        dataset = dataset.select(range(min(script_args.max_train_samples, len(dataset))))
    return dataset


def with_system(messages: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    if not system_prompt or (messages and messages[0]["role"] == "system"):
        return list(messages)
    return [{"role": "system", "content": system_prompt}, *messages]


def sft_dataset(script_args) -> Dataset:
    """Conversations (``messages``) with the system message; ``prompt``/``completion`` rows become conversations."""
    dataset = load_raw_dataset(script_args, "sft")

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("messages"):
            messages = row["messages"]
        elif row.get("prompt") is not None and row.get("completion") is not None:
            prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
            completion = (
                row["completion"]
                if isinstance(row["completion"], list)
                else [{"role": "assistant", "content": row["completion"]}]
            )
            messages = prompt + completion
        else:
            raise SystemExit(f"error: rows need 'messages' or 'prompt'+'completion'; columns: {list(row)}")
        return {"messages": with_system(messages, script_args.system_prompt)}

    return dataset.map(convert, remove_columns=dataset.column_names)


def dpo_dataset(script_args) -> Dataset:
    """Preference rows (prompt, chosen, rejected) as conversations; dpo_data runs (``pairs`` lists) are expanded."""
    dataset = load_raw_dataset(script_args, "dpo")
    rows = []
    for row in dataset:
        pairs = row.get("pairs") or [{"chosen": row.get("chosen"), "rejected": row.get("rejected")}]
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        prompt = with_system(prompt, script_args.system_prompt)
        for pair in pairs:
            chosen, rejected = pair["chosen"], pair["rejected"]
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": chosen if isinstance(chosen, list) else [{"role": "assistant", "content": chosen}],
                    "rejected": rejected
                    if isinstance(rejected, list)
                    else [{"role": "assistant", "content": rejected}],
                }
            )
    return Dataset.from_list(rows)


def grpo_dataset(script_args) -> Dataset:
    """Prompts with the system message, plus ``tests``/``test_setup``/``language`` for the code reward and a
    ``prompt_id`` for the curriculum."""
    dataset = load_raw_dataset(script_args, "grpo")
    if "prompt_id" not in dataset.column_names:
        dataset = dataset.add_column("prompt_id", list(range(len(dataset))))

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        prompt = row.get("prompt")
        if prompt is None and row.get("messages"):
            prompt = [m for m in row["messages"] if m["role"] != "assistant"]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        return {
            "prompt": with_system(prompt, script_args.system_prompt),
            "tests": list(row.get("tests") or []),
            "test_setup": row.get("test_setup") or "",
            "language": row.get("language") or "python",
        }

    keep = {"prompt_id"}
    return dataset.map(convert, remove_columns=[c for c in dataset.column_names if c not in keep])
