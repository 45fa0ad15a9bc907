"""The commit stage's parts against their references: tokens (plain Python spec vs numpy), the bm25s index built from
counts (vs bm25s's own ``index`` and the plain formula), the reused snapshot index, the serialization and its budget,
the filters, and the git stream (vs git's own plumbing)."""

from __future__ import annotations

import os
import subprocess
import sysconfig
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest
from commit_documents import commit_documents

from datatrove_pipelines.commits.filters import CommitFilter, CommitFilterConfig, PathRules, patch_flags
from datatrove_pipelines.commits.git import ObjectReader, discover_repositories, stream_commits
from datatrove_pipelines.commits.related import (
    CountsBM25,
    SnapshotIndex,
    code_token_hashes,
    code_tokens,
    near_top,
    near_top_plain,
    postings_order,
    reference_bm25_scores,
    reference_token_hash,
    token_counts,
    token_hashes_of_many,
)
from datatrove_pipelines.commits.serialize import (
    BudgetConfig,
    CommitExample,
    parse_target,
    render_tree,
    serialize,
    target_diff,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ["textwrap.py", "heapq.py", "bisect.py", "colorsys.py", "fnmatch.py", "shlex.py", "json/decoder.py"]


def stdlib_texts() -> list[str]:
    return [(STDLIB / name).read_text() for name in MODULES]


# --------------------------------------------------------------------------------------------------------------------
# tokens


def test_code_tokens_split_identifiers():
    assert code_tokens("parseHeader HTTPServer snake_case_name x utf8Decode A1b") == [
        "parse", "header", "http", "server", "snake", "case", "name", "utf8", "decode", "a1b",
    ]  # fmt: skip
    assert code_tokens("the path of a file in src/app.py") == ["path", "file", "src", "app", "py"]
    assert code_tokens("") == [] and code_tokens("__ ++ é €") == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "getHTTPResponseCode XMLHttpRequest __init__ a_b_c 12ab34 ABC",
        "naïve café: résuméParser über_Fast 日本語Name",
        "line1\nline2\r\n\ttabbed\x00null",
        "A" * 40 + "b" + "Z" * 3,
    ],
)
def test_code_token_hashes_match_the_spec(text):
    expected = [reference_token_hash(token) for token in code_tokens(text)]
    assert code_token_hashes(text).tolist() == expected


def test_code_token_hashes_match_the_spec_on_random_texts():
    """Random texts over an alphabet that makes every boundary case frequent: case changes, digits, runs of
    capitals, stop words, one-letter tokens, non-ASCII letters, separators at both ends."""
    rng = np.random.default_rng(7)
    pieces = ["a", "B", "ab", "AB", "Ab", "aB", "HTTP", "Server", "x1", "9", "_", " ", "\n", "é", "日", "the", "If"]
    pieces += ["IS", "for", "their", "theirs", "into", "intoX", "-", "..", "\x00"]
    for _ in range(400):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 14))).tolist())
        expected = [reference_token_hash(token) for token in code_tokens(text)]
        assert code_token_hashes(text).tolist() == expected, text


def test_every_stop_word_and_no_near_miss_is_dropped():
    """The stop-word table (indexed by a hash's low bits): each stop word, in any case, is dropped; words one letter
    off, longer or shorter are kept."""
    from datatrove_pipelines.commits.related import STOPWORDS

    near = [word + "s" for word in STOPWORDS] + [word[:-1] + "q" for word in STOPWORDS] + ["thes", "wit", "ito"]
    text = " ".join(STOPWORDS + [word.upper() for word in STOPWORDS] + near)
    expected = [reference_token_hash(token) for token in code_tokens(text)]
    assert code_token_hashes(text).tolist() == expected
    assert len(expected) == len([word for word in near if len(word) > 1 and word not in STOPWORDS])


def test_code_token_hashes_match_the_spec_on_real_files():
    for text in stdlib_texts():
        expected = [reference_token_hash(token) for token in code_tokens(text)]
        assert code_token_hashes(text).tolist() == expected


# --------------------------------------------------------------------------------------------------------------------
# BM25


