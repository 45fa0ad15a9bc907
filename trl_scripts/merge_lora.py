"""Merge a LoRA adapter (``use_peft: true`` runs) into its base model and save a plain checkpoint.

    python trl_scripts/merge_lora.py --adapter outputs/tiny/sft --output outputs/tiny/sft-merged [--base PATH]

The base model defaults to the one recorded in the adapter's ``adapter_config.json``; the tokenizer (with the chat
template the run used) is copied from the adapter folder.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def merge(adapter_dir: str, output_dir: str, base: str | None = None) -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config_path = Path(adapter_dir) / "adapter_config.json"
    if not config_path.is_file():
        raise SystemExit(f"error: {adapter_dir} has no adapter_config.json (not a LoRA run?)")
    base = base or json.loads(config_path.read_text())["base_model_name_or_path"]
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output)
    AutoTokenizer.from_pretrained(
        adapter_dir if os.path.exists(Path(adapter_dir) / "tokenizer_config.json") else base
    ).save_pretrained(output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", required=True, help="output_dir of a use_peft run (adapter_config.json)")
    parser.add_argument("--output", required=True, help="where the merged model goes")
    parser.add_argument("--base", default=None, help="base model (default: the adapter's base_model_name_or_path)")
    args = parser.parse_args(argv)
    print(f"merged model written to {merge(args.adapter, args.output, args.base)}")


if __name__ == "__main__":
    main()
