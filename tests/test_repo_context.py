"""Repository documents: real tree-sitter import resolution on a repository built here and on the stdlib, the order,
the budget split, bad input; Python's own ``ast`` as the peer of the Python import extraction."""

from __future__ import annotations

import ast
import json
import sysconfig
from pathlib import Path

import pytest
from datatrove.data import Document
from documents import read_docs, write_docs

from datatrove_pipelines.repo_context import (
    FILE_SEP,
    REPO_NAME,
    RepoAssembler,
    RepoContextConfig,
    file_segment,
    main,
    repo_header,
)
from datatrove_pipelines.repo_context.imports import ImportExtractor
from datatrove_pipelines.repo_context.order import dependency_order, split_parts

STDLIB = Path(sysconfig.get_paths()["stdlib"])

# A repository with known imports. Edges: importer -> what it imports (inside the repo).
TEST_REPO = {
    "pkg/__init__.py": '"""The package."""\nfrom .core import Engine\n',
    "pkg/core.py": "import os\n\n\nclass Engine:\n    pass\n",
    "pkg/util.py": "from .core import Engine  # package-relative\n\n\ndef helper():\n    return Engine()\n",
    "pkg/cli.py": "import pkg.util\nfrom pkg import core\nimport json\n\npkg.util.helper()\n",
    "pkg/sub/__init__.py": "# a package\n",
    "pkg/sub/deep.py": "from ..util import helper\nfrom . import leaf\n",
    "pkg/sub/leaf.py": "VALUE = 1\n",
    # one import cycle: a -> b -> a
    "pkg/cycle_a.py": "from pkg import cycle_b\n",
    "pkg/cycle_b.py": "from . import cycle_a\n",
    # imports mentioned only in a comment and a string: no edge (the file would otherwise follow zzz_target)
    "pkg/aaa_comment.py": '# import pkg.zzz_target\nDOC = "from pkg import zzz_target"\n',
    "pkg/zzz_target.py": "from pkg.sub import deep\n",
    # unparseable source that still has a readable import
    "pkg/broken.py": "from .core import Engine\ndef broken(:\n    return ]]\n",
    "src/main.c": '#include <stdio.h>\n#include "util.h"\n#include "lib/math.h"\n// #include "ghost.h"\nint main(void) { return 0; }\n',
    "src/util.h": "#pragma once\nint util(void);\n",
    "src/lib/math.h": '#include "../util.h"\nint add(int a, int b);\n',
    "src/ghost.h": "int ghost;\n",
    "java/com/ex/App.java": (
        "package com.ex;\nimport com.ex.model.User;\nimport com.ex.util.*;\nimport java.util.List;\n"
        "/* import com.ex.Hidden; */\npublic class App { User u; }\n"
    ),
    "java/com/ex/Hidden.java": "package com.ex;\npublic class Hidden {}\n",
    "java/com/ex/model/User.java": "package com.ex.model;\nimport static com.ex.util.Strings.trim;\npublic class User {}\n",
    "java/com/ex/util/Strings.java": "package com.ex.util;\npublic class Strings { static String trim(String s) { return s; } }\n",
    "java/com/ex/util/Numbers.java": "package com.ex.util;\npublic class Numbers {}\n",
    "web/app.js": "import { x } from './lib';\nconst y = require('./helpers.js');\nimport React from 'react';\n",
    "web/lib/index.js": "export const x = 1;\n",
    "web/helpers.js": "module.exports = {};\n",
    "README.md": "# Test repo\n",
    "scripts/run.sh": "#!/bin/sh\necho run\n",
    "db/schema.sql": "CREATE TABLE t (id INT);\n",
}
EXPECTED_EDGES = {
    "pkg/__init__.py": {"pkg/core.py"},
    "pkg/util.py": {"pkg/core.py"},
    "pkg/cli.py": {"pkg/util.py", "pkg/__init__.py", "pkg/core.py"},
    "pkg/sub/deep.py": {"pkg/util.py", "pkg/sub/__init__.py", "pkg/sub/leaf.py"},
    "pkg/cycle_a.py": {"pkg/__init__.py", "pkg/cycle_b.py"},
    "pkg/cycle_b.py": {"pkg/cycle_a.py", "pkg/__init__.py"},
    "pkg/zzz_target.py": {"pkg/sub/__init__.py", "pkg/sub/deep.py"},
    "pkg/broken.py": {"pkg/core.py"},
    "src/main.c": {"src/util.h", "src/lib/math.h"},
    "src/lib/math.h": {"src/util.h"},
    "java/com/ex/App.java": {
        "java/com/ex/model/User.java",
        "java/com/ex/util/Strings.java",
        "java/com/ex/util/Numbers.java",
    },
    "java/com/ex/model/User.java": {"java/com/ex/util/Strings.java"},
    "web/app.js": {"web/lib/index.js", "web/helpers.js"},
}