def test_counts_bm25_equals_bm25s_index_and_the_formula():
    texts = stdlib_texts()
    docs = [token_counts(text) for text in texts]
    counted = CountsBM25()
    vocabulary = counted.index_counts(docs)
    plain = bm25s.BM25(method="lucene")
    token_lists = [[str(h) for h in code_token_hashes(text).tolist()] for text in texts]
    plain.index(token_lists, show_progress=False)
    query_hashes = np.unique(code_token_hashes("decode json strings and wrap text into heap queue"))
    ours = counted.get_scores_from_ids(counted.query_ids(query_hashes).tolist())
    theirs = plain.get_scores([str(h) for h in query_hashes.tolist() if str(h) in plain.vocab_dict])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    reference = reference_bm25_scores(query_hashes.tolist(), [Counter(code_token_hashes(t).tolist()) for t in texts])
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
    assert len(vocabulary) == len([token for token in plain.vocab_dict if token])  # bm25s adds an empty token
    # a document scored from outside the index with the index's statistics gets the index's own score
    for position, doc in enumerate(docs):
        assert counted.score_outside(query_hashes, doc) == pytest.approx(float(ours[position]), rel=1e-5)


def test_postings_order_equals_a_stable_argsort():
    """The index's sort (unstable, on hash bits over positions, checked) against numpy's stable argsort: real token
    hashes of several files, many equal hashes, and different hashes that share their high bits (the fallback)."""
    real = np.concatenate([token_counts(text)[0] for text in stdlib_texts()])
    rng = np.random.default_rng(0)
    few = rng.choice(real[:50], size=5000)  # each hash many times
    shared_high = np.array([7 << 40, 5, (7 << 40) | 3, 9, (7 << 40) | 1, 5], dtype=np.uint64)  # out of order below
    for hashes in (real, few, shared_high, shared_high[::-1].copy(), real[:1], real[:0], np.sort(real), real[::-1]):
        assert postings_order(hashes).tolist() == np.argsort(hashes, kind="stable").tolist()


def test_snapshot_index_reuse_masks_stale_files_and_scores_fresh_ones():
    texts = dict(zip(MODULES, stdlib_texts(), strict=True))
    snapshot = {path: f"blob-{i}" for i, path in enumerate(texts)}
    tokens = {path: token_counts(f"{path}\n{text}") for path, text in texts.items()}
    index = SnapshotIndex(snapshot, tokens)
    query = np.unique(code_token_hashes("Fix the heap push when the heap is empty"))
    top = index.top(query, snapshot, lambda path, blob: tokens[path], set(), 3)
    assert top[0][0] == "heapq.py"
    # later snapshot: heapq.py deleted, bisect.py rewritten to talk about heaps; textwrap.py is "changed" (excluded)
    later = {path: blob for path, blob in snapshot.items() if path != "heapq.py"}
    later["bisect.py"] = "blob-new"
    rewritten = token_counts("bisect.py\n" + texts["heapq.py"])

    def tokens_for(path, blob):
        return rewritten if blob == "blob-new" else tokens[path]

    top = index.top(query, later, tokens_for, {"textwrap.py"}, 5)
    paths = [path for path, _ in top]
    assert paths[0] == "bisect.py" and "heapq.py" not in paths and "textwrap.py" not in paths
    assert top[0][1] == pytest.approx(index.bm25.score_outside(query, rewritten))
    assert index.drift(later) == 3  # heapq gone, bisect's old and new pairs


def test_top_many_equals_top_commit_by_commit():
    """The batched scoring (one sparse product for the indexed files, one for the fresh ones) gives ``top``'s
    results, scores included, for several commits at once: stale, fresh, excluded, empty and unknown queries."""
    texts = dict(zip(MODULES, stdlib_texts(), strict=True))
    snapshot = {path: f"blob-{i}" for i, path in enumerate(texts)}
    tokens = {(path, blob): token_counts(f"{path}\n{texts[path]}") for path, blob in snapshot.items()}
    index = SnapshotIndex(snapshot, {path: tokens[(path, blob)] for path, blob in snapshot.items()})
    rewritten = dict(snapshot, **{"bisect.py": "blob-heap", "added.py": "blob-added"})
    del rewritten["heapq.py"]
    tokens[("bisect.py", "blob-heap")] = token_counts("bisect.py\n" + texts["heapq.py"])
    tokens[("added.py", "blob-added")] = token_counts("added.py\n" + texts["textwrap.py"][:3000])
    messages = [
        "Fix the heap push when the heap is empty",
        "Wrap long lines and dedent the text",
        "",
        "zzzunknownword qqqnothing",
        "Decode JSON scanner errors; heap and bisect insort",
    ]
    queries = [np.unique(code_token_hashes(message)) for message in messages]
    snapshots = [snapshot, rewritten, rewritten, snapshot, rewritten]
    excluded = [set(), {"textwrap.py"}, set(), set(), {"bisect.py", "README.md"}]
    calls = []

    def tokens_many(pairs):
        calls.append(len(pairs))
        return [tokens.get(pair) for pair in pairs]

    for k in (1, 3, 10):
        batched = index.top_many(queries, snapshots, tokens_many, excluded, k)
        one_by_one = [
            index.top(query, snap, lambda path, blob: tokens.get((path, blob)), skip, k)
            for query, snap, skip in zip(queries, snapshots, excluded, strict=True)
        ]
        assert batched == one_by_one
    assert batched[0][0][0] == "heapq.py" and batched[1] and batched[4]  # real rankings, not empty ones
    assert batched[2] == [] and batched[3] == []
    assert calls and max(calls) == 2  # fresh files asked for once per batch


