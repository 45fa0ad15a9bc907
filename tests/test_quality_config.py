"""The quality commands' flags come from their settings dataclasses (declared once), and each command runs from a YAML
recipe with command-line overrides. Fast: parsing only, no models, no servers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from datatrove_pipelines.config_flags import add_dataclass_flags, dataclass_from_args
from datatrove_pipelines.quality.__main__ import command_parser, parse_command
from datatrove_pipelines.quality.annotate import AnnotateConfig, OracleConfig
from datatrove_pipelines.quality.score_filter import ScoreConfig
from datatrove_pipelines.quality.scorer import ScorerTrainingConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "tiny"


def _flag_fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("cli", True)}


def _destinations(command: str) -> set[str]:
    return {action.dest for action in command_parser(command)._actions}


@pytest.mark.parametrize(
    ("command", "classes"),
    [
        ("annotate", (AnnotateConfig, OracleConfig)),
        ("train-scorer", (ScorerTrainingConfig,)),
        ("score", (ScoreConfig,)),
    ],
)
def test_every_setting_of_a_command_is_a_flag_named_after_its_field(command, classes):
    renamed = {"input_dir": "input", "output_dir": "output", "annotations_dir": "annotations", "scorer_dir": "scorer"}
    destinations = _destinations(command)
    for cls in classes:
        missing = {name for name in _flag_fields(cls) if renamed.get(name, name) not in destinations}
        assert not missing, f"{cls.__name__} fields without a flag: {missing}"
    # settings the command line does not set stay off it
    assert not {"api_key", "retry_temperature", "server_log_folder", "oracle", "scoring_batch_size"} & destinations


def test_flags_carry_the_dataclass_defaults_types_and_choices():
    parser = command_parser("train-scorer")
    args = parser.parse_args(["--annotations", "a", "--output", "o"])
    defaults = ScorerTrainingConfig(annotations_dir="a", output_dir="o", kind="fasttext")
    for name in _flag_fields(ScorerTrainingConfig) - {"annotations_dir", "output_dir", "kind"}:
        assert getattr(args, name) == getattr(defaults, name), name
    args = parser.parse_args(["--annotations", "a", "--output", "o", "--epochs", "2", "--freeze-backbone"])
    assert args.epochs == 2.0 and isinstance(args.epochs, float) and args.freeze_backbone is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--annotations", "a", "--output", "o", "--pooling", "max"])  # not a choice
    with pytest.raises(SystemExit):
        parser.parse_args(["--output", "o"])  # --annotations is required: no default in the dataclass


def test_annotate_infers_the_backend_and_requires_a_model():
    parser = command_parser("annotate")
    args = parser.parse_args(["--input", "d", "--output", "o", "--model", "m"])
    assert args.backend is None  # the command picks endpoint when --base-url is given, else asks for one
    with pytest.raises(SystemExit):
        parser.parse_args(["--input", "d", "--output", "o"])


def test_config_flags_on_a_dataclass_of_its_own():
    @dataclass
    class Settings:
        path: str = field(metadata={"flag": "in", "help": "where"})
        size: int | None = None
        rate: float = field(default=0.5, metadata={"choices": (0.5, 1.0)})
        fast: bool = False
        secret: str = field(default="", metadata={"cli": False})
        tags: list = field(default_factory=list, metadata={"cli": False})

    import argparse

    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, Settings, defaults={"size": 3})
    args = parser.parse_args(["--in", "x", "--rate", "1.0", "--fast"])
    assert vars(args) == {"in": "x", "size": 3, "rate": 1.0, "fast": True}
    built = dataclass_from_args(Settings, args, secret="s")
    assert built == Settings(path="x", size=3, rate=1.0, fast=True, secret="s")

    @dataclass
    class Unsupported:
        mapping: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="cannot be a flag"):
        add_dataclass_flags(argparse.ArgumentParser(), Unsupported)


@pytest.mark.parametrize(
    ("recipe", "command"),
    [("quality_annotate", "annotate"), ("quality_scorer", "train-scorer"), ("quality_score", "score")],
)
def test_yaml_recipes_parse_with_their_command_and_the_command_line_wins(recipe, command):
    path = str(RECIPES / f"{recipe}.yaml")
    name, args = parse_command([command, "--config", path])
    assert name == command and args.output.startswith("outputs/tiny/")
    _, overridden = parse_command([command, "--config", path, "--output", "elsewhere"])
    assert overridden.output == "elsewhere"


def test_a_recipe_sets_typed_values_and_unknown_keys_are_errors(tmp_path):
    _, args = parse_command(["train-scorer", "--config", str(RECIPES / "quality_scorer.yaml")])
    config = dataclass_from_args(ScorerTrainingConfig, args)
    assert (config.kind, config.head, config.max_length, config.learning_rate) == ("lm", "pooled", 800, 0.001)
    bad = tmp_path / "bad.yaml"
    bad.write_text("annotations: a\noutput: o\nlearning_rat: 0.1\n")
    with pytest.raises(SystemExit):
        parse_command(["train-scorer", "--config", str(bad)])


def test_web_judge_flags_are_the_oracle_settings():
    """The web stage's judge and quality-scorer LLM flags come from ``OracleConfig`` (declared once): same names and
    defaults; ``--model`` is optional there (``run --no-quality-score`` needs no LLM) but still checked when used."""
    import dataclasses

    from datatrove_pipelines.quality.annotate import OracleConfig
    from datatrove_pipelines.web.__main__ import _oracle, train_recall_parser

    parser = train_recall_parser()
    flags = {action.dest: action for action in parser._actions}
    for item in dataclasses.fields(OracleConfig):
        if not item.metadata.get("cli", True):
            continue
        assert item.name in flags, item.name
        if item.name != "model":
            assert flags[item.name].default == item.default, item.name
    args = parser.parse_args(["--input", "x", "--output", "y", "--base-url", "http://127.0.0.1:1/v1", "--tp", "2"])
    with pytest.raises(ValueError, match="needs a model"):
        _oracle(args)
    args.model = "judge"
    oracle = _oracle(args)
    assert (oracle.model, oracle.tp, oracle.base_url) == ("judge", 2, "http://127.0.0.1:1/v1")


def test_a_fasttext_dim_below_100_is_an_error_not_silently_raised():
    """fastText below dim 100 is below every stage's floor: the config refuses it (as every other stage does) instead
    of training a model of another size than the one asked for."""
    with pytest.raises(ValueError, match="dim must be >= 100"):
        ScorerTrainingConfig(annotations_dir="a", output_dir="o", kind="fasttext", fasttext_dim=50)
    assert (
        ScorerTrainingConfig(annotations_dir="a", output_dir="o", kind="fasttext", fasttext_dim=128).fasttext_dim
        == 128
    )
