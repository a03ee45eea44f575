"""The examples an export calibrates and verifies on, per endpoint."""

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ExportData:
    """Examples for calibration or verification: ``features`` (input name -> array with a leading
    example axis), ``labels`` (or None) and whether they are ``synthetic`` (drawn at random)."""

    features: dict
    labels: np.ndarray | None
    synthetic: bool = False

    def __len__(self):
        return len(next(iter(self.features.values())))


def all_layers(parent):
    """Every layer of a model, nested ones included, depth first."""
    for layer in getattr(parent, "layers", ()):
        yield layer
        yield from all_layers(layer)


def _as_inputs(x, specs):
    """Maps features (array, list of arrays, or dict) to input name -> array of the spec's dtype.

    Raises:
      ValueError: if the arrays do not fit the inputs (names, count or shapes).
    """
    if isinstance(x, dict):
        missing = {s.name for s in specs} - set(x)
        if missing:
            raise ValueError(f"data lacks inputs {sorted(missing)}; has {sorted(x)}")
        arrays = {s.name: x[s.name] for s in specs}
    elif isinstance(x, (list, tuple)):
        if len(x) != len(specs):
            raise ValueError(f"data has {len(x)} feature arrays for {len(specs)} inputs")
        arrays = {s.name: a for s, a in zip(specs, x)}
    else:
        if len(specs) != 1:
            raise ValueError(f"the model has {len(specs)} inputs: pass a dict of arrays")
        arrays = {specs[0].name: x}
    out = {}
    for spec in specs:
        array = np.asarray(arrays[spec.name], dtype=spec.dtype.as_numpy_dtype)
        expected = tuple(spec.shape)[1:]
        if array.ndim != len(expected) + 1 or any(
                e is not None and e != a for e, a in zip(expected, array.shape[1:])):
            raise ValueError(f"input {spec.name!r} expects examples of shape {expected}, "
                             f"got an array of shape {array.shape}")
        out[spec.name] = array
    return out


def prepare(data, specs, limit, seed=0, num_synthetic=64, synthetic_stats=None):
    """Turns the caller's examples into an `ExportData` for inputs ``specs``.

    Args:
      data: None (draws ``num_synthetic`` examples from ``synthetic_stats``, input name ->
        ``(mean, std)``, else N(0, 1)), a features array, a dict of arrays, ``(features,
        labels)``, or a batched ``tf.data.Dataset`` of either (read up to ``limit`` examples).
      specs: the default endpoint's input `tf.TensorSpec`s.
      limit: the most examples kept.
      seed: seed of the synthetic draw.

    Returns:
      An `ExportData` with between 1 and ``limit`` examples.

    Raises:
      ValueError: for data that does not fit the inputs, or no examples.
    """
    if data is None:
        rng = np.random.default_rng(seed)
        num_synthetic = min(num_synthetic, limit)
        features = {}
        for spec in specs:
            shape = tuple(spec.shape)[1:]
            if any(d is None for d in shape):
                raise ValueError(f"input {spec.name!r} has a variable shape {shape}: pass "
                                 "data, synthetic examples need a fixed shape")
            mean, std = (synthetic_stats or {}).get(spec.name, (0.0, 1.0))
            draw = rng.standard_normal((num_synthetic, *shape))
            features[spec.name] = (np.asarray(mean) + np.asarray(std) * draw).astype(
                spec.dtype.as_numpy_dtype)
        return ExportData(features, None, synthetic=True)
    if isinstance(data, tf.data.Dataset):  # read only as far as ``limit`` examples
        data = next(data.unbatch().take(limit).batch(limit).as_numpy_iterator(), None)
        if data is None:
            raise ValueError("the dataset yielded no examples")
        data = data[:2] if isinstance(data, tuple) else data
    labels = None
    if isinstance(data, tuple) and len(data) == 2:
        features = _as_inputs(data[0], specs)
        labels = None if data[1] is None else np.asarray(data[1])
    else:
        features = _as_inputs(data, specs)
    count = len(next(iter(features.values())))
    if count == 0:
        raise ValueError("no examples in the data")
    if labels is not None and len(labels) != count:
        raise ValueError(f"{count} examples but {len(labels)} labels")
    return ExportData({k: v[:limit] for k, v in features.items()},
                      None if labels is None else labels[:limit])


def endpoint_inputs(model, endpoints, data, seed=0):
    """Inputs for every endpoint: the task's `endpoint_inputs`, else the data's by input name.

    Returns:
      ``{endpoint name: {input name: array}}``.
    """
    own = getattr(model, "endpoint_inputs", None)
    if callable(own) and list(data.features) == ["features"]:
        return own(data.features["features"], seed)
    return {e.name: {n: data.features[n] for n in e.input_names} for e in endpoints}


def representative_dataset(inputs_by_endpoint):
    """A callable for ``TFLiteConverter.representative_dataset``: one example at a time."""

    def generate():
        for key, inputs in inputs_by_endpoint.items():
            count = len(next(iter(inputs.values())))
            for i in range(count):
                yield key, {name: array[i:i + 1] for name, array in inputs.items()}

    return generate