def test_top_many_equals_top_with_ties_at_every_cut():
    """Many files with the same score (same tokens apart from their directory's, which no query asks for): which of
    the tied files ``top`` keeps at its cut to 4 k candidates is numpy's choice, and ``top_many`` keeps the same;
    some tied files fresh, some stale, some excluded."""
    body = "def init_queue(self):\n    return heap_queue(self)\n"
    snapshot = {f"pkg{i:02d}/queue.py": f"blob-{i}" for i in range(40)}
    snapshot["other.py"] = "blob-other"
    tokens = {(path, blob): token_counts(f"{path}\n{body}") for path, blob in snapshot.items()}
    tokens[("other.py", "blob-other")] = token_counts("other.py\n" + stdlib_texts()[1])
    index = SnapshotIndex(snapshot, {path: tokens[(path, blob)] for path, blob in snapshot.items()})
    later = dict(snapshot, **{f"pkg{i:02d}/queue.py": f"blob-{i}-new" for i in (3, 17, 30)})
    for i in (3, 17, 30):
        tokens[(f"pkg{i:02d}/queue.py", f"blob-{i}-new")] = tokens[(f"pkg{i:02d}/queue.py", f"blob-{i}")]
    del later["pkg05/queue.py"]
    queries = [np.unique(code_token_hashes(text)) for text in ("init the queue", "heap queue init", "queue")]
    snapshots = [snapshot, later, later]
    excluded = [set(), {"pkg00/queue.py", "pkg17/queue.py"}, {"other.py"}]
    for k in (1, 2, 3, 5, 12):
        batched = index.top_many(queries, snapshots, lambda pairs: [tokens.get(pair) for pair in pairs], excluded, k)
        one_by_one = [
            index.top(query, snap, lambda path, blob: tokens.get((path, blob)), skip, k)
            for query, snap, skip in zip(queries, snapshots, excluded, strict=True)
        ]
        assert batched == one_by_one
        assert all(len(found) == k for found in batched)


def test_near_top_equals_the_plain_cut():
    """The vectorized cut to the candidates that can reach a row's top k (one lexsort) against ``np.partition`` row
    by row, with ties, near-ties (1e-4 apart), empty rows and rows of fewer than k entries; its crowded rows are
    those whose 4 k-th best is within 1e-4 of the k-th."""
    rng = np.random.default_rng(3)
    for trial in range(30):
        count = int(rng.integers(1, 12))
        rows = np.sort(rng.integers(0, count, size=int(rng.integers(0, 120))))
        values = np.round(rng.uniform(0, 2, size=len(rows)), int(rng.integers(1, 5)))  # many exact ties
        values[rng.random(len(values)) < 0.2] += 1e-4
        for k in (1, 2, 5):
            crowded: list[int] = []
            near = near_top(rows, values, count, k, crowded_beyond=4 * k, crowded=crowded)
            assert near.tolist() == near_top_plain(rows, values, count, k).tolist(), (trial, k)
            expected = []
            for row in range(count):
                column = np.sort(values[rows == row])[::-1]
                if len(column) > 4 * k and column[4 * k - 1] >= column[k - 1] - 1e-4:
                    expected.append(row)
            assert [int(row) for row in crowded] == expected


def test_apply_token_delta_equals_delta_tokens():
    """The merge by binary search gives the plain np.unique result: tokens gone, new, counted up and down."""
    from datatrove_pipelines.commits.token_deltas import apply_token_delta, changed_lines, delta_tokens

    before = "import heapq\nclass HeapQueue:\n    def push(self, item):\n        heapq.heappush(self.items, item)\n"
    section = (
        "a/q.py b/q.py\n--- a/q.py\n+++ b/q.py\n@@ -1,4 +1,4 @@\n-import heapq\n+import bisect\n"
        " class HeapQueue:\n-    def push(self, item):\n+    def pushItem(self, item, item2):\n"
        "         heapq.heappush(self.items, item)\n"
    )
    for old in (token_counts("q.py\n" + before), token_counts(""), token_counts("q.py\nbisect heapq heapq push")):
        plus, minus = token_hashes_of_many(list(changed_lines(section)))
        expected = delta_tokens(old, section)
        merged = apply_token_delta(old, plus, minus)
        assert merged[0].tolist() == expected[0].tolist() and merged[1].tolist() == expected[1].tolist()
    assert reference_token_hash("bisect") in merged[0].tolist()


