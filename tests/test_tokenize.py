"""Tokenization into .ds shards with datatrove's DocumentTokenizer, read back with DatatroveFolderDataset."""

from __future__ import annotations

import gzip
import json
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from datatrove.utils.dataset import DatatroveFolderDataset
from documents import write_docs

from datatrove_pipelines.fim import fim_reassemble
from datatrove_pipelines.tokenize import main, shard_stats
from datatrove_pipelines.tokenizer import load_tokenizer

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def source_docs(pattern: str, n: int) -> list[dict]:
    return [
        {"text": path.read_text(encoding="utf-8", errors="replace"), "id": str(path.relative_to(STDLIB))}
        for path in sorted(STDLIB.glob(pattern))[:n]
    ]


def read_back(folder: Path, eos_id: int) -> list[list[int]]:
    """Every document of a source folder as token ids, through datatrove's DatatroveFolderDataset (one window per
    shard covering all of its tokens), split at the EOS token."""
    documents = []
    for shard in sorted(folder.glob("*.ds")):
        stats = shard_stats(str(folder))
        n_tokens = shard.stat().st_size // stats["token_size"]
        dataset = DatatroveFolderDataset(
            str(folder), seq_len=n_tokens - 1, filename_pattern=shard.name, token_size=stats["token_size"]
        )
        assert len(dataset) == 1
        ids = dataset[0]["input_ids"].numpy().astype(np.int64)
        ends = np.frombuffer((folder / f"{shard.name}.index").read_bytes(), dtype="<u8")
        assert ids[ends - 1].tolist() == [eos_id] * len(ends)  # EOS closes every document, as the index says
        start = 0
        for end in ends.tolist():
            documents.append(ids[start:end].tolist())
            start = end
    return documents


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("sources")
    # binary junk in a text field is tokenized byte by byte (byte-level BPE) and decodes back exactly
    python = source_docs("*.py", 40) + [{"text": "\x00\x01\x7f junk \ufffd\u2028 \U0001f600", "id": "junk"}]
    other = source_docs("json/*.py", 10)
    junk = [{"text": "   \n\t", "id": "blank"}]
    write_docs(root / "python" / "kept", python + junk)
    write_docs(root / "json_pkg", other)
    return {"root": root, "python": python, "json_pkg": other}


