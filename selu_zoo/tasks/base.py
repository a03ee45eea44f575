"""`Task`: the base of the zoo's models, a functional ``keras.Model`` that says what it is.

As in keras-hub, a task is a registered ``keras.Model`` subclass that builds its graph
functionally in ``__init__`` from sub-models (a backbone, or a VAE's encoder and decoder),
and whose ``get_config`` returns its constructor arguments. The class, saved in the
``.keras`` file, is what says which kind of model it is; everything that differs between
kinds is a method here, so drivers, callbacks and exports ask the model instead of
comparing names:

* `compile` fills in the task's loss and metrics (``loss="auto"``, ``metrics="auto"``);
* `training_pair` turns a dataset example ``(features, label)`` into ``(inputs, targets)``;
* `evaluation_metrics` computes what Keras' ``evaluate`` does not (a VAE's ELBO);
* `serving_endpoints` lists the exported signatures and `endpoint_inputs` makes inputs for
  them from examples; `artifact_metrics` scores an exported artifact through those
  signatures, with the same definitions as `evaluation_metrics`;
* `pictures` draws what is worth looking at (a VAE's reconstructions and samples);
* `activation_probe` maps inputs to the outputs of the self-normalizing layers.
"""

import keras

from selu_zoo import layers as selu_layers

SERVING_DEFAULT = "serving_default"


def is_self_normalizing(layer):
    """Whether ``layer``'s output is a SELU activation, which should sit near mean 0, variance 1.

    Args:
      layer: a Keras layer.

    Returns:
      True for `selu_zoo.layers.SELU` and `SELUDense`, and for ``keras.layers.RNN`` layers
      of a `SELURNNCell`.
    """
    if isinstance(layer, (selu_layers.SELU, selu_layers.SELUDense)):
        return True
    return isinstance(layer, keras.layers.RNN) and isinstance(layer.cell,
                                                              selu_layers.SELURNNCell)


def layer_probe(model, select=is_self_normalizing, prefix=""):
    """A model from ``model``'s inputs to the outputs of its selected layers.

    Args:
      model: a functional Keras model (its own layers are searched, not nested models').
      select: predicate choosing layers.
      prefix: prepended to the layer names in the result's keys.

    Returns:
      A functional ``keras.Model`` returning a dict ``prefix + layer name -> output`` (it
      shares ``model``'s variables), or None if no layer is selected.
    """
    chosen = {prefix + layer.name: layer.output for layer in model.layers if select(layer)}
    if not chosen:
        return None
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, chosen, name=f"{model.name}_probe")


class Task(keras.Model):
    """Base class of the zoo's models; subclasses build their graph in ``__init__``.

    Subclasses set `kind` and implement `serving_endpoints` and `artifact_metrics`, and
    override the other methods where their kind needs it.
    """

    kind = "task"
    # Constructor arguments that are sub-models: get_config serializes them, from_config
    # rebuilds them.
    submodels = ("backbone",)

    def __setattr__(self, name, value):
        # Sub-models and heads are set before keras.Model.__init__ builds the functional graph
        # (keras-hub's order); torch.nn.Module refuses a module attribute before its own
        # __init__. The graph tracks those layers either way.
        try:
            super().__setattr__(name, value)
        except AttributeError:
            object.__setattr__(self, name, value)

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        """``keras.Model.compile`` with the task's loss and metrics for ``"auto"``.

        Args:
          optimizer: a Keras optimizer or its name.
          loss: a loss, or ``"auto"`` for `default_loss`.
          metrics: a list of metrics, or ``"auto"`` for `default_metrics`.
          **kwargs: passed on (``jit_compile``, ``steps_per_execution``, ...).
        """
        super().compile(optimizer=optimizer,
                        loss=self.default_loss() if loss == "auto" else loss,
                        metrics=self.default_metrics() if metrics == "auto" else metrics,
                        **kwargs)

    def compile_from_config(self, config):
        """Compiles from a saved compile config (what loading a ``.keras`` file calls)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def default_loss(self):
        """The loss `compile` uses for ``loss="auto"``."""
        raise NotImplementedError

    def default_metrics(self):
        """The metrics `compile` uses for ``metrics="auto"``."""
        return []

    def training_pair(self, features, label):
        """Maps dataset examples to the ``(inputs, targets)`` pair ``fit`` trains on.

        Works on one example or a batch alike (the data pipeline calls it per batch).

        Args:
          features: the features (a tensor).
          label: the labels or targets.

        Returns:
          ``(features, label)``; a VAE returns ``(features, features)``.
        """
        return features, label

    def evaluation_metrics(self, batches, seed=0):
        """Metrics beyond Keras' ``evaluate`` over a dataset of ``(features, label)`` batches.

        Args:
          batches: a ``tf.data.Dataset`` of batched ``(features, label)`` pairs.
          seed: seed of any sampling the metrics do.

        Returns:
          A dict of floats (empty for tasks whose Keras metrics say everything).
        """
        del batches, seed
        return {}

    def serving_endpoints(self):
        """The exported signatures, the default first: a tuple of `endpoints.Endpoint`."""
        raise NotImplementedError

    def endpoint_inputs(self, features, seed=0):
        """Inputs for every serving endpoint, made from a few examples' features.

        Args:
          features: NumPy features of a few examples.
          seed: seed of any inputs that are random draws.

        Returns:
          ``{endpoint name: {input name: array}}``.
        """
        del seed
        return {e.name: {"features": features} for e in self.serving_endpoints()}

    def artifact_metrics(self, features, labels, run, seed=0):
        """Scores an artifact (the model itself, a SavedModel, a TFLite file) on examples.

        Args:
          features: NumPy features of a few examples, shaped as the ``features`` input.
          labels: their labels or targets (None if unknown).
          run: ``run(endpoint_name, {input_name: array}) -> {output_name: array}``, calling
            the artifact's signature of that name.
          seed: seed of any random draws (the same as `evaluation_metrics`' gives the same
            estimates for the same examples).

        Returns:
          A dict of floats.
        """
        raise NotImplementedError

    def pictures(self, features, seed=0):
        """Images that show what the model does on a few examples.

        Args:
          features: NumPy features of a few examples.
          seed: seed of any random draws.

        Returns:
          A dict ``name -> (height, width, 3) uint8 array``; empty when there is nothing
          to draw.
        """
        del features, seed
        return {}

    def activation_probe(self):
        """A function from a batch of inputs to the self-normalizing layers' outputs.

        Returns:
          A callable ``x -> {layer name: tensor}`` in inference mode, or None if the model
          has no such layer.
        """
        return layer_probe(self.backbone)

    def run_endpoint(self, name, inputs):
        """Runs one of `serving_endpoints` eagerly: the ``run`` callable of `artifact_metrics`."""
        from selu_zoo.tasks import endpoints  # noqa: PLC0415  (TensorFlow, for exports)

        return endpoints.find(self.serving_endpoints(), name)(inputs)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for name in self.submodels:
            config[name] = keras.saving.serialize_keras_object(getattr(self, name))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.submodels:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def single_input(backbone, what="backbone"):
    """The one ``keras.Input`` of a functional sub-model.

    Raises:
      ValueError: if ``backbone`` is not a functional model with exactly one input.
    """
    inputs = getattr(backbone, "inputs", None)
    if not isinstance(backbone, keras.Model) or not inputs or len(inputs) != 1:
        raise ValueError(f"the {what} must be a functional keras.Model with one input, got "
                         f"{type(backbone).__name__}")
    return inputs[0]
