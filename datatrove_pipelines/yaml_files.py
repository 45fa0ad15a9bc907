"""YAML files a user writes (a stage's ``--config``, web category rules, pretraining recipes, model specs, TRL
recipes): a file that is not valid YAML is one clear line naming the file, line and column, never a parser traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class YamlFileError(ValueError):
    """A YAML file that cannot be read or parsed (a ``ValueError``, so the callers' usage-error handling applies)."""


def yaml_error_message(error: Exception, path: str | Path | None = None) -> str:
    """``PATH: not valid YAML (line L, column C): PROBLEM`` for a ``yaml.YAMLError`` (the path from the error's mark
    when not given)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = path if path is not None else getattr(mark, "name", None) or "YAML"
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{where}: not valid YAML{at}: {problem}"


def read_yaml(path: str | Path) -> Any:
    """``yaml.safe_load`` of the file at ``path``; :class:`YamlFileError` when it cannot be read or is not YAML."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise YamlFileError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise YamlFileError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise YamlFileError(yaml_error_message(error, path)) from None