def test_apply_token_delta_equals_delta_tokens_on_random_edits_of_real_files():
    """Random line edits of real modules (tokens added, removed, gone to zero, new, none at all): the merge equals
    the plain ``delta_tokens``."""
    import random

    from datatrove_pipelines.commits.token_deltas import apply_token_delta, changed_lines, delta_tokens

    rng = random.Random(3)
    texts = stdlib_texts()
    for round_ in range(60):
        lines = rng.choice(texts).splitlines()
        removed = rng.sample(lines, rng.randint(0, min(len(lines), 8)))
        added = rng.choice(texts).splitlines()[: rng.randint(0, 10)] + [f"brandNew{round_} token_{round_}"] * (
            round_ % 2
        )
        section = "@@ -1 +1 @@\n" + "".join(f"-{line}\n" for line in removed) + "".join(f"+{line}\n" for line in added)
        old = token_counts("f.py\n" + "\n".join(lines))
        plus, minus = token_hashes_of_many(list(changed_lines(section)))
        expected = delta_tokens(old, section)
        merged = apply_token_delta(old, plus, minus)
        assert merged[0].dtype == expected[0].dtype
        assert merged[0].tolist() == expected[0].tolist() and merged[1].tolist() == expected[1].tolist()


def test_changed_lines_equal_the_line_by_line_reading(tmp_path):
    """The regular-expression scan of a patch section against the line loop: every file section of this project's
    history, and sections that put +/- lines before the first hunk, "+++"/"---" lines inside hunks, carriage
    returns, form feeds, empty added lines, no hunk at all, a hunk header first."""
    from datatrove_pipelines.commits.token_deltas import changed_lines, changed_lines_plain

    patch = git(Path(__file__).resolve().parents[1], "log", "-p", "--format=", "-n", "150", "HEAD")
    sections = patch.split("\ndiff --git ")
    sections += [
        "a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n-old\r\n+new\r\n+++ plus\n--- minus\n+\n \x0ckept\n\\ No newline",
        "@@ -1 +1 @@\n-a\n+b",
        "+not in a hunk\n-nor this\n",
        "",
        "a/x b/x\nBinary files a/x and b/x differ\n",
        "x\n@@@ -1 +1 @@@\n+combined\n@@ -2 +2 @@\n-y\n+z\n",
    ]
    assert len(sections) > 100
    for section in sections:
        assert changed_lines(section) == changed_lines_plain(section), section[:200]


def test_token_hashes_of_many_equal_one_text_at_a_time():
    texts = ["parseHeader(x)", "", "HTTPServer\nline two", "é unicode_ident", "a", "trailingWord"] + stdlib_texts()
    for text, hashes in zip(texts, token_hashes_of_many(texts), strict=True):
        assert hashes.tolist() == code_token_hashes(text).tolist()
    assert token_hashes_of_many([]) == []


# --------------------------------------------------------------------------------------------------------------------
# serialization


DIFF = "diff --git a/src/x.py b/src/x.py\n--- a/src/x.py\n+++ b/src/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"


