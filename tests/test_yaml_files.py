"""A YAML file the user wrote that is not valid YAML is one line naming the file, line and column, in every command
that reads one: a stage's --config, web category rules, pretraining recipes and model specs, TRL recipes."""

from __future__ import annotations

import pytest

from datatrove_pipelines.yaml_files import YamlFileError, read_yaml

BROKEN = {"stray colons": ": : :\n", "open list": "a: [1, 2\n", "tab indent": "a: 1\n\tb: 2\n"}


@pytest.fixture(params=sorted(BROKEN))
def broken(request, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN[request.param])
    return path


def test_read_yaml_names_file_line_and_column(broken, tmp_path):
    with pytest.raises(YamlFileError, match=rf"^{broken}: not valid YAML \(line \d+, column \d+\): \S"):
        read_yaml(broken)
    with pytest.raises(YamlFileError, match="cannot read .*missing.yaml: No such file"):
        read_yaml(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(YamlFileError, match="not UTF-8"):
        read_yaml(latin)
    good = tmp_path / "good.yaml"
    good.write_text("a: [1, 2]\nb: {c: x}\n")
    assert read_yaml(good) == {"a": [1, 2], "b": {"c": "x"}}


def _one_line_exit(capsys, call) -> str:
    with pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err + (exit_info.value.code if isinstance(exit_info.value.code, str) else "")
    assert "Traceback" not in err
    return err


def test_stage_config_that_is_not_yaml(broken, capsys):
    from datatrove_pipelines.code_files import parse_args

    err = _one_line_exit(capsys, lambda: parse_args(["--config", str(broken)]))
    assert f"--config: {broken}: not valid YAML (line" in err


def test_web_category_rules_that_are_not_yaml(broken, tmp_path, capsys):
    from datatrove_pipelines.web.__main__ import main

    pages = tmp_path / "pages"
    pages.mkdir()
    argv = ["run", "--input", str(pages), "--output", str(tmp_path / "out"), "--no-quality-score"]
    err = _one_line_exit(capsys, lambda: main([*argv, "--categories", str(broken)]))
    assert f"{broken}: not valid YAML (line" in err


def test_pretraining_recipe_and_model_spec_that_are_not_yaml(broken, tmp_path, capsys):
    from recipes.model_specs import load_model_spec
    from recipes.nanotron_config import main as nanotron_main
    from recipes.pretrain import main as pretrain_main
    from recipes.pretrain_config import RecipeError

    assert pretrain_main(["--config", str(broken)]) == 2
    assert f"error: {broken}: not valid YAML (line" in capsys.readouterr().err
    with pytest.raises(RecipeError, match=f"{broken}: not valid YAML"):
        load_model_spec(broken)
    err = _one_line_exit(capsys, lambda: nanotron_main([str(broken), "--output", str(tmp_path / "nt")]))
    assert f"error: {broken}: not valid YAML (line" in err


def test_trl_recipe_that_is_not_yaml(broken, capsys):
    import trl

    from trl_scripts.common import parse
    from trl_scripts.configs import PostTrainingScriptArguments

    err = _one_line_exit(capsys, lambda: parse(PostTrainingScriptArguments, trl.SFTConfig, ["--config", str(broken)]))
    assert f"error: {broken}: not valid YAML (line" in err
