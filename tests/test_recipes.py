import re

import pytest

from dpo_titles.errors import UserError
from dpo_titles.recipes import available, load_recipe


def test_seed_recipe_reproduces_the_seed():
    r = load_recipe("seed")
    assert (r.epochs, r.batch_size, r.gradient_accumulation_steps) == (2, 1, 4)
    assert (r.learning_rate, r.warmup_steps, r.beta) == (1e-6, 10, 0.1)


def test_every_recipe_loads():
    assert {"seed", "lora", "local"} <= set(available())
    for name in available():
        assert load_recipe(name).name == name


def test_overrides_take_strings_and_skip_empty():
    r = load_recipe(
        "local", {"learning_rate": "2e-5", "use_lora": "true", "beta": "", "epochs": None}
    )
    assert r.learning_rate == 2e-5 and r.use_lora is True
    assert r.beta == load_recipe("local").beta


def test_bad_recipes_say_what_to_fix(tmp_path):
    with pytest.raises(UserError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(UserError, match="unknown field"):
        load_recipe("seed", {"learning_rat": 1})
    with pytest.raises(UserError, match="not a valid int"):
        load_recipe("seed", {"batch_size": "two"})
    custom = tmp_path / "mine.yaml"
    custom.write_text("epochs: 1\nbeta: 0.2\n")
    assert load_recipe(str(custom)).beta == 0.2


def test_epochs_may_be_fractional():
    assert load_recipe("seed", {"epochs": "0.5"}).epochs == 0.5
    assert load_recipe("seed").epochs == 2.0


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