def example(related_size: int = 4000) -> CommitExample:
    return CommitExample(
        message="Set a to two\n\nBecause one was wrong.\n",
        changes=[("M", "src/x.py", "src/x.py"), ("R", "old.py", "new.py")],
        diff=DIFF,
        readme=("README.md", "# project\n" + "about the project\n" * 200),
        tree="src/\n  x.py\n" + "".join(f"file{i}.py\n" for i in range(400)),
        related=[(f"src/r{i}.py", f"# related {i}\n" + "value = 1\n" * (related_size // 10)) for i in range(5)],
    )


def test_serialization_sections_and_target_roundtrip():
    text, info = serialize(example(), BudgetConfig(max_tokens=100_000))
    assert text.startswith("<commit_message>\nSet a to two\n\nBecause one was wrong.\n</commit_message>\n")
    order = [text.index(tag) for tag in ("<readme", "<repository_tree>", '<related_file path="src/r0.py">')]
    assert order == sorted(order)
    assert parse_target(text) == (["M src/x.py", "R old.py -> new.py"], DIFF)
    assert info["related_paths"] == [f"src/r{i}.py" for i in range(5)] and info["cut"] == ["readme", "tree"]


def test_serialization_with_known_line_counts_equals_counting():
    """Line counts the caller gives (the context step counts each blob once) give the example counting gives, cut
    markers included, at budgets that cut the README, the tree and the related files, with and without a final
    newline."""
    import dataclasses

    plain = example(related_size=9000)
    plain.related[2] = ("src/r2.py", plain.related[2][1].rstrip("\n"))
    known = dataclasses.replace(
        plain, newlines={path: text.count("\n") for path, text in [plain.readme, *plain.related]}
    )
    for max_tokens in (1200, 3000, 8192, 100_000):
        budget = BudgetConfig(max_tokens=max_tokens)
        assert serialize(known, budget) == serialize(plain, budget)
    assert "more lines]" in serialize(known, BudgetConfig())[0]


def test_serialization_with_memoized_related_sections_equals_the_plain_one():
    """The context step memoizes related files' sections by (path, blob, limit) across commits: with a memo that has
    seen the same files at other budgets (other limits), the example is the plain one."""
    import dataclasses

    from datatrove_pipelines.commits.serialize import related_file_section

    memo: dict = {}
    calls = []

    def memoized(path, text, limit, newlines):
        calls.append(path)
        if (path, limit) not in memo:
            memo[(path, limit)] = related_file_section(path, text, limit, newlines)
        return memo[(path, limit)]

    plain = example(related_size=9000)
    for max_tokens in (1200, 3000, 8192, 3000, 8192, 100_000):
        budget = BudgetConfig(max_tokens=max_tokens)
        assert serialize(dataclasses.replace(plain, related_section=memoized), budget) == serialize(plain, budget)
    assert calls and len(memo) < len(calls)  # the memo was used, not only filled


def test_budget_cuts_related_then_tree_never_the_target():
    budget = BudgetConfig(max_tokens=1200, chars_per_token=3.5)
    text, info = serialize(example(), budget)
    assert len(text) <= budget.chars(budget.max_tokens)
    assert parse_target(text) == (["M src/x.py", "R old.py -> new.py"], DIFF)  # whole
    assert "readme" in info["cut"] and len(info["related_paths"]) < 5
    assert any(cut.startswith("related:") for cut in info["cut"])
    # the target alone over the budget: no example
    huge = CommitExample("Change everything", [("M", "a", "a")], DIFF * 2000)
    assert serialize(huge, budget) is None


def test_target_diff_drops_index_lines_only():
    patch = (
        "diff --git a/x b/x\nindex 0123abc..4567def 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-index 1..2\n+index 3..4\n"
    )
    assert target_diff(patch) == patch.replace("index 0123abc..4567def 100644\n", "")


def test_render_tree_equals_the_plain_rendering():
    """The listing cached per path set equals the one rendered afresh: fitting whole, collapsed, cut, empty."""
    from datatrove_pipelines.commits.serialize import render_tree_plain

    paths = sorted(f"{d}/{sub}/f{i}.py" for d in "abc" for sub in ("x", "y") for i in range(8)) + ["README.md"]
    cases = [(paths, {"a/x/f1.py"}, limit) for limit in (5, 40, 60, 63, 64, 200)] + [([], set(), 10)]
    cases += [(paths[:3], set(), 3), (paths[:3], set(), 10), (["a.py", "b/c.py"], set(), 2)]
    for case_paths, focus, limit in cases * 2:  # twice: the second time from the cache
        assert render_tree(case_paths, focus, limit) == render_tree_plain(case_paths, focus, limit)


def test_tree_collapses_away_from_the_change():
    paths = [f"pkg{i}/mod{j}.py" for i in range(30) for j in range(20)] + ["README.md", "src/app/main.py"]
    tree = render_tree(paths, {"src/app/main.py"}, max_entries=60)
    lines = tree.splitlines()
    assert len(lines) <= 61 and "pkg0/ (20 files)" in lines and "src/" in lines and "    main.py" in lines
    assert render_tree(["a.py", "b/c.py"], set(), 10) == "b/\n  c.py\na.py\n"


# --------------------------------------------------------------------------------------------------------------------
# filters


@pytest.mark.parametrize(
    ("name", "email", "bot"),
    [
        ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com", True),
        ("renovate-bot", "bot@renovateapp.com", True),
        ("github-actions", "41898282+github-actions[bot]@users.noreply.github.com", True),
        ("Ada Lovelace", "12345+ada@users.noreply.github.com", False),
        ("Abbot Smith", "abbot@example.org", False),
    ],
)
def test_bot_authors(name, email, bot):
    assert CommitFilter().is_bot(name, email) is bot


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "empty_message"),
        ("   \n\n", "empty_message"),
        ("update", "trivial_message"),
        ("Update README.md", "trivial_message"),
        ("Add files via upload", "trivial_message"),
        ("wip...", "trivial_message"),
        ("fix", "trivial_message"),
        ("Fix crash when the config file is empty", None),
        ("Update the parser to accept trailing commas", None),
    ],
)
def test_messages(message, reason):
    assert CommitFilter().message_reason(message) == reason


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("package-lock.json", "lock_file"),
        ("rust/Cargo.lock", "lock_file"),
        ("vendor/github.com/x/y.go", "vendored_file"),
        ("web/node_modules/left-pad/index.js", "vendored_file"),
        ("static/app.min.js", "generated_file"),
        ("proto/messages_pb2.py", "generated_file"),
        ("src/vendor.py", None),
        ("src/main.rs", None),
    ],
)
def test_path_rules(path, reason):
    assert PathRules(CommitFilterConfig()).reason(path) == reason