def file_docs(repo: str, files: dict[str, str | bytes], **metadata) -> list[dict]:
    return [
        {"text": text, "id": f"{repo}/{path}", "metadata": {"repo": repo, "path": path, **metadata}}
        for path, text in files.items()
    ]


def order_of(files: dict[str, str]):
    assembler = RepoAssembler(RepoContextConfig(input="-", output_dir="-"))
    docs = {path: Document(text=text, id=path, metadata={"path": path, "repo": "r"}) for path, text in files.items()}
    return assembler.order_files("r", docs)


def test_known_imports_resolve_to_exactly_the_expected_edges():
    _, edges, broken = order_of(TEST_REPO)
    found = {path: targets for path, targets in edges.items() if targets}
    assert found == EXPECTED_EDGES
    assert broken == 1


def test_every_file_comes_after_what_it_imports_except_across_the_counted_cycle_edge(tmp_path):
    docs = file_docs("acme/tool", TEST_REPO)
    out = tmp_path / "out"
    main(["--input", str(write_docs(tmp_path / "in", docs)), "--output", str(out)])
    [document] = read_docs(out / "kept")
    meta = document["metadata"]
    assert meta["repo"] == "acme/tool" and meta["part"] == 0 and meta["parts"] == 1
    assert sorted(meta["files"]) == sorted(TEST_REPO) and meta["ordering"] == "mixed"
    position = {path: i for i, path in enumerate(meta["files"])}
    backwards = [(a, b) for a, targets in EXPECTED_EDGES.items() for b in targets if position[b] > position[a]]
    assert len(backwards) == 1 and set(backwards[0]) == {"pkg/cycle_a.py", "pkg/cycle_b.py"}  # the broken edge
    assert meta["cycle_edges_broken"] == 1
    assert position["pkg/aaa_comment.py"] < position["pkg/zzz_target.py"]  # the comment created no edge
    # other languages after the resolved ones
    assert {path for path in meta["files"][-3:]} == {"README.md", "scripts/run.sh", "db/schema.sql"}
    # the documented format, byte for byte
    expected = repo_header("acme/tool") + "".join(file_segment(p, TEST_REPO[p]) for p in meta["files"])
    assert document["text"] == expected
    assert document["text"].startswith(f"{REPO_NAME}acme/tool\n{FILE_SEP}")
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"]["repo_context"]["notes"]["parse_errors"]["docs"] >= 1
    assert stats["repositories"]["cycle_edges_broken"] == 1 and stats["repositories"]["documents"] == 1


