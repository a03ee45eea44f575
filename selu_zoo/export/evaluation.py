"""Data for exports (calibration, verification) and the quality metrics of each model kind."""

import dataclasses

import numpy as np
import tensorflow as tf

from selu_zoo.export import signatures as sig


@dataclasses.dataclass(frozen=True)
class ExportData:
    """Examples for calibration or verification.

    Attributes:
      features: input name -> float array with a leading example axis.
      labels: class labels (classifier) or targets (regressor), or None.
      synthetic: True when drawn at random because no data was given.
    """

    features: dict
    labels: np.ndarray | None
    synthetic: bool = False

    def __len__(self):
        return len(next(iter(self.features.values())))


def _to_feature_dict(x, specs):
    """Maps features (array, list of arrays, or dict) to input name -> float array.

    Returns:
      ``(arrays, batched)``: arrays with a leading example axis, and whether ``x`` had one.
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
    out, batched = {}, True
    for spec in specs:
        array = np.asarray(arrays[spec.name], dtype=spec.dtype.as_numpy_dtype)
        expected = tuple(spec.shape)[1:]
        if array.ndim == len(expected):  # one unbatched example
            array, batched = array[None], False
        if array.ndim != len(expected) + 1 or any(
                e is not None and e != a for e, a in zip(expected, array.shape[1:])):
            raise ValueError(f"input {spec.name!r} expects examples of shape {expected}, "
                             f"got an array of shape {array.shape}")
        out[spec.name] = array
    return out, batched


def _read_dataset(dataset, specs, limit):
    """Reads up to ``limit`` examples from a tf.data.Dataset of x or (x, y), batched or not."""
    parts, labels, seen = [], [], 0
    for element in dataset.as_numpy_iterator():
        # (x, y) or (x, y, sample_weight), as Keras' fit takes them; anything else is x.
        x, y = (element[0], element[1]) if isinstance(element, tuple) and len(element) in (2, 3) \
            else (element, None)
        arrays, batched = _to_feature_dict(x, specs)
        parts.append(arrays)
        if y is not None:
            y = np.asarray(y)
            labels.append(y if batched else y[None])
        seen += len(next(iter(arrays.values())))
        if seen >= limit:
            break
    if not parts:
        raise ValueError("the dataset yielded no examples")
    features = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return features, (np.concatenate(labels) if len(labels) == len(parts) else None)


def prepare(data, signatures, limit, seed=0, num_synthetic=64, synthetic_stats=None):
    """Turns user data into an `ExportData` for the model's default endpoint.

    Args:
      data: None (then ``num_synthetic`` examples are drawn), a features array, a dict
        of arrays, a tuple ``(features, labels[, sample_weight])``, or a `tf.data.Dataset` of
        features or such tuples, batched or not. Labels may be None.
      signatures: the model's `ModelSignatures`.
      limit: the most examples kept.
      seed: seed of the synthetic draw.
      num_synthetic: how many examples to draw when ``data`` is None.
      synthetic_stats: input name -> ``(mean, std)`` arrays broadcastable to one example,
        for the synthetic draw (``mean + std * N(0, 1)``); N(0, 1) for inputs not listed.

    Returns:
      An `ExportData` with at least one example.

    Raises:
      ValueError: for data that does not fit the model's inputs, or no examples.
    """
    specs = signatures.default.input_signature
    if data is None:
        rng = np.random.default_rng(seed)
        features = {}
        for spec in specs:
            shape = tuple(spec.shape)[1:]
            if any(d is None for d in shape):
                raise ValueError(f"input {spec.name!r} has a variable shape {shape}: "
                                 f"pass data, synthetic examples need a fixed shape")
            mean, std = (synthetic_stats or {}).get(spec.name, (0.0, 1.0))
            draw = rng.standard_normal((num_synthetic, *shape))
            features[spec.name] = (np.asarray(mean) + np.asarray(std) * draw).astype(
                spec.dtype.as_numpy_dtype)
        return ExportData(features, None, synthetic=True)
    if isinstance(data, tf.data.Dataset):
        features, labels = _read_dataset(data, specs, limit)
    elif isinstance(data, tuple) and len(data) in (2, 3):
        features = _to_feature_dict(data[0], specs)[0]
        labels = None if data[1] is None else np.asarray(data[1])
    else:
        features, labels = _to_feature_dict(data, specs)[0], None
    count = len(next(iter(features.values())))
    if count == 0:
        raise ValueError("no examples in the data")
    if labels is not None and len(labels) != count:
        raise ValueError(f"{count} examples but {len(labels)} labels")
    features = {k: v[:limit] for k, v in features.items()}
    labels = None if labels is None else labels[:limit]
    return ExportData(features, labels)


def signature_inputs(signatures, data, seed=0):
    """Inputs for every endpoint, derived from feature examples.

    ``decode`` gets the encoder's ``z_mean`` of the examples; ``sample`` gets N(0, 1) noise.

    Returns:
      endpoint name -> {input name: array}.
    """
    inputs = {}
    for endpoint in signatures.endpoints:
        names = endpoint.input_names
        if names == ("z",):
            z = signatures.endpoint("encode").reference(data.features)["z_mean"]
            inputs[endpoint.name] = {"z": z.astype(endpoint.input_signature[0].dtype
                                                    .as_numpy_dtype)}
        elif names == ("eps",):
            rng = np.random.default_rng(seed + 1)
            shape = (len(data), signatures.latent_dim)
            inputs[endpoint.name] = {"eps": rng.standard_normal(shape).astype(np.float32)}
        else:
            inputs[endpoint.name] = {n: data.features[n] for n in names}
    return inputs


def representative_dataset(inputs_by_endpoint):
    """A callable for ``TFLiteConverter.representative_dataset``: one example at a time."""

    def generate():
        for key, inputs in inputs_by_endpoint.items():
            count = len(next(iter(inputs.values())))
            for i in range(count):
                yield key, {name: array[i:i + 1] for name, array in inputs.items()}

    return generate


def max_abs_diffs(outputs, reference):
    """endpoint -> output name -> max |outputs - reference| (float64 arithmetic)."""
    return {key: {name: float(np.max(np.abs(outputs[key][name].astype(np.float64)
                                            - value.astype(np.float64))))
                  for name, value in per_output.items()}
            for key, per_output in reference.items()}


def _classes(logits):
    return (logits[..., 0] > 0).astype(np.int64) if logits.shape[-1] == 1 \
        else np.argmax(logits, axis=-1)


def _flat(x):
    return x.reshape(len(x), -1).astype(np.float64)


def vae_metrics(signatures, features, encoded, x_mean):
    """Reconstruction error and ELBO at z = z_mean, averaged over examples.

    Bernoulli: reconstruction error is the binary cross-entropy summed over features
    (x_mean clipped to [1e-7, 1 - 1e-7]); Gaussian: a unit-variance Gaussian, so the
    negative log-likelihood is ``0.5 * sum((x - x_mean)^2) + 0.5 * D * log(2 pi)``. The KL term
    is that of the encoder's diagonal Gaussian to N(0, I). ``mse`` is reported for both.
    """
    x = _flat(features)
    mean = _flat(x_mean)
    if signatures.likelihood == "bernoulli":
        p = np.clip(mean, 1e-7, 1 - 1e-7)
        nll = -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1)
    else:
        nll = 0.5 * np.sum((x - mean) ** 2, axis=1) + 0.5 * x.shape[1] * np.log(2 * np.pi)
    z_mean = encoded["z_mean"].astype(np.float64)
    z_log_var = encoded["z_log_var"].astype(np.float64)
    kl = -0.5 * np.sum(1 + z_log_var - z_mean ** 2 - np.exp(z_log_var), axis=1)
    return {"reconstruction_error": float(np.mean(nll)), "kl": float(np.mean(kl)),
            "elbo": float(np.mean(-nll - kl)), "mse": float(np.mean((x - mean) ** 2))}


def quality(signatures, data, outputs):
    """Task metrics of one set of outputs (Keras' or an interpreter's) on the data.

    Args:
      signatures: the model's `ModelSignatures`.
      data: the `ExportData` the outputs were computed on.
      outputs: endpoint name -> {output name: array}.

    Returns:
      A dict of floats: ``accuracy`` (classifier with labels), ``mse`` (regressor with
      targets), VAE metrics (`vae_metrics`); empty for other kinds.
    """
    default = outputs[signatures.default.name]
    if signatures.kind == sig.CLASSIFIER and data.labels is not None:
        labels = np.asarray(data.labels)
        if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot
            labels = np.argmax(labels, axis=1)
        labels = labels.reshape(-1)
        return {"accuracy": float(np.mean(_classes(default["logits"]) == labels))}
    if signatures.kind == sig.REGRESSOR and data.labels is not None:
        prediction = default["prediction"].reshape(len(data), -1)
        targets = np.asarray(data.labels, np.float64).reshape(len(data), -1)
        return {"mse": float(np.mean((prediction - targets) ** 2))}
    if signatures.kind == sig.VAE:
        (features,) = data.features.values()
        return vae_metrics(signatures, features, outputs["encode"],
                           outputs["reconstruct"]["x_mean"])
    return {}


def compare(signatures, outputs, reference):
    """How one variant's outputs differ from a reference's (Keras' or float32's).

    Returns:
      ``max_abs_diff``: endpoint -> output -> float; for a classifier also
      ``top1_agreement`` (fraction of examples with the same predicted class).
    """
    result = {"max_abs_diff": max_abs_diffs(outputs, reference)}
    if signatures.kind == sig.CLASSIFIER:
        name = signatures.default.name
        result["top1_agreement"] = float(np.mean(
            _classes(outputs[name]["logits"]) == _classes(reference[name]["logits"])))
    return result