def test_patch_flags():
    binary = b"diff --git a/l.png b/l.png\nnew file mode 100644\nindex 0000000..1111111\nBinary files /dev/null and b/l.png differ\n"
    assert patch_flags(binary) == {"binary": True}
    generated = b"diff --git a/g.go b/g.go\n--- a/g.go\n+++ b/g.go\n@@ -0,0 +1,3 @@\n+// Code generated by protoc-gen-go. DO NOT EDIT.\n+package g\n"
    assert patch_flags(generated) == {"generated_marker": True}
    later = b"diff --git a/g.go b/g.go\n--- a/g.go\n+++ b/g.go\n@@ -40,3 +40,3 @@\n-// @generated\n+x := 1\n"
    assert patch_flags(later) == {}


# --------------------------------------------------------------------------------------------------------------------
# git


def git(cwd: Path, *args: str, **kwargs) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, **kwargs).stdout


def test_stream_matches_git_plumbing_with_awkward_paths(tmp_path):
    repo = tmp_path / "awkward"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    env = {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@x"}
    env = {**os.environ, **env}
    names = ["plain.txt", "with space.txt", "ünïcødé.py", 'quote".md', "tab\there.txt", "dir/sub/deep.rs"]
    for name in names:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(f"content of {name}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add awkward names\n\nWith a body.", env=env)
    for name in names[1:]:
        (repo / name).write_text(f"new content of {name}\n")
    git(repo, "mv", "plain.txt", "renamed plain.txt")  # unchanged content: a rename
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Touch everything", env=env)
    commits = list(stream_commits(str(repo)))
    expected = git(repo, "rev-list", "--reverse", "--topo-order", "--parents", "HEAD").split("\n")[:-1]
    assert [" ".join([c.sha, *c.parents]) for c in commits] == expected
    assert commits[0].message == "Add awkward names\n\nWith a body.\n"
    for commit in commits:
        raw = git(repo, "diff-tree", "-r", "-M", "-z", "--root", "--name-only", "--no-commit-id", commit.sha)
        assert {c.path for c in commit.changes} == set(filter(None, raw.split("\0")))
    assert {c.status for c in commits[1].changes} == {"M", "R"}
    # the tree as cat-file sees it
    reader = ObjectReader(str(repo))
    flat = {entry.path for entry in reader.flat_tree(commits[1].tree)}
    reader.close()
    assert flat == set(filter(None, git(repo, "ls-tree", "-r", "-z", "--name-only", "HEAD").split("\0")))


def test_discover_repositories(tmp_path):
    for name in ("b", "a"):
        git(tmp_path, "init", "-q", str(tmp_path / "clones" / name))
    (tmp_path / "clones" / "not-a-repo").mkdir()
    (tmp_path / "clones" / "file.txt").write_text("x")
    found = discover_repositories([str(tmp_path / "clones"), str(tmp_path / "clones" / "a"), str(tmp_path / "nope")])
    assert found == sorted([str(tmp_path / "clones" / n) for n in ("a", "b", "not-a-repo")] + [str(tmp_path / "nope")])


def test_chained_snapshots_and_learnt_tokens_match_reading_git(tmp_path):
    """On this project's history: the snapshot built from the previous commit's changes equals the tree git stores,
    and token counts learnt from a patch equal those of the file read and tokenized whole."""
    from datatrove_pipelines.commits.context import ContextConfig, RepositoryContext, apply_changes

    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[1]), str(clone))
    docs = commit_documents(str(clone))
    state = RepositoryContext(str(clone), 20, ContextConfig())
    learnt = 0
    try:
        for parent_doc, doc in zip(docs, docs[1:], strict=False):
            if doc.metadata["parents"] != [parent_doc.metadata["commit"]] or len(parent_doc.metadata["parents"]) != 1:
                continue  # chaining applies a commit's changes to its one parent: no root, no merge (never chained)
            parent_snapshot = state._read_snapshots([parent_doc])[0]
            chained = apply_changes(parent_snapshot, parent_doc.metadata["changes"])
            assert chained == state._read_snapshots([doc])[0], doc.metadata["commit"]
            for path, blob in parent_snapshot.items():  # known tokens of the parent's files
                state.tokens_for(path, blob)
            state.learn_tokens(parent_doc, parent_snapshot)
            for status, _, path, _, _, new_blob in parent_doc.metadata["changes"]:
                if status == "M" and (path, new_blob) in state.tokens and state.texts([new_blob])[new_blob]:
                    text = state.texts([new_blob])[new_blob]
                    hashes, counts = state.tokens[(path, new_blob)]
                    whole_hashes, whole_counts = token_counts(f"{path}\n{text}")
                    assert hashes.tolist() == whole_hashes.tolist() and counts.tolist() == whole_counts.tolist()
                    learnt += 1
    finally:
        state.close()
    assert learnt >= 20


