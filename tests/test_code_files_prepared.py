"""The filter run's fast path (survivors' intermediate lines copied to kept/ as bytes, duplicates decoded) against the
plain path (every record decoded, checked by the dedup filters, encoded again): the same kept/ and excluded/ records
byte for byte, the same stats.json and the same datatrove per-step stats, with 1 and 3 tasks, on real files with
exact and near copies; lines that do not end in their own reference; a missing or wrong line index."""

from __future__ import annotations

import gzip
import json
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import orjson
import pytest

from datatrove_pipelines.code_files import CodeFilesConfig, build_stage_pipelines, run_code_files
from datatrove_pipelines.executors import ExecutorConfig
from datatrove_pipelines.prepared import PreparedReader, index_name

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = [
    "textwrap.py",
    "shlex.py",
    "fnmatch.py",
    "colorsys.py",
    "bisect.py",
    "heapq.py",
    "glob.py",
    "json/decoder.py",
]


def corpus(root: Path) -> Path:
    """JSONL: stdlib modules in near copies (stars in the source columns), exact copies, singles, a broken file."""
    records = []
    for number, module in enumerate(MODULES):
        text = (STDLIB / module).read_text()
        for copy in range(3 if number % 2 else 1):
            records.append(
                {"repo_name": f"r{copy}/x", "path": module, "content": text + f"\n# {copy}\n", "stars": copy}
            )
        records.append({"repo_name": "exact/copy", "path": module, "content": text})
        records.append({"repo_name": "exact/other", "path": module, "content": text})
    records.append({"repo_name": "bad/one", "path": "broken.py", "content": "def f(:\n"})
    records.append({"repo_name": "bad/one", "path": "empty.py", "content": ""})
    path = root / "input.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def config(source: Path, output: Path, tasks: int, copy_survivors: bool) -> CodeFilesConfig:
    return CodeFilesConfig(
        inputs=[str(source)],
        output_dir=str(output),
        decontaminate=False,
        copy_survivors=copy_survivors,
        executor=ExecutorConfig(tasks=tasks, workers=1),
    )


def records(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): gzip.decompress(p.read_bytes()) for p in sorted(folder.rglob("*.jsonl.gz"))}


def step_stats(output: Path) -> dict:
    return {
        (run.parent.name, number, step["name"]): step["stats"]
        for run in sorted((output / "logs").glob("*/stats.json"))
        for number, step in enumerate(json.loads(run.read_text()))
    }


@pytest.mark.parametrize("tasks", [1, 3])
def test_the_fast_filter_run_writes_what_the_plain_one_writes(tmp_path, tasks):
    source = corpus(tmp_path)
    outputs = {}
    for fast in (True, False):
        outputs[fast] = tmp_path / f"out-{fast}"
        run_code_files(config(source, outputs[fast], tasks, fast))
    fast, plain = outputs[True], outputs[False]
    assert (fast / "stats.json").read_bytes() == (plain / "stats.json").read_bytes()
    assert records(fast / "kept") == records(plain / "kept")
    assert records(fast / "excluded") == records(plain / "excluded")
    assert step_stats(fast) == step_stats(plain)
    funnel = json.loads((fast / "stats.json").read_text())["steps"]
    assert funnel["exact_dedup"]["docs_excluded"] >= len(MODULES) and funnel["near_dedup"]["docs_excluded"] > 0
    logs = "".join(p.read_text() for p in (fast / "logs" / "filter" / "logs").glob("*.log"))
    assert "survivors copied as bytes" in logs  # the fast path was taken


def filter_run(work_copy: Path, output: Path, copy_survivors: bool) -> dict:
    """The filter run's steps over ``work_copy`` (an earlier run's work folder), in this process: its outputs and
    each step's stats."""
    output.mkdir()
    shutil.copytree(work_copy, output / "work")
    steps = build_stage_pipelines(config(output.parent, output, 1, copy_survivors))["filter"]
    data = None
    for step in steps:
        data = step(data, 0, 1)
    for _ in data:
        pass
    stats = [(step.name, step.stats.to_dict()["stats"]) for step in steps]
    return {"kept": records(output / "kept"), "excluded": records(output / "excluded"), "stats": stats}


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    output = root / "out"
    run_code_files(config(corpus(root), output, 1, False))
    return output / "work"


def test_lines_not_ending_in_their_own_reference_are_decoded(prepared_run, tmp_path):
    """A survivor and a duplicate whose dedup_ref is not the last key (as if a step had reordered the metadata),
    and a survivor without any other metadata: decoded, checked and written as the plain run writes them."""
    work = tmp_path / "work"
    shutil.copytree(prepared_run, work)
    path = work / "prepared" / "00000.jsonl"
    lines = path.read_bytes().splitlines()
    removed = {int(i) for kind in ("exact", "near") for i in np.load(work / "removals" / f"{kind}_00000.npy")}
    survivor = next(i for i in range(len(lines)) if i not in removed)
    duplicate = min(removed)
    for number in (survivor, duplicate):
        record = orjson.loads(lines[number])
        record["metadata"] = {"dedup_ref": record["metadata"].pop("dedup_ref"), **record["metadata"]}
        lines[number] = orjson.dumps(record)
    last = next(i for i in reversed(range(len(lines))) if i not in removed and i != survivor)
    record = orjson.loads(lines[last])
    record["metadata"] = {"dedup_ref": record["metadata"]["dedup_ref"], "size": record["metadata"]["size"]}
    lines[last] = orjson.dumps(record)
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast = filter_run(work, tmp_path / "fast", True)
    plain = filter_run(work, tmp_path / "plain", False)
    assert fast == plain
    assert fast["kept"]["00000.jsonl.gz"].count(b"\n") == len(lines) - len(removed)


def test_a_missing_index_takes_the_plain_path_and_a_wrong_one_raises(prepared_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(prepared_run, work)
    (work / "prepared" / index_name("00000.jsonl")).unlink()
    reader = PreparedReader(str(work / "prepared"))
    steps = build_stage_pipelines(config(tmp_path, tmp_path / "o", 1, True))["filter"]
    reader.copy_survivors(*steps[1:])
    assert not reader._fast_path_applies(["00000.jsonl"])
    assert filter_run(work, tmp_path / "fast", True) == filter_run(work, tmp_path / "plain", False)

    shutil.rmtree(work)
    shutil.copytree(prepared_run, work)
    index = work / "prepared" / index_name("00000.jsonl")
    np.save(index, np.load(index)[:-1])  # one line short: the files were not written together
    with pytest.raises(RuntimeError, match="more lines than its index"):
        filter_run(work, tmp_path / "short", True)
