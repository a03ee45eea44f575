"""Checks every config field before training starts; each error names the field.

`validate` applies the rule of each field the config has (`RULES`); a field without a rule,
or a rule's field missing from the config, is fine: model families have their own fields.
"""

import math
import numbers

MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16", "float32")
LIKELIHOODS = ("bernoulli", "gaussian")
PADDINGS = ("reflect", "symmetric", "zeros")
DOWNSAMPLINGS = ("stride", "avg_pool")
HEADERS = ("auto", "yes", "no")
TASKS = ("auto", "classification", "regression")
MISSING_VALUES = ("error", "mean")


class ConfigError(ValueError):
    """A config field holds a value it cannot have; the message names the field."""


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _int_at_least(low):
    return (lambda v: _is_int(v) and v >= low), f"an integer >= {low}"


def _number(check, allowed):
    return (lambda v: _is_number(v) and check(v)), allowed


def _one_of(choices):
    return (lambda v: v in choices), "one of " + ", ".join(map(repr, choices))


def _optional(rule):
    check, allowed = rule
    return (lambda v: v is None or check(v)), f"None or {allowed}"


def _positive_ints(v):
    return isinstance(v, tuple) and len(v) > 0 and all(_is_int(d) and d > 0 for d in v)


def _strings(v):
    return isinstance(v, tuple) and all(isinstance(d, (str, int)) for d in v)


_POSITIVE_INT = _int_at_least(1)
_POSITIVE = _number(lambda v: v > 0, "a number > 0")

RULES = {
    "model": ((lambda v: isinstance(v, str) and bool(v)), "a model name"),
    "dataset": ((lambda v: isinstance(v, str) and bool(v.strip())), "a dataset name"),
    "feature_shape": _optional((_positive_ints, "a tuple of positive integers")),
    "clip_standardized": _optional(_POSITIVE),
    "label_column": _optional(((lambda v: isinstance(v, str) and bool(v)),
                               "a column name or 0-based index")),
    "header": _one_of(HEADERS),
    "exclude_columns": (_strings, "a tuple of column names or indices"),
    "task": _one_of(TASKS),
    "split_column": _optional(((lambda v: isinstance(v, str) and bool(v)),
                               "a column name or 0-based index")),
    "missing_values": _one_of(MISSING_VALUES),
    "epochs": _POSITIVE_INT,
    "batch_size": _POSITIVE_INT,
    "steps_per_epoch": _optional(_POSITIVE_INT),
    "steps_per_execution": _optional(_POSITIVE_INT),
    "checkpoint_every": _optional(_POSITIVE_INT),
    "optimizer": ((lambda v: isinstance(v, str) and bool(v)), "a Keras optimizer name"),
    "learning_rate": _POSITIVE,
    "momentum": _optional(_number(lambda v: 0 <= v < 1, "a number in [0, 1)")),
    "seed": _int_at_least(0),
    "jit_compile": ((lambda v: isinstance(v, bool)), "True or False"),
    "mixed_precision": _optional(_one_of(MIXED_PRECISION_POLICIES)),
    "depth": _int_at_least(0),
    "width": _POSITIVE_INT,
    "units": _POSITIVE_INT,
    "latent_dim": _POSITIVE_INT,
    "dropout_rate": _number(lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "residual": ((lambda v: isinstance(v, bool)), "True or False"),
    "unroll": ((lambda v: isinstance(v, bool)), "True or False"),
    "init_scale": _POSITIVE,
    "likelihood": _one_of(LIKELIHOODS),
    "gaussian_variance": _POSITIVE,
    "kl_weight": _number(lambda v: v >= 0, "a number >= 0"),
    "filters": (_positive_ints, "a tuple of positive integers"),
    "convs_per_stage": _POSITIVE_INT,
    "kernel_size": ((lambda v: _is_int(v) and v > 0 and v % 2 == 1), "an odd integer >= 1"),
    "padding": _one_of(PADDINGS),
    "downsample": _one_of(DOWNSAMPLINGS),
}


def validate(config, model_name=None):
    """Checks the config's fields against `RULES`.

    Args:
      config: an experiment ConfigDict.
      model_name: the ``--model`` flag, which ``config.model`` must equal when given.

    Raises:
      ConfigError: ``"config.FIELD must be ALLOWED, got VALUE"`` for the first bad field.
    """
    values = config.to_dict()
    for field, (check, allowed) in RULES.items():
        if field in values and not check(values[field]):
            raise ConfigError(f"config.{field} must be {allowed}, got {values[field]!r}")
    if model_name is not None and values.get("model") != model_name:
        raise ConfigError(f"config.model is {values.get('model')!r} but --model is "
                          f"{model_name!r}; pass the config of that model")