@pytest.fixture(scope="module")
def run(sources, tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tokens")
    root = sources["root"]
    main(
        [
            "--input",
            str(root / "python"),
            f"json_pkg={root / 'json_pkg'}",
            "--tokenizer",
            str(tiny_model_dir),
            "--output",
            str(out),
            "--tasks",
            "1",
        ]
    )
    return out


def test_shards_decode_to_the_input_texts_and_counts_match_the_tokenizer(sources, run, tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    stats = json.loads((run / "stats.json").read_text())
    for name in ("python", "json_pkg"):
        docs = read_back(run / name, tokenizer.eos_token_id)
        decoded = sorted(tokenizer.decode(ids[:-1]) for ids in docs)
        assert decoded == sorted(doc["text"] for doc in sources[name])
        expected = sum(len(tokenizer.encode(doc["text"], add_special_tokens=False)) + 1 for doc in sources[name])
        assert stats["sources"][name]["docs"] == len(sources[name])
        assert stats["sources"][name]["tokens"] == expected == sum(len(ids) for ids in docs)
    # shuffled: the shard order is not the input order
    python_docs = read_back(run / "python", tokenizer.eos_token_id)
    order = [tokenizer.decode(ids[:-1]) for ids in python_docs]
    assert order != [doc["text"] for doc in sources["python"]]


def test_bad_documents_are_excluded_with_reasons(run):
    stats = json.loads((run / "stats.json").read_text())
    step = stats["steps"]["tokenize"]
    assert step["reasons"]["empty_text"]["docs"] == 1
    assert stats["total"]["docs_in"] == stats["total"]["docs_kept"] + stats["total"]["docs_excluded"]
    excluded = [json.loads(line) for line in gzip.open(next((run / "excluded" / "tokenize").glob("*.gz")), "rt")]
    assert [doc["metadata"]["filter_reason"] for doc in excluded] == ["empty_text"]


def test_texts_the_tokenizer_cannot_encode_are_excluded():
    """Lone surrogates (possible from readers other than JSON, which rejects them) would crash encode_batch."""
    from datatrove.data import Document

    from datatrove_pipelines.tokenize import TokenizableFilter

    step = TokenizableFilter()
    assert step.check(Document(text="bad \ud800 surrogate", id="s")) == "invalid_unicode"
    assert step.check(Document(text="", id="e")) == "empty_text"
    assert step.check(Document(text="ok", id="o")) is None


def test_fim_inside_tokenize(sources, tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    main(
        [
            "--input",
            str(sources["root"] / "json_pkg"),
            "--tokenizer",
            str(tiny_model_dir),
            "--output",
            str(tmp_path / "out"),
            "--fim-rate",
            "1",
        ]
    )
    docs = read_back(tmp_path / "out" / "json_pkg", tokenizer.eos_token_id)
    suffix_id = tokenizer.convert_tokens_to_ids("<[fim-suffix]>")
    assert all(ids[0] == suffix_id for ids in docs)  # one special token, not its characters
    texts = sorted(fim_reassemble(tokenizer.decode(ids[:-1])) for ids in docs)
    assert texts == sorted(doc["text"] for doc in sources["json_pkg"])


def test_fim_with_a_tokenizer_lacking_fim_tokens_is_a_clear_error(sources, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel()
    backend.train_from_iterator(["x = 1"] * 5, trainers.BpeTrainer(vocab_size=280, special_tokens=["<eos>"]))
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>").save_pretrained(tmp_path / "plain")
    args = ["--input", str(sources["root"] / "json_pkg"), "--tokenizer", str(tmp_path / "plain")]
    with pytest.raises(SystemExit) as raised:
        main([*args, "--output", str(tmp_path / "out"), "--fim-rate", "0.5"])
    assert "fim-suffix" in str(raised.value)
    main([*args, "--output", str(tmp_path / "ok")])  # without FIM the same tokenizer is fine
    assert shard_stats(str(tmp_path / "ok" / "json_pkg"))["docs"] == len(sources["json_pkg"])


def test_wrong_usage(sources, tiny_model_dir, tmp_path):
    root = sources["root"]
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(tmp_path / "nope"), "--tokenizer", str(tiny_model_dir), "--output", str(tmp_path / "o")])
    assert "does not exist" in str(raised.value)
    a_file = next((root / "json_pkg").glob("*.jsonl.gz"))
    with pytest.raises(SystemExit) as raised:  # a documents file instead of its folder: said so
        main(["--input", str(a_file), "--tokenizer", str(tiny_model_dir), "--output", str(tmp_path / "o")])
    assert "is a file" in str(raised.value)
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(root / "json_pkg"), "--tokenizer", str(tmp_path / "no-tok"), "--output", str(tmp_path)])
    assert "cannot load tokenizer" in str(raised.value)
    with pytest.raises(SystemExit):  # two sources with one name
        main(["--input", f"a={root / 'json_pkg'}", f"a={root / 'python'}", "--tokenizer", "x", "--output", "o"])
    args = ["--input", str(root / "json_pkg"), "--tokenizer", str(tiny_model_dir), "--output", str(tmp_path / "o")]
    for flags in (["--max-tokens-per-file", "-1"], ["--max-tokens-per-file", "0"], ["--batch-size", "0"]):
        with pytest.raises(SystemExit) as raised:  # not a silent empty shard per document, nor a traceback
            main([*args, *flags])
        assert raised.value.code == 2, flags
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("stage", ["high_quality", "repo_context", "fim", "tokenize"])
def test_yaml_recipes_parse_with_their_stage(stage):
    """recipes/tiny/<stage>.yaml: every key is a flag of the stage (unknown keys are errors)."""
    import argparse
    import importlib

    from datatrove_pipelines.stage import parse_stage_args

    module = importlib.import_module(f"datatrove_pipelines.{stage}")
    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "tiny" / f"{stage}.yaml")
    if hasattr(module, "parse_args"):
        assert module.parse_args(["--config", recipe]) is not None
        return
    parser = argparse.ArgumentParser()
    from datatrove_pipelines.fim import add_fim_arguments
    from datatrove_pipelines.stage import add_stage_arguments

    add_stage_arguments(parser)
    add_fim_arguments(parser)
    args = parse_stage_args(parser, ["--config", recipe])
    assert (args.rate, args.mode) == (0.5, "spm")


def test_max_tokens_per_file_splits_shards_at_document_boundaries(sources, tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    source = sources["root"] / "json_pkg"
    args = ["--input", str(source), "--tokenizer", str(tiny_model_dir), "--output", str(tmp_path / "out")]
    main([*args, "--max-tokens-per-file", "8000"])
    folder = tmp_path / "out" / "json_pkg"
    assert len(list(folder.glob("*.ds"))) > 1
    docs = read_back(folder, tokenizer.eos_token_id)
    assert sorted(tokenizer.decode(ids[:-1]) for ids in docs) == sorted(doc["text"] for doc in sources["json_pkg"])
