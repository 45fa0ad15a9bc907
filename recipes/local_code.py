"""Real code every machine has: the running interpreter's own standard library (for demos, tiny models, tests)."""

from __future__ import annotations

import sysconfig
from pathlib import Path


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_python_files(limit_files: int | None = None, limit_bytes: int | None = None) -> list[Path]:
    """The stdlib's ``.py`` files in a stable order, without site-packages; stop after ``limit_files`` files or once
    ``limit_bytes`` bytes are collected."""
    root = stdlib_root()
    files: list[Path] = []
    total = 0
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).parts
        if relative[0] in ("site-packages", "dist-packages") or "__pycache__" in relative or not path.is_file():
            continue
        files.append(path)
        total += path.stat().st_size
        if (limit_files is not None and len(files) >= limit_files) or (
            limit_bytes is not None and total >= limit_bytes
        ):
            break
    return files


def stdlib_relative_files(limit_bytes: int | None = None) -> list[tuple[Path, str]]:
    """(absolute path, path relative to the stdlib) of the stdlib's .py files: what a copy of the tree needs."""
    root = stdlib_root()
    return [(path, str(path.relative_to(root))) for path in stdlib_python_files(limit_bytes=limit_bytes)]
