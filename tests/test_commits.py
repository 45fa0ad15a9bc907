"""End-to-end: the commit stage on git repositories built here and on this project's own history.

Each planted commit must be kept or excluded by the right step with the right reason; the related files of a bug fix
must include the module that imports the fixed one; for every kept commit, ``git apply`` of the serialized target
on the parent snapshot must give exactly the child's tree (git itself is the reference: ``write-tree``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from documents import read_docs as read_jsonl_dir

from datatrove_pipelines.commits.pipeline import CommitsConfig, parse_args, run_commits
from datatrove_pipelines.commits.serialize import parse_target
from datatrove_pipelines.decontamination import DecontaminationConfig
from datatrove_pipelines.executors import ExecutorConfig
from eval.benchmarks import load_benchmark

REPO_ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
BOT = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com")
HUMAN = ("Ada Lovelace", "ada@example.org")


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=True)
    return result.stdout


class GitRepo:
    """A real repository written commit by commit, with fixed dates (one day apart) and chosen authors."""

    def __init__(self, path: Path):
        self.path = path
        self.day = 0
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")

    def write(self, relative: str, content: str | bytes) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)

    def commit(self, message: str, author: tuple[str, str] = HUMAN) -> str:
        self.day += 1
        date = f"2024-01-01T00:00:00Z +{self.day}d"
        date = f"{1704067200 + self.day * 86400} +0000"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0],
            "GIT_COMMITTER_EMAIL": author[1],
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, env=env)
        return git(self.path, "rev-parse", "HEAD").strip()

    def run(self, *args: str) -> str:
        date = f"{1704067200 + self.day * 86400} +0000"
        env = {**os.environ, "GIT_AUTHOR_NAME": HUMAN[0], "GIT_AUTHOR_EMAIL": HUMAN[1]}
        env.update(GIT_COMMITTER_NAME=HUMAN[0], GIT_COMMITTER_EMAIL=HUMAN[1])
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        return git(self.path, *args, env=env)


PARSER = '''"""Parsing of message headers."""


def parse_header(buffer: bytes) -> dict:
    """Split ``Name: value`` lines up to the blank line."""
    fields = {}
    end = buffer.find(b"\\r\\n\\r\\n")
    for line in buffer[: end - 1].split(b"\\r\\n"):
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return fields
'''
APP = '''"""The command-line entry point."""

import sys

from src.parser import parse_header


def main() -> int:
    fields = parse_header(sys.stdin.buffer.read())
    for name, value in fields.items():
        print(name.decode(), value.decode())
    return 0
'''
COLORS = '''"""Terminal colours."""

RED = "\\033[31m"
GREEN = "\\033[32m"


def paint(text: str, colour: str) -> str:
    return f"{colour}{text}\\033[0m"
'''
UTILS = '''"""Small helpers."""


def chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]
'''


def build_synthetic(root: Path, benchmarks_dir: Path | None) -> tuple[GitRepo, dict[str, str]]:
    """The planted history; returns the repo and {message: expected outcome} ("kept" or "<step>:<reason>")."""
    repo = GitRepo(root)
    expected: dict[str, str] = {}

    def commit(message: str, outcome: str, author=HUMAN) -> str:
        expected[message] = outcome
        return repo.commit(message, author)

    repo.write("README.md", "# headers\n\nA tiny HTTP header parser with a command line.\n")
    repo.write("src/__init__.py", "")
    repo.write("src/parser.py", PARSER)
    repo.write("src/app.py", APP)
    repo.write("src/colors.py", COLORS)
    repo.write("src/utils.py", UTILS)
    for name in ("textwrap.py", "colorsys.py", "bisect.py", "fnmatch.py", "heapq.py"):
        repo.write(f"vendor_free/{name}", (STDLIB / name).read_text())
    commit("Initial import of the header parser", "commit_filter:root_commit")
    repo.write("src/parser.py", PARSER.replace("buffer[: end - 1]", "buffer[:end]"))
    commit("Fix off-by-one in parse_header: the last header line was cut", "kept")
    # a branch and its merge
    repo.run("checkout", "-q", "-b", "feature")
    repo.write("src/colors.py", COLORS + '\nBLUE = "\\033[34m"\n')
    commit("Add a blue colour to the terminal palette", "kept")
    repo.run("checkout", "-q", "main")
    repo.write("README.md", "# headers\n\nA tiny HTTP header parser with a command line.\n\nUsage: app < request\n")
    commit("Document the command-line usage in the README", "kept")
    repo.day += 1
    repo.run("merge", "-q", "--no-ff", "-m", "Merge branch 'feature' into main", "feature")
    expected["Merge branch 'feature' into main"] = "commit_filter:merge_commit"
    repo.write("docs/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    commit("Add the project logo to the documentation", "commit_filter:binary_file")
    repo.write("requirements.txt", "requests==2.31.0\n")
    commit("Bump requests from 2.30.0 to 2.31.0", "commit_filter:bot_author", author=BOT)
    repo.run("mv", "src/utils.py", "src/helpers.py")
    commit("Rename the utils module to helpers", "kept")
    for i in range(500):
        repo.write(f"tests/fixtures/case_{i:03d}.txt", f"Host: example{i}.org\r\nAccept: */*\r\n\r\n")
    commit("Add request fixtures for the parser tests", "commit_filter:huge_commit")
    repo.write("src/helpers.py", UTILS + "\n\ndef first(items):\n    return next(iter(items), None)\n")
    commit("update", "commit_filter:trivial_message")
    repo.write("package-lock.json", '{"lockfileVersion": 3}\n')
    commit("Pin the JavaScript toolchain for the docs site", "commit_filter:lock_file")
    commit("Trigger a rebuild of the documentation site", "commit_filter:empty_change")
    repo.write("src/app.py", APP.replace("return 0", "return 0 if fields else 1"))
    commit("Exit with status 1 when the request has no headers", "kept")
    if benchmarks_dir is not None:  # last: later examples would show this file as context, contaminated too
        problem = load_benchmark("humaneval", benchmarks_dir)[2]
        repo.write("src/solutions.py", f"import math\n\n{problem.prompt}{problem.canonical_solution}\n")
        commit("Add a helper for truncating floating point numbers", "decontamination:benchmark:humaneval")
    return repo, expected


def outcomes(out: Path) -> dict[str, list[str]]:
    """Commit sha -> list of outcomes ("kept" or "<step>:<reason>") over the output folder."""
    found: dict[str, list[str]] = {}
    for record in read_jsonl_dir(out / "kept"):
        found.setdefault(record["metadata"]["commit"], []).append("kept")
    for step in sorted(os.listdir(out / "excluded")) if (out / "excluded").is_dir() else []:
        for record in read_jsonl_dir(out / "excluded" / step):
            meta = record["metadata"]
            found.setdefault(meta["commit"], []).append(f"{step}:{meta['filter_reason']}")
    return found


def check_funnel_matches_files(out: Path) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    total = stats["total"]
    assert total["docs_in"] == total["docs_kept"] + total["docs_excluded"]
    assert total["docs_kept"] == len(read_jsonl_dir(out / "kept"))
    for step, entry in stats["steps"].items():
        written = read_jsonl_dir(out / "excluded" / step) if (out / "excluded" / step).is_dir() else []
        assert entry["docs_excluded"] == len(written), step
    return stats


def assert_targets_reproduce_children(repo_path: Path, kept: list[dict], scratch: Path) -> None:
    """For each kept example: check out its parent, ``git apply --index`` the target, compare trees with the child."""
    git(repo_path.parent, "clone", "-q", "--no-checkout", str(repo_path), str(scratch))
    for record in kept:
        meta = record["metadata"]
        changed, diff = parse_target(record["text"])
        assert changed and diff.startswith("diff --git ")
        git(scratch, "checkout", "-q", "-f", "--detach", meta["parent"])
        git(scratch, "clean", "-q", "-fdx")
        subprocess.run(["git", "apply", "--index", "-"], cwd=scratch, input=diff.encode(), check=True)
        tree = git(scratch, "write-tree").strip()
        assert tree == git(scratch, "rev-parse", f"{meta['commit']}^{{tree}}").strip(), meta["commit"]
        # the changed paths agree with git's own account of the commit
        names = git(
            scratch, "diff-tree", "-r", "-M", "--name-status", "--no-commit-id", meta["parent"], meta["commit"]
        )
        expected_paths = {part for line in names.splitlines() for part in line.split("\t")[1:]}
        assert set(meta["changed_paths"]) == expected_paths


# two tasks: the repositories are shared among them and the duplicates are found across tasks (spawned workers
# import the whole stack: ~30 s here)
@pytest.mark.parametrize("tasks", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_planted_history_kept_and_excluded_with_reasons(tmp_path, benchmarks_dir, tasks):
    repo, expected = build_synthetic(tmp_path / "repos" / "headers", benchmarks_dir)
    # a clone in the same folder of clones: every commit of it is an exact duplicate of the original's
    git(tmp_path, "clone", "-q", str(repo.path), str(tmp_path / "repos" / "headers-fork"))
    out = tmp_path / "out"
    config = CommitsConfig(
        repos=[str(tmp_path / "repos")],
        output_dir=str(out),
        decontamination=DecontaminationConfig(benchmarks_dir=str(benchmarks_dir)),
        executor=ExecutorConfig(tasks=tasks),
    )
    stats = run_commits(config)
    assert stats is not None
    check_funnel_matches_files(out)
    messages = {
        sha: message.strip()
        for sha, message in (
            line.split("\0", 1)
            for line in git(repo.path, "log", "--format=%H%x00%B%x01").split("\x01")
            if line.strip()
        )
    }
    messages = {sha.strip(): message for sha, message in messages.items()}
    found = outcomes(out)
    assert set(found) == set(messages)
    for sha, message in messages.items():
        outcome = expected[message]
        if outcome == "kept" or outcome.startswith("decontamination:"):  # after dedup: one copy is a duplicate
            assert sorted(found[sha]) == sorted(["exact_dedup:exact_duplicate", outcome]), message
        else:
            assert found[sha] == [outcome, outcome], message
    kept = read_jsonl_dir(out / "kept")
    assert len(kept) == sum(outcome == "kept" for outcome in expected.values())
    by_message = {parse_message(record["text"]): record for record in kept}
    fix = by_message["Fix off-by-one in parse_header: the last header line was cut"]
    assert fix["metadata"]["changed_paths"] == ["src/parser.py"]
    assert "src/app.py" in fix["metadata"]["related_paths"]  # the importer of the fixed function
    assert "src/parser.py" not in fix["metadata"]["related_paths"]  # never the changed file itself
    assert f'<related_file path="src/app.py">\n{APP}' in fix["text"]
    assert '<readme path="README.md">\n# headers\n' in fix["text"]
    rename = by_message["Rename the utils module to helpers"]
    assert parse_target(rename["text"])[0] == ["R src/utils.py -> src/helpers.py"]
    assert set(rename["metadata"]["changed_paths"]) == {"src/utils.py", "src/helpers.py"}
    assert_targets_reproduce_children(repo.path, kept, tmp_path / "scratch")
    # repositories: both read, reported one record each
    repositories = read_jsonl_dir(out / "repositories")
    assert sorted((r["id"], r["metadata"]["status"]) for r in repositories) == [
        ("headers", "read"),
        ("headers-fork", "read"),
    ]
    assert stats["steps"]["commit_filter"]["notes"]["repository_kept"]["docs"] == 2
    card = (out / "README.md").read_text()
    assert "Commit examples" in card and "commit_filter" in card


def parse_message(text: str) -> str:
    start = text.index("<commit_message>\n") + len("<commit_message>\n")
    return text[start : text.index("\n</commit_message>\n")]


def make_corrupt_repository(path: Path) -> tuple[GitRepo, str]:
    """Three commits; the blob the second one writes is overwritten with garbage (git log -p dies on it)."""
    repo = GitRepo(path)
    repo.write("README.md", "# corrupt\n\nA repository with a broken object.\n")
    repo.write("notes/a.txt", "first version of the notes\n")
    repo.write("notes/b.txt", "other notes that stay readable\n")
    repo.commit("Start the notes collection")
    repo.write("notes/a.txt", "second version of the notes, soon unreadable\n")
    broken = repo.commit("Rewrite the first note with more detail")
    repo.write("notes/b.txt", "other notes, edited later\n")
    repo.commit("Edit the second note after the review")
    blob = git(path, "rev-parse", f"{broken}:notes/a.txt").strip()
    loose = path / ".git" / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(b"this is not a zlib stream")
    return repo, broken


def test_bad_inputs_are_counted_and_the_run_goes_on(tmp_path):
    repos = tmp_path / "repos"
    good = GitRepo(repos / "good")
    good.write("README.md", "# good\n")
    good.write("main.py", "print('hello')\n")
    good.commit("Start the greeting program")
    good.write("main.py", "print('hello, world')\n")
    good_sha = good.commit("Greet the whole world instead of nobody")
    (repos / "plain-folder").mkdir()
    (repos / "plain-folder" / "notes.txt").write_text("not a repository\n")
    git(repos, "init", "-q", "empty")
    git(repos, "clone", "-q", "--depth", "1", f"file://{good.path}", "shallow")
    corrupt, broken = make_corrupt_repository(repos / "corrupt")
    missing = tmp_path / "does-not-exist"
    out = tmp_path / "out"
    config = CommitsConfig(repos=[str(repos), str(missing)], output_dir=str(out), decontaminate=False)
    stats = run_commits(config)
    check_funnel_matches_files(out)
    notes = stats["steps"]["commit_filter"]["notes"]
    assert notes["repository_excluded/not_a_git_repository"]["docs"] == 2  # the plain folder and the missing path
    assert notes["repository_excluded/empty_repository"]["docs"] == 1
    assert notes["repository_excluded/shallow_clone"]["docs"] == 1
    assert notes["repository_kept"]["docs"] == 2  # good and corrupt
    found = outcomes(out)
    assert found[broken] == ["commit_filter:unreadable_object"]
    assert found[good_sha] == ["kept"]
    later = git(corrupt.path, "rev-parse", "HEAD").strip()
    assert found[later] == ["kept"]  # the history goes on after the corrupt commit
    records = {r["id"]: r["metadata"] for r in read_jsonl_dir(out / "repositories")}
    assert records["plain-folder"]["reason"] == "not_a_git_repository"
    assert records["empty"]["reason"] == "empty_repository"
    assert records["shallow"]["reason"] == "shallow_clone"
    assert records["corrupt"]["status"] == "read" and "unable to read" in records["corrupt"]["error"]


def test_repository_selection_by_criteria_and_metadata(tmp_path):
    repos = tmp_path / "repos"
    for name, commits in (("popular", 4), ("young", 2), ("obscure", 4)):
        repo = GitRepo(repos / name)
        for i in range(commits):
            repo.write("main.py", f"VALUE = {i}\n")
            repo.commit(f"Set the value to {i} for the next release")
    metadata = tmp_path / "repos.csv"
    metadata.write_text("repo,stars,forks\npopular,250,40\nyoung,500,90\nobscure,3,0\n")
    out = tmp_path / "out"
    config = parse_args(
        ["--repo", str(repos), "--output", str(out), "--no-decontamination", "--min-commits", "3"]
        + ["--min-active-days", "2", "--min-stars", "100", "--min-forks", "10", "--repo-metadata", str(metadata)]
    )
    stats = run_commits(config)
    notes = stats["steps"]["commit_filter"]["notes"]
    assert notes["repository_excluded/too_few_commits"]["docs"] == 1
    assert notes["repository_excluded/too_few_stars"]["docs"] == 1
    assert notes["repository_kept"]["docs"] == 1
    assert stats["total"]["docs_in"] == 4  # only the popular repository's commits were read
    assert {r["metadata"]["repo"] for r in read_jsonl_dir(out / "kept")} == {"popular"}


def test_cli_usage_errors_are_one_line(tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "datatrove_pipelines.commits", "--output", "o"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--repo" in result.stderr.splitlines()[-1]
    for args, message in (
        (["--repo", "x", "--output", "o", "--min-stars", "5"], "--repo-metadata"),
        (["--repo", "x", "--output", "o", "--repo-metadata", str(tmp_path / "nope.csv")], "no such file"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(args)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err.splitlines()[-1]


def test_recipe_config_parses():
    config = parse_args(["--config", str(REPO_ROOT / "recipes/tiny/commits.yaml"), "--output", "elsewhere"])
    assert config.output_dir == "elsewhere" and config.repos


def test_project_history_targets_apply_to_parents(tmp_path):
    """This project's own history: every commit accounted for, and every kept target reproduces its child."""
    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(REPO_ROOT), str(clone))
    out = tmp_path / "out"
    stats = run_commits(CommitsConfig(repos=[str(clone)], output_dir=str(out), decontaminate=False))
    check_funnel_matches_files(out)
    assert stats["total"]["docs_in"] == int(git(clone, "rev-list", "--count", "HEAD"))
    kept = read_jsonl_dir(out / "kept")
    assert len(kept) >= stats["total"]["docs_in"] // 2
    for record in kept:
        assert record["metadata"]["token_estimate"] <= 8192
    # every commit has one outcome, and the size rules agree with git's own account of each commit
    found = outcomes(out)
    assert set(found) == set(git(clone, "rev-list", "HEAD").split())
    assert all(len(values) == 1 for values in found.values())
    log = git(clone, "log", "-M", "--format=%x01%H %P", "--name-only")
    for entry in filter(None, log.split("\x01")):
        header, *names = entry.strip("\n").split("\n")
        sha, *parents = header.split()
        files = [name for name in names if name]
        outcome = found[sha][0]
        if not parents:
            assert outcome == "commit_filter:root_commit"
        elif len(files) > 50:
            assert outcome.startswith("commit_filter:"), (sha, outcome)
        if outcome == "kept":
            patch = subprocess.run(["git", "show", "-M", "--format=", sha], cwd=clone, capture_output=True).stdout
            assert len(files) <= 50 and len(patch) <= 24_000 + 2_000, sha  # index lines aside, within the limit
    assert_targets_reproduce_children(clone, kept, tmp_path / "scratch")


def test_a_run_where_every_repository_is_excluded_finishes(tmp_path):
    (tmp_path / "plain").mkdir()
    out = tmp_path / "out"
    stats = run_commits(CommitsConfig(repos=[str(tmp_path / "plain")], output_dir=str(out), decontaminate=False))
    assert stats["total"]["docs_in"] == 0
    assert stats["steps"]["commit_filter"]["notes"]["repository_excluded/not_a_git_repository"]["docs"] == 1
    assert read_jsonl_dir(out / "kept") == []
