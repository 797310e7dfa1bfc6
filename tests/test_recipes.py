import re

import pytest

from dpo_titles.errors import UserError
from dpo_titles.recipes import available, dpo_field_names, load_recipe


def test_the_original_recipe_reproduces_the_original_project():
    r = load_recipe("original")
    assert [r.value(k) for k in ("num_train_epochs", "per_device_train_batch_size")] == [2, 1]
    assert r.value("gradient_accumulation_steps") == 4
    assert [r.value(k) for k in ("learning_rate", "warmup_steps", "beta")] == [1e-6, 10, 0.1]
    assert r.lora is None


def test_every_recipe_loads():
    assert {"original", "lora", "local"} <= set(available())
    for name in available():
        assert load_recipe(name).name == name


def test_overrides_take_strings_and_skip_empty():
    r = load_recipe(
        "local", {"learning_rate": "2e-5", "lora.r": "8", "beta": "", "num_train_epochs": None}
    )
    assert r.value("learning_rate") == 2e-5 and r.use_lora and r.lora.r == 8
    assert r.value("beta") == load_recipe("local").value("beta")


def test_bad_recipes_say_what_to_fix(tmp_path):
    with pytest.raises(UserError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(UserError, match="unknown field"):
        load_recipe("original", {"learning_rat": 1})
    with pytest.raises(UserError, match="invalid int value: 'two'"):
        load_recipe("original", {"per_device_train_batch_size": "two"})
    custom = tmp_path / "mine.yaml"
    custom.write_text("num_train_epochs: 1\nbeta: 0.2\n")
    assert load_recipe(str(custom)).value("beta") == 0.2


def test_epochs_may_be_fractional():
    assert load_recipe("original", {"num_train_epochs": "0.5"}).value("num_train_epochs") == 0.5
    assert load_recipe("original").value("num_train_epochs") == 2.0


def test_every_dpo_config_field_works_as_an_override():
    """Each field TRL's DPOConfig has (but the run's own) is taken by name, with no code here:
    a recipe is the configuration itself."""
    import dataclasses

    from trl import DPOConfig

    defaults = {f.name: f for f in dataclasses.fields(DPOConfig)}
    checked = 0
    for name in dpo_field_names():
        default = defaults[name].default
        if default in (dataclasses.MISSING, None, "") or isinstance(default, (list, dict)):
            continue  # nothing to echo back in its own type
        recipe = load_recipe("local", {name: str(getattr(default, "value", default))})
        machine = {"output_dir": "unused", "bf16": False, "use_cpu": True}
        got = getattr(recipe.dpo_config(**machine), name)
        expected = getattr(DPOConfig(**{**recipe.config, name: default, **machine}), name)
        assert got == expected, name
        checked += 1
    assert checked > 70  # every field with a default of its own type, through one parser


def test_the_names_of_before_still_work_with_a_warning(caplog):
    old = load_recipe("seed", {"epochs": "1", "batch_size": "2", "lora_r": "8"})
    assert old.name == "original" and old.value("num_train_epochs") == 1
    assert old.value("per_device_train_batch_size") == 2 and old.lora.r == 8
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'seed' is now called 'original'" in warned and "'epochs' is now" in warned


def test_the_run_fields_are_not_a_recipes(tmp_path):
    with pytest.raises(UserError, match="output_dir is the training stage's to set"):
        load_recipe("local", {"output_dir": "/elsewhere"})


def test_our_list_of_losses_is_trls():
    import dataclasses

    from trl import DPOConfig

    from dpo_titles.recipes import LOSS_TYPES

    help_text = next(f for f in dataclasses.fields(DPOConfig) if f.name == "loss_type")
    named = re.findall(r"`'(\w+)'`", help_text.metadata["help"])
    assert tuple(named) == LOSS_TYPES


def test_a_recipe_may_not_use_yaml_aliases(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["x", "x"]\nb: &b [*a, *a]\ndescription: [*b, *b]\n')
    with pytest.raises(UserError, match="may not use aliases"):
        load_recipe(str(bomb))
