"""Command-line flags declared once, on a config dataclass (the HfArgumentParser / TrlParser pattern).

Each field of the dataclass is a flag: ``--per-language`` for ``per_language``, its type, its default and, from the
field's ``metadata`` (``field(default=..., metadata={"help": ...})``, as HfArgumentParser reads them):

* ``help``, ``choices``;
* ``flag``: the flag's name when it is not the field's (``output_dir`` is ``--output``);
* ``required``: the command line (or the ``--config`` YAML) must give it, even if the dataclass has a default (unless
  the caller passes a command-line default for it: a command that may not need the setting);
* ``cli``: ``False`` for a setting the command line does not set (a secret read from the environment, a path
  derived from another flag, a nested config).

A ``bool`` field defaulting to False is a switch (``--freeze-backbone``). The flag's destination is its name with
``_`` (``args.output``), so ``--config`` YAML keys are the flags, as in every stage
(:func:`datatrove_pipelines.stage.parse_stage_args`). :func:`dataclass_from_args` builds the dataclass back from the
parsed flags, so the dataclass's own checks (``__post_init__``) run once, on the final values.

Why not HfArgumentParser itself: it names each flag after its field in both spellings (``--output_dir`` and
``--output-dir``) with the field as destination, while the stages' flags and YAML keys are fixed
(``--output``, ``--annotations``) and their YAML is read by ``parse_stage_args``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any

_FLAG_TYPES = (str, int, float)


def _flag_name(item: dataclasses.Field) -> str:
    return item.metadata.get("flag", item.name.replace("_", "-"))


def _flag_fields(cls: type, only: Collection[str] | None, skip: Collection[str]) -> list[dataclasses.Field]:
    return [
        item
        for item in dataclasses.fields(cls)
        if item.init
        and item.metadata.get("cli", True)
        and item.name not in skip
        and (only is None or item.name in only)
    ]


def _value_type(cls: type, item: dataclasses.Field) -> type:
    """``int`` for ``int`` and ``int | None``; a TypeError for a type a flag cannot carry."""
    hint = typing.get_type_hints(cls)[item.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next((arg for arg in typing.get_args(hint) if arg is not type(None)), hint)
    if hint is bool or hint in _FLAG_TYPES:
        return hint
    raise TypeError(f"{cls.__name__}.{item.name}: a {hint} cannot be a flag; mark the field metadata={{'cli': False}}")


def add_dataclass_flags(
    parser: argparse.ArgumentParser | argparse._ActionsContainer,
    cls: type,
    *,
    only: Collection[str] | None = None,
    skip: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """One flag per field of ``cls`` (see the module docstring); ``only`` / ``skip`` select fields, ``defaults``
    replaces the dataclass default of a field on the command line (e.g. None where the command infers it)."""
    defaults = defaults or {}
    for item in _flag_fields(cls, only, skip):
        value_type = _value_type(cls, item)
        options: dict[str, Any] = {"dest": _flag_name(item).replace("-", "_"), "help": item.metadata.get("help")}
        if item.name in defaults:
            default = defaults[item.name]
        elif item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = dataclasses.MISSING
        if value_type is bool:
            if default is not False:
                raise TypeError(f"{cls.__name__}.{item.name}: a switch must default to False")
            options.update(action="store_true", default=False)
        else:
            options["type"] = value_type
            if "choices" in item.metadata:
                options["choices"] = item.metadata["choices"]
            if default is dataclasses.MISSING or (item.metadata.get("required") and item.name not in defaults):
                options["required"] = True
            else:
                options["default"] = default
        parser.add_argument(f"--{_flag_name(item)}", **options)


def dataclass_from_args(
    cls: type,
    args: argparse.Namespace,
    *,
    only: Collection[str] | None = None,
    skip: Collection[str] = (),
    **values: Any,
):
    """``cls`` built from the flags :func:`add_dataclass_flags` declared for it (same ``only`` / ``skip``); the
    keyword ``values`` set the other fields (or replace a flag's value)."""
    for item in _flag_fields(cls, only, skip):
        dest = _flag_name(item).replace("-", "_")
        if item.name not in values and hasattr(args, dest):
            values[item.name] = getattr(args, dest)
    return cls(**values)