def test_rank_batch_equals_rank_then_learn_on_project_history(tmp_path):
    """On this project's history, with the index rebuilt often: ``rank_batch`` (batched queries, index chosen commit
    by commit, shared-index commits scored together) ranks every commit as ``rank`` + ``learn_tokens`` one at a
    time, and learns the same token counts."""
    from datatrove_pipelines.commits.context import ContextConfig, RepositoryContext

    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[1]), str(clone))
    docs = commit_documents(str(clone), single_parent_only=True)
    config = ContextConfig(rebuild_min_files=4, rebuild_fraction=0.05)
    batched, plain = RepositoryContext(str(clone), 20, config), RepositoryContext(str(clone), 20, config)
    compared = 0
    try:
        for start in range(0, len(docs), 7):
            batch = docs[start : start + 7]
            ranked = batched.rank_batch(batch, batched.snapshots(batch))
            for doc, snapshot, ranking in zip(batch, plain.snapshots(batch), ranked, strict=True):
                assert ranking == plain.rank(doc, snapshot), doc.metadata["commit"]
                plain.learn_tokens(doc, snapshot)
                compared += bool(ranking)
        assert batched.index_builds == plain.index_builds > 2
        for key, tokens in plain.tokens.items():
            if key in batched.tokens and tokens is not None:
                assert batched.tokens[key][0].tolist() == tokens[0].tolist()
                assert batched.tokens[key][1].tolist() == tokens[1].tolist()
    finally:
        batched.close()
        plain.close()
    assert compared >= 20


def test_texts_rebuilt_from_patches_equal_git_blobs(tmp_path):
    """``apply_patch_section`` (the text of a file after a commit, from its parent's text and the patch) against the
    blob git stores, on edits that stress the hunk rules: first and last lines, the final newline removed and added,
    a file emptied and refilled, CRLF lines, many hunks; plus the blob-id check that rejects a wrong result."""
    import random

    from datatrove_pipelines.commits.patches import apply_patch_section, git_blob_id

    repo = tmp_path / "edits"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    rng = random.Random(7)
    base = (STDLIB / "textwrap.py").read_text().splitlines(keepends=True)
    versions = [
        "".join(base),
        "".join(base[1:]),  # first line removed
        "".join(base[1:-1]) + base[-1].rstrip("\n"),  # last line removed and no final newline
        "".join(base[1:-1]) + base[-1].rstrip("\n") + " # tail",  # the unterminated last line edited
        "".join(base),  # the final newline back
        "",  # emptied
        "one line without newline",
        "".join(base[:50]).replace("\n", "\r\n"),  # CRLF
    ]
    current = list(base)
    for _ in range(12):  # scattered edits: many hunks per commit
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(current))
            current[at : at + rng.randint(0, 3)] = [f"edited {rng.random()}\n"] * rng.randint(0, 2)
        versions.append("".join(current))
    for number, text in enumerate(versions):
        (repo / "file.py").write_bytes(text.encode())
        git(repo, "add", "file.py")
        git(repo, "-c", "user.name=T", "-c", "user.email=t@e.org", "commit", "-q", "--allow-empty", "-m", f"v{number}")
    commits = [commit for commit in stream_commits(str(repo)) if commit.parents]
    checked = 0
    for commit, (old, new) in zip(commits, zip(versions, versions[1:], strict=False), strict=True):
        if old == new:
            continue
        section = commit.patch.decode() if isinstance(commit.patch, bytes) else commit.patch
        rebuilt = apply_patch_section(old, section)
        blob = git(repo, "rev-parse", f"{commit.sha}:file.py").strip()
        assert rebuilt == new, commit.message
        assert git_blob_id(rebuilt.encode()) == blob
        checked += 1
    assert checked >= 15
    # a patch applied to a text it was not made from is refused (context mismatch) or caught by the blob id
    wrong = apply_patch_section(versions[12], section)
    assert wrong is None or git_blob_id(wrong.encode()) != blob
    assert apply_patch_section("x\n", "diff --git a/f b/f\nBinary files a/f and b/f differ\n") is None


