"""What a model exports: its kind, and one named-input, dict-output function per endpoint.

The model contract of the zoo (see DESIGN.md):

* every ``keras.Input`` has a name (``"features"``; a VAE decoder's is ``"z"``) and becomes the
  input name of every signature that takes it;
* a classifier ends in a ``Dense`` named ``"logits"``: serving returns ``{"logits",
  "probabilities"}`` (softmax, or sigmoid for a single unit);
* a regressor ends in a layer named ``"prediction"``: serving returns ``{"prediction"}``;
* a VAE holds nested functional models as layers named ``"encoder"`` (features ->
  ``z_mean``, ``z_log_var``, by output layer name) and ``"decoder"`` (z -> ``x_logits`` for a
  Bernoulli likelihood, or ``x_mean`` for a Gaussian one). Its endpoints are ``reconstruct``
  (the default), ``encode``, ``decode`` and ``sample``.

Any other functional model exports as ``"generic"``: ``serving_default`` returns one entry per
output, keyed by the output layer's name.
"""

import dataclasses
from typing import Callable

import keras
import tensorflow as tf

CLASSIFIER = "classifier"
REGRESSOR = "regressor"
VAE = "vae"
GENERIC = "generic"

SERVING_DEFAULT = "serving_default"

_HALF = (tf.float16, tf.bfloat16)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One exported function.

    Attributes:
      name: signature name.
      fn: takes one tensor per entry of ``input_signature`` (positionally) and returns a dict
        of float tensors. Traceable with ``autograph=False``.
      input_signature: `tf.TensorSpec`s with names; the batch dimension is ``None``.
    """

    name: str
    fn: Callable
    input_signature: tuple

    def __post_init__(self):
        object.__setattr__(self, "fn", _checked(self.fn, self.input_signature))

    @property
    def input_names(self):
        return tuple(spec.name for spec in self.input_signature)

    def reference(self, inputs):
        """Runs ``fn`` eagerly (plain Keras calls) on a dict of numpy arrays; returns numpy."""
        args = [tf.convert_to_tensor(inputs[spec.name], spec.dtype)
                for spec in self.input_signature]
        return {k: v.numpy() for k, v in self.fn(*args).items()}


def _checked(fn, specs):
    """Wraps an endpoint function so its inputs are checked against ``specs`` when it runs.

    A signature does not check shapes by itself: a rank-1 ``features`` would broadcast
    through a standardization layer and come back as a batch of one. ``tf.ensure_shape``
    fails such calls with an InvalidArgumentError naming the expected shape (and the TFLite
    converter drops it).
    """

    def checked(*args):
        return fn(*[tf.ensure_shape(tf.convert_to_tensor(a), spec.shape, name=spec.name)
                    for a, spec in zip(args, specs)])

    return checked


@dataclasses.dataclass(frozen=True)
class ModelSignatures:
    """How a model is exported.

    Attributes:
      kind: ``"classifier"``, ``"regressor"``, ``"vae"`` or ``"generic"``.
      endpoints: the endpoints, the default one first.
      likelihood: for a VAE, ``"bernoulli"`` or ``"gaussian"``; None otherwise.
      latent_dim: for a VAE, the width of z; None otherwise.
    """

    kind: str
    endpoints: tuple
    likelihood: str | None = None
    latent_dim: int | None = None

    @property
    def default(self):
        return self.endpoints[0]

    def endpoint(self, name):
        if name == SERVING_DEFAULT:
            return self.default
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(f"no endpoint {name!r}; have {[e.name for e in self.endpoints]}")

    @property
    def signature_names(self):
        """Every signature the SavedModel has (the default is also ``serving_default``)."""
        names = [e.name for e in self.endpoints]
        return names if SERVING_DEFAULT in names else names + [SERVING_DEFAULT]


def _as_float32(tensor):
    return tf.cast(tensor, tf.float32) if tensor.dtype in _HALF else tensor


def _spec(keras_tensor, name=None):
    """A TensorSpec with a ``None`` batch dimension for a Keras input tensor."""
    shape = (None, *tuple(keras_tensor.shape)[1:])
    return tf.TensorSpec(shape, tf.as_dtype(keras_tensor.dtype), name=name or keras_tensor.name)


def _functional_inputs(model, what="model"):
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(
            f"the {what} {model.name!r} has no known inputs: export needs a functional model "
            f"(keras.Input -> layers -> keras.Model), or a model that has been built on inputs")
    return list(inputs)


def _outputs_by_name(model, outputs):
    """Maps a model's output layer names to the tensors its call returned."""
    if isinstance(outputs, dict):
        return dict(outputs)
    flat = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    names = list(model.output_names)
    if len(names) != len(flat):
        raise ValueError(f"{model.name!r} returned {len(flat)} outputs for output names {names}")
    return dict(zip(names, flat))


