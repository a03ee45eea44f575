"""configs/: the base config every model shares, and field validation that names the field."""

import importlib

import pytest

from configs import base, validation
from models import MODEL_NAMES


def _config(name="snn", **overrides):
    config = importlib.import_module(f"configs.{name}").get_config()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_defaults_are_valid_and_share_the_base(name):
    config = _config(name)
    validation.validate(config, name)
    shared = base.get_config()
    for field in ("batch_size", "optimizer", "seed", "jit_compile", "label_column"):
        assert field in config and type(config[field]) is type(shared[field])


BAD = [
    ("seed", -1, "config.seed must be an integer >= 0, got -1"),
    ("clip_standardized", -1.0, "config.clip_standardized must be None or a number > 0"),
    ("epochs", 0, "config.epochs must be an integer >= 1, got 0"),
    ("batch_size", -4, "config.batch_size must be an integer >= 1, got -4"),
    ("learning_rate", float("nan"), "config.learning_rate must be a number > 0"),
    ("dropout_rate", 1.0, "config.dropout_rate must be a number in [0, 1), got 1.0"),
    ("mixed_precision", "fp8", "config.mixed_precision must be None or one of"),
    ("header", "maybe", "config.header must be one of 'auto', 'yes', 'no'"),
    ("feature_shape", (8, 0), "config.feature_shape must be None or a tuple of positive"),
]


@pytest.mark.parametrize("field, value, message", BAD, ids=[b[0] for b in BAD])
def test_every_bad_value_names_its_field(field, value, message):
    with pytest.raises(validation.ConfigError) as error:
        validation.validate(_config(**{field: value}))
    assert str(error.value).startswith(message)


def test_family_fields_are_checked_too():
    with pytest.raises(validation.ConfigError, match="config.kernel_size must be an odd"):
        validation.validate(_config("snn_cnn", kernel_size=4))
    with pytest.raises(validation.ConfigError, match="config.likelihood must be one of"):
        validation.validate(_config("snn_vae", likelihood="poisson"))


def test_the_model_field_must_match_the_flag():
    with pytest.raises(validation.ConfigError, match="config.model is 'snn' but --model is"):
        validation.validate(_config("snn"), "snn_vae")
