"""Curation never loses, hides or mislabels data: faulty input files, reruns, empty results, nested folders, and
which copy of a near-duplicate cluster survives. Real files throughout (cut archives, invalid bytes, real reruns)."""

from __future__ import annotations

import gzip
import json
import sysconfig
import zlib
from pathlib import Path

import pytest
from documents import read_docs as read_records
from mini_benchmarks import write_mini_benchmarks

from datatrove_pipelines.code_files import main

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def benchmarks_dir(tmp_path_factory) -> Path:
    return write_mini_benchmarks(tmp_path_factory.mktemp("mini-benchmarks"))


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEED_CODER_CACHE_DIR", str(tmp_path / "cache"))  # the index cache, not the user's


def run_cli(argv: list[str], output: Path) -> dict:
    main([*argv, "--output", str(output), "--workers", "1"])
    return json.loads((output / "stats.json").read_text())


def code_record(number: int) -> dict:
    return {"repo_name": f"octo/r{number % 7}", "path": f"src/m{number}.py", "content": f"value_{number} = {number}\n"}


def test_every_jsonl_record_is_kept_or_excluded_with_its_reason_and_line(tmp_path, benchmarks_dir):
    """One invalid byte, a cut line, a non-object line, non-string content and a cut .jsonl.gz: each bad record is
    excluded in the read step with its file and line, every good record around them is kept."""
    lines = [json.dumps(code_record(number)).encode() for number in range(400)]
    bad = {
        50: (b'{"repo_name": "octo/x", "path": "a.py", "content": "caf\xe9 = 1"}', "invalid_utf8"),
        120: (b'{"repo_name": "octo/x", "path": "b.py", "content": "cut', "malformed_json"),
        200: (b"[1, 2, 3]", "not_an_object"),
        260: (json.dumps({"repo_name": "octo/x", "path": "c.py", "content": 12345}).encode(), "non_string_content"),
    }
    for number, (line, _) in bad.items():
        lines[number] = line
    (tmp_path / "plain.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    archive = gzip.compress(b"".join(json.dumps(code_record(1000 + n)).encode() + b"\n" for n in range(3000)))
    cut = archive[: len(archive) // 2]
    (tmp_path / "cut.jsonl.gz").write_bytes(cut)
    recoverable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    complete_lines = recoverable.count(b"\n")

    output = tmp_path / "out"
    argv = ["--input", str(tmp_path / "plain.jsonl"), str(tmp_path / "cut.jsonl.gz")]
    stats = run_cli([*argv, "--benchmarks", str(benchmarks_dir)], output)

    read = stats["steps"]["read"]
    assert read["docs_in"] == 400 + complete_lines + 1  # the cut record stands for what was lost after the cut
    assert {reason: counts["docs"] for reason, counts in read["reasons"].items()} == {
        "invalid_utf8": 1,
        "malformed_json": 1,
        "not_an_object": 1,
        "non_string_content": 1,
        "truncated_archive": 1,
    }
    excluded = read_records(output / "excluded" / "read")
    where = {(r["metadata"]["source_file"], r["metadata"]["line"]): r["metadata"]["filter_reason"] for r in excluded}
    expected = {("plain.jsonl", number + 1): reason for number, (_, reason) in bad.items()}
    expected[("cut.jsonl.gz", complete_lines + 1)] = "truncated_archive"
    assert where == expected
    kept = {record["id"] for record in read_records(output / "kept")}
    good = {f"octo/r{n % 7}/src/m{n}.py" for n in range(400) if n not in bad}
    good |= {f"octo/r{n % 7}/src/m{n}.py" for n in range(1000, 1000 + complete_lines)}
    assert kept == good
    assert stats["total"]["docs_in"] == stats["total"]["docs_kept"] + stats["total"]["docs_excluded"]


def test_a_parquet_file_that_cannot_be_read_is_an_exclusion(tmp_path, benchmarks_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([code_record(n) for n in range(50)]), tmp_path / "good.parquet")
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "numbers.parquet").write_bytes(b"")
    pq.write_table(pa.Table.from_pylist([{"path": "n.py", "content": 7}]), tmp_path / "numbers.parquet")
    argv = [
        "--input",
        str(tmp_path / "good.parquet"),
        str(tmp_path / "cut.parquet"),
        str(tmp_path / "numbers.parquet"),
    ]
    stats = run_cli([*argv, "--benchmarks", str(benchmarks_dir)], tmp_path / "out")
    reasons = {reason: counts["docs"] for reason, counts in stats["steps"]["read"]["reasons"].items()}
    assert reasons == {"unreadable_parquet": 1, "non_string_content": 1}
    assert stats["total"]["docs_kept"] == 50


def small_tree(root: Path, files: int = 3) -> Path:
    for number in range(files):
        target = root / "repo" / f"mod{number}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"def function_{number}(argument):\n    return argument * {number + 2}\n")
    return root


def test_reruns_resume_only_with_the_same_inputs_and_settings(tmp_path, benchmarks_dir, capsys):
    source = small_tree(tmp_path / "src")
    output = tmp_path / "out"
    argv = ["--input", str(source), "--benchmarks", str(benchmarks_dir), "--tasks", "2"]
    first = run_cli(argv, output)
    assert run_cli(argv, output) == first  # the same run resumes (here: everything was complete)

    def refused(extra: list[str]) -> str:
        with pytest.raises(SystemExit) as raised:
            run_cli([*argv, *extra], output)
        message = str(raised.value)
        assert "\n" not in message and message.startswith("error: ")
        return message

    (source / "repo" / "new.py").write_text("NEW_NAME = 'added after the first run'\n")
    assert "different inputs" in refused([]) and "--overwrite" in refused([])
    (source / "repo" / "new.py").unlink()
    assert "different settings" in refused(["--max-size-bytes", "5000"])
    tasks_message = refused(["--tasks", "3"])
    assert "task counts" in tasks_message and "--overwrite" in tasks_message and "same --tasks" in tasks_message
    assert json.loads((output / "stats.json").read_text()) == first  # nothing was touched by the refusals

    (source / "repo" / "new.py").write_text("NEW_NAME = 'added after the first run'\n")
    replaced = run_cli([*argv, "--overwrite", "--tasks", "3"], output)
    assert replaced["total"]["docs_in"] == first["total"]["docs_in"] + 1
    assert "repo/new.py" in {record["id"] for record in read_records(output / "kept")}


def test_an_output_folder_without_a_run_record_is_not_trusted(tmp_path, benchmarks_dir):
    source = small_tree(tmp_path / "src")
    (tmp_path / "out" / "kept").mkdir(parents=True)
    (tmp_path / "out" / "kept" / "00000.jsonl.gz").write_bytes(gzip.compress(b'{"text": "stale", "id": "old"}\n'))
    with pytest.raises(SystemExit, match="no record of its inputs.*--overwrite"):
        run_cli(["--input", str(source), "--benchmarks", str(benchmarks_dir)], tmp_path / "out")
    stats = run_cli(["--input", str(source), "--benchmarks", str(benchmarks_dir), "--overwrite"], tmp_path / "out")
    assert "old" not in {record["id"] for record in read_records(tmp_path / "out" / "kept")}
    assert stats["total"]["docs_kept"] == 3


def test_when_everything_is_excluded_the_run_finishes_with_stats(tmp_path, benchmarks_dir):
    repo = tmp_path / "src" / "repo"
    repo.mkdir(parents=True)
    for number in range(4):
        (repo / f"empty{number}.py").write_text("  \n")
    (repo / "notes.txt").write_text("not code\n")
    records = [{"content": "print(1)\n"}, {"content": "print(2)\n"}]  # no path: no language can be told
    (tmp_path / "nopath.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    stats = run_cli(
        ["--input", str(tmp_path / "src"), str(tmp_path / "nopath.jsonl"), "--benchmarks", str(benchmarks_dir)],
        tmp_path / "out",
    )
    assert stats["total"]["docs_in"] == 7 and stats["total"]["docs_kept"] == 0
    assert stats["total"]["docs_excluded"] == 7
    guard = stats["steps"]["guard"]["reasons"]
    assert guard["empty"]["docs"] == 4 and guard["unknown_language"]["docs"] == 3
    assert (tmp_path / "out" / "README.md").is_file()


def test_output_inside_the_input_and_input_inside_the_output_are_refused(tmp_path, benchmarks_dir):
    source = small_tree(tmp_path / "src")
    with pytest.raises(SystemExit, match="inside the input folder"):
        run_cli(["--input", str(source), "--benchmarks", str(benchmarks_dir)], source / "out")
    assert not (source / "out" / "kept").exists()
    inner = small_tree(tmp_path / "outer" / "src")
    with pytest.raises(SystemExit, match="is inside --output"):
        run_cli(["--input", str(inner), "--benchmarks", str(benchmarks_dir)], tmp_path / "outer")


def near_copy_families(root: Path) -> tuple[Path, dict[str, set[str]]]:
    """JSONL input: 5 stdlib modules, each in 4 near copies in 4 repositories (stars differ but in bisect's), plus
    singles."""
    modules = ["textwrap.py", "shlex.py", "fnmatch.py", "colorsys.py", "bisect.py"]
    records, families = [], {}
    for module in modules:
        text = (STDLIB / module).read_text()
        members = set()
        for copy in range(4):
            repo = f"fam/{'zzz' if copy == 3 else 'r' + str(copy)}"
            stars = 0 if module == "bisect.py" else (500 if copy == 3 else copy)
            records.append({"repo_name": repo, "path": module, "content": text + f"\n# copy {copy}\n", "stars": stars})
            members.add(f"{repo}/{module}")
        families[module] = members
    for module in ["heapq.py", "json/decoder.py", "glob.py"]:
        records.append({"repo_name": "single/one", "path": module, "content": (STDLIB / module).read_text()})
    path = root / "families.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path, families


def test_survivors_are_the_preferred_copies_whatever_the_task_count(tmp_path, benchmarks_dir):
    source, families = near_copy_families(tmp_path)
    kept_by_tasks = {}
    for tasks in (1, 4):
        output = tmp_path / f"out-{tasks}"
        run_cli(["--input", str(source), "--benchmarks", str(benchmarks_dir), "--tasks", str(tasks)], output)
        kept_by_tasks[tasks] = {record["id"] for record in read_records(output / "kept")}
    assert kept_by_tasks[1] == kept_by_tasks[4]
    kept = kept_by_tasks[1]
    for module, members in families.items():
        survivors = members & kept
        # the most starred copy (fam/zzz, whose id sorts last) wins; bisect's copies tie on stars: the smallest id
        expected = {f"fam/r0/{module}"} if module == "bisect.py" else {f"fam/zzz/{module}"}
        assert survivors == expected, module
    assert {"single/one/heapq.py", "single/one/json/decoder.py", "single/one/glob.py"} <= kept


def test_the_card_and_the_records_carry_no_machine_paths(tmp_path, benchmarks_dir, monkeypatch, capfd):
    source = small_tree(tmp_path / "work" / "src")
    monkeypatch.chdir(tmp_path / "work")
    main(["--input", str(source), "--output", str(tmp_path / "work" / "out"), "--benchmarks", str(benchmarks_dir)])
    printed = capfd.readouterr()
    assert "docs in" in printed.out and "[4/4]" in printed.out or "[3/3]" in printed.out  # progress and funnel
    assert "INFO" not in printed.err and "INFO" not in printed.out  # the library logs went to the log files
    assert (
        "Launching pipeline"
        in (tmp_path / "work" / "out" / "logs" / "prepare" / "logs" / "task_00000.log").read_text()
    )
    card = (tmp_path / "work" / "out" / "README.md").read_text()
    assert str(tmp_path) not in card
    assert "--input src --output out --benchmarks" in card  # relative to the working directory, or the name alone
    for record in read_records(tmp_path / "work" / "out" / "kept"):
        assert "file_path" not in record["metadata"]
        assert str(tmp_path) not in json.dumps(record)


def test_verbose_shows_the_library_logs(tmp_path, benchmarks_dir, capfd):
    source = small_tree(tmp_path / "src", files=1)
    main(
        ["--input", str(source), "--output", str(tmp_path / "out"), "--benchmarks", str(benchmarks_dir)]
        + ["--workers", "1", "--verbose"]
    )
    assert "Launching pipeline" in capfd.readouterr().err


def plain_read(file_path: str, max_size_bytes: int) -> tuple[bytes | None, int, str | None]:
    """read_source_file's reference: stat, then one read up to the limit."""
    import os

    size = os.stat(file_path).st_size
    if size > max_size_bytes:
        return None, size, "too_large"
    with open(file_path, "rb") as handle:
        raw = handle.read(max_size_bytes + 1)
    return (None, len(raw), "too_large") if len(raw) > max_size_bytes else (raw, len(raw), None)


def test_source_files_are_read_as_one_read_up_to_the_limit_reads_them(tmp_path, monkeypatch):
    """read_source_file reads the size stat gave (+1): the same content, size and issue as one read up to the
    limit, also for a file that grows after stat (to under and over the limit) and one stat says is empty."""
    from datatrove_pipelines import code_readers
    from datatrove_pipelines.code_readers import read_source_file

    limit = 100
    for size in (0, 1, 50, 99, 100, 101, 5000):
        path = tmp_path / f"f{size}"
        path.write_bytes(bytes(range(256))[:1] * size)
        assert read_source_file(str(path), limit) == plain_read(str(path), limit), size
    real_stat = code_readers.os.stat
    for before, after in ((10, 60), (10, 100), (10, 101), (10, 500), (0, 30)):
        path = tmp_path / f"grows{before}-{after}"
        path.write_bytes(b"a" * before)

        def stat_then_grow(file_path, *args, path=path, after=after, **kwargs):
            result = real_stat(file_path, *args, **kwargs)
            if str(file_path) == str(path):
                path.write_bytes(b"b" * after)  # written between the stat and the read
            return result

        monkeypatch.setattr(code_readers.os, "stat", stat_then_grow)
        raw, size, issue = read_source_file(str(path), limit)
        monkeypatch.setattr(code_readers.os, "stat", real_stat)
        expected = (None, limit + 1, "too_large") if after > limit else (b"b" * after, after, None)
        assert (raw, size, issue) == expected, (before, after)