def test_the_worked_example_of_the_docs_is_what_the_stage_writes(tmp_path):
    """docs/repo_context.md: repository ``acme/calc``, its documented document text, read from the page."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "repo_context.md").read_text()
    start = page.index("```\n<repo_name>acme/calc\n") + len("```\n")
    documented = page[start : page.index("```", start)]
    files = {
        "calc/main.py": "from calc.ops import add\nprint(add(1, 2))",
        "calc/ops.py": "def add(a, b):\n    return a + b\n",
    }
    out = tmp_path / "out"
    main(["--input", str(write_docs(tmp_path / "in", file_docs("acme/calc", files))), "--output", str(out)])
    [document] = read_docs(out / "kept")
    assert document["text"] == documented
    assert document["metadata"]["files"] == ["calc/ops.py", "calc/main.py"]


def test_other_languages_are_in_seeded_random_order(tmp_path):
    files = {f"sql/q{i:02d}.sql": f"SELECT {i};\n" for i in range(12)}
    orders = []
    for seed in ("0", "0", "1"):
        out = tmp_path / f"out{len(orders)}"
        main(["--input", str(write_docs(tmp_path / "in", file_docs("r/sql", files))), "--output", str(out)])
        main(["--input", str(tmp_path / "in"), "--output", str(out) + "s", "--seed", seed])
        orders.append(read_docs(Path(str(out) + "s") / "kept")[0]["metadata"]["files"])
    assert orders[0] == orders[1] != orders[2]
    assert orders[0] != sorted(files)


def test_python_imports_match_the_ast_module_on_the_stdlib():
    """Peer check: the tree-sitter extraction against Python's own parser on real stdlib modules."""
    extractor = ImportExtractor()
    compared = 0
    for path in sorted(STDLIB.glob("*.py"))[:120]:
        source = path.read_bytes()
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        expected = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                expected |= {(0, alias.name, ()) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = tuple(alias.name for alias in node.names if alias.name != "*")
                expected.add((node.level, node.module or "", names))
        specs, _ = extractor.extract("python", source)
        assert {(s.level, s.target, s.names) for s in specs} == expected, path.name
        compared += 1
    assert compared > 100


def test_stdlib_packages_as_repositories_keep_the_dependency_order(tmp_path):
    docs = []
    for package in ("json", "email", "importlib", "sqlite3", "xml"):
        for path in sorted((STDLIB / package).rglob("*.py")):
            relative = str(path.relative_to(STDLIB))
            if "test" not in relative and path.stat().st_size:  # datatrove skips empty texts
                docs.append(
                    {"text": path.read_text(), "id": relative, "metadata": {"repo": package, "path": relative}}
                )
    out = tmp_path / "out"
    main(["--input", str(write_docs(tmp_path / "in", docs)), "--output", str(out), "--max-tokens", "1000000"])
    documents = {doc["metadata"]["repo"]: doc for doc in read_docs(out / "kept")}
    assert set(documents) == {"json", "email", "importlib", "sqlite3", "xml"}
    email = documents["email"]["metadata"]["files"]
    assert email.index("email/errors.py") < email.index("email/message.py")
    assert email.index("email/_policybase.py") < email.index("email/policy.py")
    listed = sorted(path for document in documents.values() for path in document["metadata"]["files"])
    assert listed == sorted(doc["metadata"]["path"] for doc in docs)  # every file once
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["docs_in"] == len(docs) == stats["total"]["docs_kept"]


def test_over_budget_repositories_split_into_connected_parts_within_budget(tmp_path, tiny_model_dir):
    files = {
        # component 1: a chain
        "one/a.py": "VALUE = 1\n" * 40,
        "one/b.py": "from one import a\n" + "X = a.VALUE\n" * 40,
        "one/c.py": "from one import b\n" + "Y = b.X\n" * 40,
        # component 2: independent
        "two/x.py": "Z = 3\n" * 40,
        "two/y.py": "from two import x\n" + "W = x.Z\n" * 40,
    }
    out = tmp_path / "out"
    args = ["--input", str(write_docs(tmp_path / "in", file_docs("r/split", files))), "--output", str(out)]
    main([*args, "--max-tokens", "600", "--tokenizer", str(tiny_model_dir)])
    parts = sorted(read_docs(out / "kept"), key=lambda d: d["metadata"]["part"])
    from datatrove_pipelines.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    assert len(parts) >= 2
    seen: list[str] = []
    for part in parts:
        meta = part["metadata"]
        assert meta["parts"] == len(parts)
        assert len(tokenizer.encode(part["text"], add_special_tokens=False)) == meta["token_count"] <= 600
        for path in meta["files"]:  # what a file imports is in its part or an earlier one
            for dependency in {"one/b.py": ["one/a.py"], "one/c.py": ["one/b.py"], "two/y.py": ["two/x.py"]}.get(
                path, []
            ):
                assert dependency in seen or meta["files"].index(dependency) < meta["files"].index(path)
            seen.append(path)
    assert sorted(seen) == sorted(files)


def test_split_packs_independent_components_and_cuts_large_ones():
    order = ["a", "b", "c", "x", "y"]
    edges = {"b": {"a"}, "c": {"b"}, "y": {"x"}}
    cost = dict.fromkeys(order, 10)
    assert split_parts(order, edges, cost, 50) == [order]
    assert split_parts(order, edges, cost, 30) == [["a", "b", "c"], ["x", "y"]]
    assert split_parts(order, edges, cost, 20) == [["a", "b"], ["c"], ["x", "y"]]


def test_cycles_are_broken_deterministically():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    first = dependency_order(["d", "c", "b", "a"], edges)
    assert first == dependency_order(["a", "b", "c", "d"], edges)
    order, broken = first
    assert order[-1] == "d" and broken == 1


def test_bad_input_is_excluded_with_reasons_or_handled(tmp_path, capsys):
    docs = [
        {"text": "x = 1\n", "id": "norepo", "metadata": {"path": "x.py"}},
        {"text": "x = 1\n", "id": "blankrepo", "metadata": {"repo": "  ", "path": "x.py"}},
        {"text": "x = 1\n", "id": "nopath", "metadata": {"repo": "r/ok"}},
        {"text": "   \n", "id": "empty", "metadata": {"repo": "r/empty", "path": "a.py"}},
        {"text": "\x00\x01\x02ELF\x00\x00" * 30, "id": "bin", "metadata": {"repo": "r/ok", "path": "blob.py"}},
        {"text": "print('big')\n" * 2000, "id": "big", "metadata": {"repo": "r/ok", "path": "big.py"}},
        {"text": "def f(:\n  ]]\n", "id": "broken", "metadata": {"repo": "r/ok", "path": "broken.py"}},
        {"text": "import broken\n", "id": "ok", "metadata": {"repo": "r/ok", "path": "ok.py"}},
        {"text": "x = 2\n", "id": "dup", "metadata": {"repo": "r/ok", "path": "ok.py"}},
    ]
    out = tmp_path / "out"
    main(["--input", str(write_docs(tmp_path / "in", docs)), "--output", str(out), "--max-tokens", "1000"])
    stats = json.loads((out / "stats.json").read_text())
    reasons = {
        step: {reason: counts["docs"] for reason, counts in entry["reasons"].items()}
        for step, entry in stats["steps"].items()
    }
    assert reasons["repo_files"] == {"no_repo": 2, "no_path": 1, "empty_file": 1, "binary": 1}
    assert reasons["repo_context"] == {"file_over_budget": 1, "duplicate_path": 1}
    [document] = read_docs(out / "kept")
    assert document["metadata"]["files"] == ["broken.py", "ok.py"]  # unparseable source kept, its importer after it
    assert stats["total"]["docs_in"] == len(docs) == stats["total"]["docs_kept"] + stats["total"]["docs_excluded"]
    excluded = read_docs(out / "excluded" / "repo_files") + read_docs(out / "excluded" / "repo_context")
    assert len(excluded) == 7 and all(doc["metadata"]["filter_reason"] for doc in excluded)


def test_min_mean_quality_selects_repositories(tmp_path):
    good = file_docs("r/good", {"a.py": "A = 1\n", "b.py": "B = 2\n"}, quality_score=8.0)
    bad = file_docs("r/bad", {"a.py": "A = 1\n"}, quality_score=2.0)
    unscored = file_docs("r/unscored", {"a.py": "A = 1\n"})
    out = tmp_path / "out"
    folder = write_docs(tmp_path / "in", good + bad + unscored)
    main(["--input", str(folder), "--output", str(out), "--min-mean-quality", "5"])
    assert [doc["metadata"]["repo"] for doc in read_docs(out / "kept")] == ["r/good"]
    reasons = json.loads((out / "stats.json").read_text())["steps"]["repo_context"]["reasons"]
    assert reasons["low_mean_quality"]["docs"] == 1 and reasons["no_quality_score"]["docs"] == 1


def test_wrong_usage(tmp_path):
    with pytest.raises(SystemExit):
        main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    folder = write_docs(tmp_path / "in", file_docs("r", {"a.py": "x\n"}))
    with pytest.raises(SystemExit):
        main(["--input", str(folder), "--output", str(tmp_path / "o"), "--max-tokens", "3"])
    with pytest.raises(SystemExit) as raised:
        main(["--input", str(folder), "--output", str(tmp_path / "o"), "--tokenizer", str(tmp_path / "nope")])
    assert "cannot load tokenizer" in str(raised.value)


@pytest.mark.slow
def test_more_tasks_and_a_rerun_give_the_same_documents(tmp_path):
    """Buckets by repository: two tasks build the same documents as one; a re-run into the same folder skips the
    completed tasks and duplicates nothing."""
    docs = file_docs("acme/tool", TEST_REPO) + file_docs("r/other", {"a.py": "import b\n", "b.py": "B = 1\n"})
    folder = write_docs(tmp_path / "in", docs)
    main(["--input", str(folder), "--output", str(tmp_path / "one")])
    main(["--input", str(folder), "--output", str(tmp_path / "two"), "--tasks", "2"])
    main(["--input", str(folder), "--output", str(tmp_path / "two"), "--tasks", "2"])  # the re-run
    one = sorted((d["id"], d["text"]) for d in read_docs(tmp_path / "one" / "kept"))
    two = sorted((d["id"], d["text"]) for d in read_docs(tmp_path / "two" / "kept"))
    assert one == two and len(one) == 2
    stats = json.loads((tmp_path / "two" / "stats.json").read_text())
    assert stats["total"]["docs_in"] == len(docs) == stats["total"]["docs_kept"]


def test_careless_paths_are_normalised(tmp_path):
    docs = file_docs("r/paths", {"./x//y.py": "Y = 1\n", "x\\z.py": "from x import y\n", "/top.py": "T = 0\n"})
    out = tmp_path / "out"
    main(["--input", str(write_docs(tmp_path / "in", docs)), "--output", str(out)])
    [document] = read_docs(out / "kept")
    assert document["metadata"]["files"] == ["top.py", "x/y.py", "x/z.py"]