def test_context_texts_from_patches_equal_reading_git_on_project_history(tmp_path):
    """On this project's history: every file version ``RepositoryContext.texts`` rebuilds from remembered patches
    (instead of reading it) equals the blob git returns, and most versions are rebuilt, not read."""
    from datatrove_pipelines.commits.context import ContextConfig, RepositoryContext, learnable_sections
    from datatrove_pipelines.commits.git import inspect_repository
    from datatrove_pipelines.commits.reader import commit_document

    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[1]), str(clone))
    info = inspect_repository(str(clone))
    trees: dict[str, str] = {}
    docs = [commit_document(info, commit, trees) for commit in stream_commits(str(clone))]
    state = RepositoryContext(str(clone), 20, ContextConfig())
    reference = ObjectReader(str(clone))
    rebuilt = read = 0
    try:
        for doc in docs:
            if len(doc.metadata["parents"]) != 1:
                continue
            parent_snapshot = state._read_snapshots([doc])[0]
            for path, new_blob, section in learnable_sections(doc):
                old_blob = parent_snapshot[path]
                state.texts([old_blob])  # the parent's version is known (read or rebuilt)
                state.remember_patch(old_blob, new_blob, section)
                asked: list[str] = []
                plain_read_many = state.objects.read_many
                state.objects.read_many = lambda shas, *rest, _asked=asked, _read=plain_read_many: (
                    _asked.extend(shas) or _read(shas, *rest)
                )
                text = state.texts([new_blob])[new_blob]
                state.objects.read_many = plain_read_many
                rebuilt += not asked
                read += bool(asked)
                _, content = reference.read(new_blob)
                expected = content.decode("utf-8", "replace")
                if len(content) > state.config.index_max_bytes or b"\0" in content[:8192]:
                    expected = None
                assert text == expected, (doc.metadata["commit"], path)
    finally:
        state.close()
        reference.close()
    assert rebuilt >= 50 and rebuilt > read, (rebuilt, read)


def test_stream_commits_same_records_whatever_the_read_size(tmp_path):
    """The log stream is cut into records by a marker searched in the new data only: tiny reads (a marker split
    across reads, a commit over many reads) give the same commits as one large read."""
    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[1]), str(clone))

    def records(chunk: int, read_ahead: bool = True) -> list[tuple]:
        return [
            (c.sha, c.message, c.patch, [vars(f) for f in c.changes])
            for c in stream_commits(str(clone), chunk=chunk, read_ahead=read_ahead)
        ]

    whole = records(1 << 24, read_ahead=False)  # the pipe read here, no thread
    assert len(whole) > 50
    for chunk in (97, 4096, 1 << 24):
        assert records(chunk) == whole
    for chunk in (5, 97):
        assert records(chunk, read_ahead=False) == whole


def test_stream_commits_stopped_early_leaves_no_git_or_thread_behind(tmp_path):
    """A consumer that stops after a few commits (the read-ahead thread blocked on a full queue, git on a full
    pipe): closing the stream ends git and the thread, and a new stream reads the history again."""
    import threading

    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(Path(__file__).resolve().parents[1]), str(clone))
    before = {thread.ident for thread in threading.enumerate()}
    stream = stream_commits(str(clone), chunk=64)  # tiny reads: the queue fills at once
    first = [next(stream).sha for _ in range(3)]
    stream.close()
    left = [t for t in threading.enumerate() if t.ident not in before and t.name == "git-log-read-ahead"]
    assert not any(thread.is_alive() for thread in left)
    assert [commit.sha for commit in stream_commits(str(clone))][:3] == first
