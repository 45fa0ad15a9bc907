"""Convert Llama checkpoints between transformers and nanotron layouts on CPU, with safetensors only.

    python -m recipes.convert_checkpoint --from hf --to nanotron HF_DIR NANOTRON_DIR [--tp 2]
    python -m recipes.convert_checkpoint --from nanotron --to hf NANOTRON_DIR HF_DIR

Why without nanotron: it cannot be installed here, yet a nanotron run must be evaluable with ``eval.run`` and a
transformers checkpoint must seed a nanotron stage. nanotron's layout (``serialize/weights.py``, ``models/llama.py``
at the commit pinned in nanotron_configs/README.md):

- ``model_config.json`` (nanotron's LlamaConfig) and ``checkpoint_metadata.json`` at the root;
- one folder per parameter under ``model/`` named after it, e.g.
  ``model/model/decoder/0/pp_block/attn/qkv_proj/model_weight_pp-rank-0-of-1_tp-rank-1-of-2.safetensors``;
- the tensor under key ``data``; TP-sharded tensors carry ``version``, ``local_global_slices_pairs`` and
  ``unsharded_shape`` metadata; replicated ones (RMSNorm weights) are a single ``model_weight.safetensors``;
- fused ``qkv_proj`` = [q; k; v] and ``gate_up_proj`` = [gate; up], column-parallel *within each chunk* (each TP
  rank holds its slice of q, of k and of v); ``o_proj``/``down_proj`` row-parallel (split on inputs); the token
  embedding and ``lm_head`` split on the vocabulary. RoPE is non-interleaved (``rope_interleaved: false``), so q and
  k need no permutation.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

CHECKPOINT_VERSION = "1.4"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "generation_config.json",
)
_SHARD = re.compile(r"^model_weight_pp-rank-(\d+)-of-(\d+)_tp-rank-(\d+)-of-(\d+)\.safetensors$")


class ConversionError(ValueError):
    pass


@dataclass(frozen=True)
class Split:
    """How nanotron shards a parameter over TP: along ``dim``, separately within each of ``chunks`` (None: one)."""

    dim: int
    chunks: tuple[int, ...] | None = None


def _llama_sizes(config: dict) -> tuple[int, int, int]:
    heads, kv_heads, hidden = config["num_attention_heads"], config["num_key_value_heads"], config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // heads
    return heads * head_dim, kv_heads * head_dim, config["intermediate_size"]


def _nanotron_layout(config: dict) -> dict[str, tuple[list[str], Split | None]]:
    """nanotron parameter name -> (the transformers tensors it fuses, in order; its TP split, None = replicated)."""
    q, kv, inter = _llama_sizes(config)
    layout: dict[str, tuple[list[str], Split | None]] = {
        "model.token_position_embeddings.pp_block.token_embedding.weight": (["model.embed_tokens.weight"], Split(0)),
        "model.final_layer_norm.pp_block.weight": (["model.norm.weight"], None),
    }
    if not config.get("tie_word_embeddings", False):
        layout["model.lm_head.pp_block.weight"] = (["lm_head.weight"], Split(0))
    for i in range(config["num_hidden_layers"]):
        hf, nt = f"model.layers.{i}", f"model.decoder.{i}.pp_block"
        layout[f"{nt}.attn.qkv_proj.weight"] = (
            [f"{hf}.self_attn.{p}_proj.weight" for p in "qkv"],
            Split(0, (q, kv, kv)),
        )
        layout[f"{nt}.attn.o_proj.weight"] = ([f"{hf}.self_attn.o_proj.weight"], Split(1))
        layout[f"{nt}.mlp.gate_up_proj.weight"] = (
            [f"{hf}.mlp.gate_proj.weight", f"{hf}.mlp.up_proj.weight"],
            Split(0, (inter, inter)),
        )
        layout[f"{nt}.mlp.down_proj.weight"] = ([f"{hf}.mlp.down_proj.weight"], Split(1))
        layout[f"{nt}.input_layernorm.weight"] = ([f"{hf}.input_layernorm.weight"], None)
        layout[f"{nt}.post_attention_layernorm.weight"] = ([f"{hf}.post_attention_layernorm.weight"], None)
    return layout


def _slice_str(s: slice) -> str:
    return ",".join("None" if x is None else str(int(x)) for x in (s.start, s.stop, s.step))


def _parse_slice(text: str) -> slice:
    return slice(*(None if x == "None" else int(x) for x in text.split(",")))


def shard_tensor(tensor: torch.Tensor, split: Split, rank: int, tp: int) -> tuple[torch.Tensor, str]:
    """TP rank ``rank``'s shard and its ``local_global_slices_pairs`` string (nanotron's
    ``create_sharded_parameter_from_config``)."""
    ndim, dim = tensor.dim(), split.dim
    every = tuple(slice(None) for _ in range(ndim))
    chunks = split.chunks or (tensor.shape[dim],)
    pairs, pieces = [], []
    global_start = local_start = 0
    for chunk in chunks:
        if chunk % tp:
            raise ConversionError(f"a chunk of {chunk} rows cannot be split over tp={tp}")
        length = chunk // tp
        global_slice = slice(global_start + rank * length, global_start + (rank + 1) * length)
        local_slice = slice(local_start, local_start + length)
        pieces.append(tensor.narrow(dim, global_slice.start, length))
        if split.chunks is None:  # nanotron writes the whole local tensor for an unchunked split
            local = every
        else:
            local = tuple(local_slice if d == dim else slice(None) for d in range(ndim))
        global_ = tuple(global_slice if d == dim else slice(None) for d in range(ndim))
        pairs.append("|".join(map(_slice_str, local)) + "#" + "|".join(map(_slice_str, global_)))
        global_start += chunk
        local_start += length
    return torch.cat(pieces, dim=dim).contiguous(), ";".join(pairs)


def _param_folder(root: Path, name: str) -> Path:
    return root / "model" / Path(*name.split(".")[:-1])


def _read_hf(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ConversionError(f"{folder} is not a transformers checkpoint (no config.json)")
    config = json.loads(config_path.read_text())
    if config.get("model_type") != "llama":
        raise ConversionError(f"only Llama checkpoints convert, got model_type={config.get('model_type')!r}")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ConversionError(f"{folder} has no .safetensors weights (only safetensors are read)")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            for key in handle.keys():
                tensors[key] = handle.get_tensor(key)
    return config, tensors


def nanotron_model_config(hf_config: dict) -> dict:
    """nanotron's LlamaConfig from a transformers config (the fields of nanotron's examples/llama converter)."""
    keys = (
        "bos_token_id eos_token_id hidden_act hidden_size initializer_range intermediate_size max_position_embeddings "
        "num_attention_heads num_hidden_layers num_key_value_heads pad_token_id pretraining_tp rms_norm_eps "
        "rope_scaling rope_theta tie_word_embeddings use_cache vocab_size attention_bias"
    ).split()
    defaults = {"pretraining_tp": 1, "rope_scaling": None, "use_cache": True, "attention_bias": False}
    config = {key: hf_config.get(key, defaults.get(key)) for key in keys}
    if config["rope_theta"] is None:  # transformers 5 keeps it under rope_parameters
        config["rope_theta"] = (hf_config.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    config["is_llama_config"] = True
    config["rope_interleaved"] = False
    return config


def hf_to_nanotron(src: str | Path, dst: str | Path, tp: int = 1) -> Path:
    src, dst = Path(src), Path(dst)
    config, tensors = _read_hf(src)
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise ConversionError("biases are not part of nanotron's Llama")
    if tp < 1 or config["num_key_value_heads"] % tp or config["num_attention_heads"] % tp:
        raise ConversionError(f"tp={tp} must divide the attention and key-value heads")
    if dst.exists() and any(dst.iterdir()):
        raise ConversionError(f"{dst} exists and is not empty")
    layout = _nanotron_layout(config)
    used = set()
    for name, (sources, split) in layout.items():
        missing = [s for s in sources if s not in tensors]
        if missing:
            raise ConversionError(f"{src}: missing tensors {missing}")
        used.update(sources)
        full = torch.cat([tensors[s] for s in sources], dim=0) if len(sources) > 1 else tensors[sources[0]]
        folder = _param_folder(dst, name)
        folder.mkdir(parents=True, exist_ok=True)
        if split is None:
            save_file({"data": full.contiguous()}, str(folder / "model_weight.safetensors"))
            continue
        for rank in range(tp):
            shard, pairs = shard_tensor(full, split, rank, tp)
            metadata = {
                "version": CHECKPOINT_VERSION,
                "local_global_slices_pairs": pairs,
                "unsharded_shape": str(tuple(full.shape)),
            }
            path = folder / f"model_weight_pp-rank-0-of-1_tp-rank-{rank}-of-{tp}.safetensors"
            save_file({"data": shard}, str(path), metadata=metadata)
    tied_head = {"lm_head.weight"} if config.get("tie_word_embeddings") else set()
    unused = sorted(set(tensors) - used - tied_head)
    if unused:
        raise ConversionError(f"{src}: tensors with no nanotron counterpart: {unused[:5]}")
    (dst / "model_config.json").write_text(json.dumps(nanotron_model_config(config), indent=2))
    metas = {
        "consumed_train_samples": 0,
        "last_train_step": 0,
        "consumed_tokens_total": 0,
        "last_stage_idx": 0,
        "data_stages": [
            {
                "name": "converted",
                "start_training_step": 1,
                "consumed_train_samples": 0,
                "sequence_length": None,
                "consumed_tokens_per_dataset_folder": {},
            }
        ],
    }
    checkpoint_metadata = {
        "version": CHECKPOINT_VERSION,
        "tp": tp,
        "dp": 1,
        "cp": 1,
        "metas": metas,
        "custom_metas": None,
    }
    (dst / "checkpoint_metadata.json").write_text(json.dumps(checkpoint_metadata, indent=2, sort_keys=True))
    for name in TOKENIZER_FILES:  # so the nanotron folder carries its tokenizer back to transformers
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    return dst


def read_nanotron_parameter(folder: Path) -> torch.Tensor:
    """One parameter, unsharded: a replicated ``model_weight.safetensors`` or every TP/PP shard file put back
    where its ``local_global_slices_pairs`` say (any TP degree)."""
    single = folder / "model_weight.safetensors"
    if single.is_file():
        with safe_open(str(single), framework="pt", device="cpu") as handle:
            return handle.get_tensor("data")
    shards = sorted(p for p in folder.glob("model_weight_*.safetensors") if _SHARD.match(p.name))
    if not shards:
        raise ConversionError(f"no weights in {folder}")
    full = None
    filled = 0
    for shard in shards:
        with safe_open(str(shard), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            data = handle.get_tensor("data")
        if "unsharded_shape" not in metadata:
            raise ConversionError(f"{shard}: no sharding metadata")
        shape = tuple(int(x) for x in metadata["unsharded_shape"].strip("()").split(",") if x.strip())
        if full is None:
            full = torch.empty(shape, dtype=data.dtype)
        for pair in metadata["local_global_slices_pairs"].split(";"):
            local_text, global_text = pair.split("#")
            local = tuple(_parse_slice(s) for s in local_text.split("|"))
            global_ = tuple(_parse_slice(s) for s in global_text.split("|"))
            piece = data[local]
            full[global_] = piece
            filled += piece.numel()
    if filled != full.numel():
        raise ConversionError(f"{folder}: shards cover {filled} of {full.numel()} values (missing TP ranks?)")
    return full


def nanotron_to_hf(src: str | Path, dst: str | Path) -> Path:
    from huggingface_hub import save_torch_state_dict
    from transformers import LlamaConfig

    src, dst = Path(src), Path(dst)
    config_path = src / "model_config.json"
    if not config_path.is_file():
        raise ConversionError(f"{src} is not a nanotron checkpoint (no model_config.json)")
    nt_config = json.loads(config_path.read_text())
    if nt_config.get("rope_interleaved"):
        raise ConversionError("interleaved RoPE checkpoints need a q/k permutation, which this converter refuses")
    q, kv, inter = _llama_sizes(nt_config)
    state: dict[str, torch.Tensor] = {}
    for name, (targets, _split) in _nanotron_layout(nt_config).items():
        tensor = read_nanotron_parameter(_param_folder(src, name))
        sizes = {3: [q, kv, kv], 2: [inter, inter], 1: [tensor.shape[0]]}[len(targets)]
        for target, part in zip(targets, torch.split(tensor, sizes, dim=0), strict=True):
            state[target] = part.clone()  # its own storage: safetensors refuses views of a shared buffer
    dtype = state["model.embed_tokens.weight"].dtype
    hf_keys = {k: v for k, v in nt_config.items() if k not in ("is_llama_config", "rope_interleaved")}
    hf_keys = {k: v for k, v in hf_keys.items() if not k.startswith("_") and not k.startswith("z_loss")}
    config = LlamaConfig(**hf_keys, dtype=dtype)
    config.architectures = ["LlamaForCausalLM"]
    dst.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(dst)
    save_torch_state_dict(state, dst, max_shard_size="5GB")
    for file in TOKENIZER_FILES:
        if (src / file).is_file():
            shutil.copy2(src / file, dst / file)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source_format", choices=("hf", "nanotron"), required=True)
    parser.add_argument("--to", dest="target_format", choices=("hf", "nanotron"), required=True)
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel shards to write (hf -> nanotron)")
    args = parser.parse_args(argv)
    if args.source_format == args.target_format:
        parser.exit(2, "error: --from and --to must differ\n")
    try:
        if args.target_format == "nanotron":
            out = hf_to_nanotron(args.src, args.dst, tp=args.tp)
        else:
            out = nanotron_to_hf(args.src, args.dst)
    except ConversionError as error:
        parser.exit(2, f"error: {error}\n")
    print(out)
    return 0


if __name__ == "__main__":
    main()