def _find_nested_model(model, name):
    try:
        layer = model.get_layer(name)
    except ValueError:
        return None
    return layer if isinstance(layer, keras.Model) else None


def describe(model):
    """Returns the `ModelSignatures` of a Keras model, following the zoo's model contract.

    Args:
      model: a built functional `keras.Model`.

    Returns:
      A `ModelSignatures`.

    Raises:
      ValueError: if the model's inputs are unknown or unnamed, or a VAE breaks the contract.
    """
    encoder = _find_nested_model(model, "encoder")
    decoder = _find_nested_model(model, "decoder")
    if encoder is not None and decoder is not None:
        return _describe_vae(encoder, decoder)

    specs = tuple(_spec(t) for t in _functional_inputs(model))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model inputs need distinct names, got {names}")
    output_names = list(model.output_names)

    def call(*args):
        outputs = model(args[0] if len(args) == 1 else list(args), training=False)
        return {k: _as_float32(v) for k, v in _outputs_by_name(model, outputs).items()}

    if output_names == ["logits"]:
        units = model.get_layer("logits").output.shape[-1]
        squash = tf.nn.sigmoid if units == 1 else tf.nn.softmax

        def classify(*args):
            logits = call(*args)["logits"]
            return {"logits": logits, "probabilities": squash(logits)}

        return ModelSignatures(CLASSIFIER, (Endpoint(SERVING_DEFAULT, classify, specs),))
    kind = REGRESSOR if output_names == ["prediction"] else GENERIC
    return ModelSignatures(kind, (Endpoint(SERVING_DEFAULT, call, specs),))


def _describe_vae(encoder, decoder):
    encoder_inputs = _functional_inputs(encoder, "encoder")
    decoder_inputs = _functional_inputs(decoder, "decoder")
    if len(encoder_inputs) != 1 or len(decoder_inputs) != 1:
        raise ValueError("a VAE's encoder and decoder must each take one input")
    missing = {"z_mean", "z_log_var"} - set(encoder.output_names)
    if missing:
        raise ValueError(f"the VAE encoder must have outputs named 'z_mean' and 'z_log_var' "
                         f"(missing {sorted(missing)}), got {list(encoder.output_names)}")
    if "x_logits" in decoder.output_names:
        likelihood, x_name, to_mean = "bernoulli", "x_logits", tf.nn.sigmoid
    elif "x_mean" in decoder.output_names:
        likelihood, x_name, to_mean = "gaussian", "x_mean", tf.identity
    else:
        raise ValueError(f"the VAE decoder must have an output named 'x_logits' (Bernoulli) or "
                         f"'x_mean' (Gaussian), got {list(decoder.output_names)}")
    features_spec = _spec(encoder_inputs[0], "features")
    z_spec = _spec(decoder_inputs[0], "z")
    eps_spec = tf.TensorSpec(z_spec.shape, z_spec.dtype, name="eps")
    latent_dim = z_spec.shape[-1]

    def encode(features):
        outputs = _outputs_by_name(encoder, encoder(features, training=False))
        return {k: _as_float32(outputs[k]) for k in ("z_mean", "z_log_var")}

    def decode(z):
        x = _outputs_by_name(decoder, decoder(z, training=False))[x_name]
        return {"x_mean": to_mean(_as_float32(x))}

    def reconstruct(features):
        return decode(encode(features)["z_mean"])

    def sample(eps):
        # The prior is N(0, I): z = eps. The caller draws eps, so the endpoint is deterministic.
        return decode(eps)

    endpoints = (Endpoint("reconstruct", reconstruct, (features_spec,)),
                 Endpoint("encode", encode, (features_spec,)),
                 Endpoint("decode", decode, (z_spec,)),
                 Endpoint("sample", sample, (eps_spec,)))
    return ModelSignatures(VAE, endpoints, likelihood=likelihood, latent_dim=latent_dim)
