"""transformers <-> nanotron checkpoint conversion on CPU with safetensors: bit-identical round trips, nanotron's layout.

nanotron itself cannot be imported here; the layout checks below restate what its serializer writes
(serialize/weights.py, parallel/sharded_parameters.py, models/llama.py at the commit pinned in
nanotron_configs/README.md) and check our files against it independently of the converter's own reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from recipes.convert_checkpoint import hf_to_nanotron, main, nanotron_to_hf, read_nanotron_parameter


def _hf_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in folder.glob("*.safetensors"):
        tensors.update(load_file(file))
    return tensors


@pytest.mark.parametrize("tp", [1, 2])
def test_hf_to_nanotron_to_hf_is_bit_identical(tmp_path, tiny_model_dir, tp):
    nanotron = hf_to_nanotron(tiny_model_dir, tmp_path / "nanotron", tp=tp)
    back = nanotron_to_hf(nanotron, tmp_path / "hf")
    original, converted = _hf_tensors(Path(tiny_model_dir)), _hf_tensors(back)
    assert set(original) == set(converted)
    for name, tensor in original.items():
        assert converted[name].dtype == tensor.dtype and converted[name].shape == tensor.shape, name
        assert torch.equal(converted[name].view(torch.uint8), tensor.view(torch.uint8)), name  # bit for bit
    source_config = json.loads((Path(tiny_model_dir) / "config.json").read_text())
    config = json.loads((back / "config.json").read_text())
    for key in (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "rms_norm_eps",
        "bos_token_id",
        "eos_token_id",
        "tie_word_embeddings",
        "max_position_embeddings",
    ):
        assert config[key] == source_config[key], key
    assert (back / "tokenizer.json").read_bytes() == (Path(tiny_model_dir) / "tokenizer.json").read_bytes()


def test_converted_model_computes_the_same_logits(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    back = nanotron_to_hf(hf_to_nanotron(tiny_model_dir, tmp_path / "nt", tp=2), tmp_path / "hf")
    inputs = torch.randint(0, 1000, (2, 24))
    with torch.no_grad():
        expected = AutoModelForCausalLM.from_pretrained(tiny_model_dir)(inputs).logits
        got = AutoModelForCausalLM.from_pretrained(back)(inputs).logits
    assert torch.equal(expected, got)


def test_nanotron_layout_fused_and_sharded_per_tp_rank(tmp_path, tiny_model_dir):
    """Rank r of qkv_proj holds [q_r; k_r; v_r] (TP inside each chunk), o_proj is split on its inputs, norms are
    replicated; file names and metadata as nanotron's serializer writes them."""
    tensors = _hf_tensors(Path(tiny_model_dir))
    root = hf_to_nanotron(tiny_model_dir, tmp_path / "nt", tp=2)
    layer = root / "model" / "model" / "decoder" / "0" / "pp_block"
    q, k, v = (tensors[f"model.layers.0.self_attn.{p}_proj.weight"] for p in "qkv")
    for rank in range(2):
        path = layer / "attn" / "qkv_proj" / f"model_weight_pp-rank-0-of-1_tp-rank-{rank}-of-2.safetensors"
        with safe_open(str(path), framework="pt") as handle:
            shard, metadata = handle.get_tensor("data"), handle.metadata()
        halves = [t.chunk(2, dim=0)[rank] for t in (q, k, v)]
        assert torch.equal(shard, torch.cat(halves))
        assert metadata["version"] == "1.4"
        assert metadata["unsharded_shape"] == str((q.shape[0] + 2 * k.shape[0], q.shape[1]))
        assert len(metadata["local_global_slices_pairs"].split(";")) == 3  # one pair per q/k/v chunk
        down = layer / "mlp" / "down_proj" / f"model_weight_pp-rank-0-of-1_tp-rank-{rank}-of-2.safetensors"
        with safe_open(str(down), framework="pt") as handle:
            down_weight = tensors["model.layers.0.mlp.down_proj.weight"]
            assert torch.equal(handle.get_tensor("data"), down_weight.chunk(2, dim=1)[rank])
            assert handle.metadata()["local_global_slices_pairs"].startswith("None,None,None|None,None,None#")
    gate_up = read_nanotron_parameter(layer / "mlp" / "gate_up_proj")
    gate, up = tensors["model.layers.0.mlp.gate_proj.weight"], tensors["model.layers.0.mlp.up_proj.weight"]
    assert torch.equal(gate_up, torch.cat([gate, up]))
    norm = layer / "input_layernorm" / "model_weight.safetensors"
    assert norm.is_file() and not list(norm.parent.glob("*tp-rank*"))
    embedding = root / "model" / "model" / "token_position_embeddings" / "pp_block" / "token_embedding"
    assert len(list(embedding.glob("model_weight_pp-rank-0-of-1_tp-rank-*-of-2.safetensors"))) == 2
    config = json.loads((root / "model_config.json").read_text())
    assert config["is_llama_config"] is True and config["rope_interleaved"] is False
    meta = json.loads((root / "checkpoint_metadata.json").read_text())
    assert meta["tp"] == 2 and meta["version"] == "1.4"
    # topology-independent: tp=1 and tp=2 checkpoints hold the same unsharded parameters
    single = hf_to_nanotron(tiny_model_dir, tmp_path / "nt1", tp=1)
    for folder in (layer / "attn" / "qkv_proj", layer / "attn" / "o_proj", embedding):
        relative = folder.relative_to(root)
        assert torch.equal(read_nanotron_parameter(folder), read_nanotron_parameter(single / relative))


def test_missing_tp_rank_is_an_error(tmp_path, tiny_model_dir):
    root = hf_to_nanotron(tiny_model_dir, tmp_path / "nt", tp=2)
    next(root.rglob("*qkv_proj/*tp-rank-1-of-2.safetensors")).unlink()
    with pytest.raises(ValueError, match="missing TP ranks"):
        nanotron_to_hf(root, tmp_path / "hf")


def test_cli_errors_are_one_line(tmp_path, tiny_model_dir, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--from", "hf", "--to", "nanotron", str(tiny_model_dir), str(tmp_path / "x"), "--tp", "3"])
    assert raised.value.code == 2 and "tp=3" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["--from", "nanotron", "--to", "hf", str(tmp_path / "nothing"), str(tmp_path / "y")])
    assert raised.value.code == 2 and "model_config.json" in capsys.readouterr().err
    main(["--from", "hf", "--to", "nanotron", str(tiny_model_dir), str(tmp_path / "ok"), "--tp", "2"])
    with pytest.raises(SystemExit) as raised:  # never writes over an existing checkpoint
        main(["--from", "hf", "--to", "nanotron", str(tiny_model_dir), str(tmp_path / "ok")])
    assert raised.value.code == 2 and "not empty" in capsys.readouterr().err
