"""Throughput of the commit reader (git log + filters + context + serialization) vs. ``git log -p`` of the same history.

    python benchmarks/commits.py [--commits 1200] [--files 250] [--repeats 5] [--full]

The repository is built here with ``git fast-import`` from real files (this Python's standard library): an initial
import of ``--files`` modules of 2-60 KB (this Python 3.11 has 135: the history starts with those and has none left
to add), then ``--commits`` commits that each edit a module (a block of lines replaced with real lines of another
module, lines deleted, a function appended), add a module, or rename one, with ordinary messages.
``git log -p HEAD > /dev/null`` (rename detection on, as ``git log -p`` does by default) is the floor any git-based
reader pays; the measured side runs the stage's reading steps in this process (CommitReader → CommitFilter →
CommitContext: the streamed ``git log -p --raw``, parent snapshots through ``cat-file --batch``, README, tree, top-5
bm25s related files, serialization), consuming every document, with datatrove's executor and writers left out.

Baseline and reader alternate ``--repeats`` times (the machine is shared and noisy) and the medians are compared:
ratio = reader commits/s / ``git log -p`` commits/s; target >= 0.3. ``--full`` also times one whole stage run
(three datatrove runs, dedup, decontamination, writers) for information.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datatrove_pipelines.commits.context import CommitContext, ContextConfig  # noqa: E402
from datatrove_pipelines.commits.filters import CommitFilter  # noqa: E402
from datatrove_pipelines.commits.reader import CommitReader  # noqa: E402

DEF = re.compile(r"^def (\w+)", re.MULTILINE)
VERBS = ("Refactor", "Simplify", "Fix handling of", "Speed up", "Document", "Clean up", "Handle errors in")


def real_modules(limit: int) -> list[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    modules = []
    for path in sorted(stdlib.glob("*.py")):
        size = path.stat().st_size
        if 2_000 <= size <= 60_000:
            try:
                modules.append((path.name, path.read_text()))
            except UnicodeDecodeError:
                continue
    return modules[:limit]


def build_repository(path: Path, commits: int, files: int, seed: int = 0) -> int:
    """A repository of 1 + ``commits`` commits from real modules, written with one ``git fast-import``."""
    rng = random.Random(seed)
    modules = real_modules(files * 2)
    initial, spare = modules[:files], modules[files:]
    tree: dict[str, str] = {f"lib/{name}": text for name, text in initial}
    tree["README.md"] = "# stdlib-history\n\nA history built from real standard-library modules for benchmarks.\n"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    stream: list[bytes] = []

    def data(text: str) -> None:
        raw = text.encode()
        stream.append(b"data %d\n" % len(raw) + raw + b"\n")

    def commit(number: int, message: str, operations: list[bytes]) -> None:
        stream.append(b"commit refs/heads/main\nmark :%d\n" % (number + 1))
        when = 1_600_000_000 + number * 3600
        stream.append(
            b"author Dev <dev@example.org> %d +0000\ncommitter Dev <dev@example.org> %d +0000\n" % (when, when)
        )
        data(message)
        if number:
            stream.append(b"from :%d\n" % number)
        stream.extend(operations)

    def modify(path_: str, text: str) -> bytes:
        raw = text.encode()
        return b"M 100644 inline %s\ndata %d\n" % (path_.encode(), len(raw)) + raw + b"\n"

    commit(0, "Import the first modules", [modify(p, t) for p, t in tree.items()])
    for number in range(1, commits + 1):
        choice = rng.random()
        paths = sorted(p for p in tree if p.startswith("lib/"))
        target = rng.choice(paths)
        lines = tree[target].splitlines(keepends=True)
        names = DEF.findall(tree[target]) or [Path(target).stem]
        subject = f"{rng.choice(VERBS)} {rng.choice(names)} in {Path(target).stem}"
        if choice < 0.05 and spare:
            name, text = spare.pop()
            tree[f"lib/{name}"] = text
            commit(number, f"Add the {Path(name).stem} module", [modify(f"lib/{name}", text)])
            continue
        if choice < 0.08:
            new = f"lib/legacy/{Path(target).name}"
            if new not in tree:
                tree[new] = tree.pop(target)
                commit(
                    number,
                    f"Move {Path(target).stem} to the legacy package",
                    [b"R %s %s\n" % (target.encode(), new.encode())],
                )
                continue
        start = rng.randrange(max(len(lines) - 40, 1))
        if choice < 0.6:
            donor = rng.choice(initial)[1].splitlines(keepends=True)
            at = rng.randrange(max(len(donor) - 30, 1))
            lines[start : start + rng.randint(1, 12)] = donor[at : at + rng.randint(2, 20)]
        elif choice < 0.8:
            del lines[start : start + rng.randint(1, 8)]
        else:
            lines.append(f"\n\ndef helper_{number}(value):\n    return {rng.choice(names)}(value)\n")
        tree[target] = "".join(lines)
        commit(number, f"{subject}\n\nKeeps the behaviour the tests rely on.\n", [modify(target, tree[target])])
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=path, check=True)
    return commits + 1


def time_git_log(repo: Path) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["git", "-C", str(repo), "log", "-p", "HEAD"], stdout=null, check=True)
    return time.perf_counter() - start


def time_reader(repo: Path) -> tuple[float, int, int]:
    """Seconds, documents in, examples out of the reading steps."""
    reader = CommitReader([str(repo)])
    commit_filter = CommitFilter()
    context = CommitContext(ContextConfig())
    start = time.perf_counter()
    documents = 0
    examples = 0

    def counting(stream):
        nonlocal documents
        for doc in stream:
            documents += 1
            yield doc

    for _ in context.run(commit_filter.run(counting(reader.run())), 0, 1):
        examples += 1
    return time.perf_counter() - start, documents, examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1200)
    parser.add_argument("--files", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="also time one whole stage run")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "stdlib-history"
        started = time.perf_counter()
        total = build_repository(repo, args.commits, args.files)
        first_files = len(real_modules(args.files * 2)[: args.files])  # fewer where the stdlib has fewer modules
        print(f"built {total} commits from {first_files} modules in {time.perf_counter() - started:.1f} s")
        git_times, reader_times = [], []
        for repeat in range(args.repeats):
            git_times.append(time_git_log(repo))
            seconds, documents, examples = time_reader(repo)
            reader_times.append(seconds)
            assert documents == total, (documents, total)
            print(
                f"run {repeat + 1}: git log -p {git_times[-1]:.2f} s ({total / git_times[-1]:.0f} commits/s), "
                f"reader {seconds:.2f} s ({total / seconds:.0f} commits/s, {examples} examples), "
                f"ratio {git_times[-1] / seconds:.2f}"
            )
        git_median, reader_median = statistics.median(git_times), statistics.median(reader_times)
        print(
            f"median: git log -p {total / git_median:.0f} commits/s, reader {total / reader_median:.0f} commits/s, "
            f"ratio {git_median / reader_median:.2f} (target >= 0.3)"
        )
        if args.full:
            from datatrove_pipelines.commits.pipeline import CommitsConfig, run_commits

            started = time.perf_counter()
            run_commits(CommitsConfig(repos=[str(repo)], output_dir=str(Path(tmp) / "out")))
            seconds = time.perf_counter() - started
            print(
                f"whole stage (3 runs, dedup, decontamination, writers): {seconds:.1f} s, {total / seconds:.0f} commits/s"
            )


if __name__ == "__main__":
    main()
