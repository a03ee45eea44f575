"""`VAE`: a variational autoencoder, ``decoder(VAESampling(encoder(features)))``."""

import math

import keras
import numpy as np

from selu_zoo import losses
from selu_zoo.layers import VAESampling
from selu_zoo.layers.vae import gaussian_kl
from selu_zoo.tasks import base, pictures

LIKELIHOODS = ("bernoulli", "gaussian")
# Posterior draws per example of the Monte Carlo ELBO that evaluation and exports report.
ELBO_SAMPLES = 20
# Examples per row of the picture.
PICTURE_COLUMNS = 8


@keras.saving.register_keras_serializable(package="selu_zoo")
class VAE(base.Task):
    """A variational autoencoder with a diagonal Gaussian posterior and an N(0, I) prior.

    The graph is ``decoder(sampling(encoder(features)))``; the sampling layer
    (`selu_zoo.layers.VAESampling`) adds ``kl_weight * KL(q(z | x) || N(0, I))`` as a loss,
    and `compile` defaults to the per-example reconstruction loss of ``likelihood``, so the
    training loss is the negative ELBO (one posterior draw per example). `training_pair`
    makes the features their own targets.

    The reported ELBO is `elbo`, a Monte Carlo estimate with `ELBO_SAMPLES` posterior draws
    per example built from the same two terms (the compiled reconstruction loss and
    `gaussian_kl`); evaluation, ``metrics.json`` and the export report all use it. Keras'
    own evaluation ``loss`` is different: inference uses ``z = z_mean``.

    Endpoints: ``reconstruct`` (the default; features -> ``x_mean``), ``encode`` (features
    -> ``z_mean``, ``z_log_var``), ``decode`` (``z`` -> ``x_mean``) and ``sample`` (``eps``,
    a draw from the prior, -> ``x_mean``). ``x_mean`` is the mean of p(x | z); Bernoulli
    models also return its logits as ``x_logits``.

    Args:
      encoder: a functional model from ``features`` to ``[z_mean, z_log_var]``.
      decoder: a functional model from ``z`` to the likelihood's parameter, shaped like the
        features: logits (Bernoulli) or the mean (Gaussian).
      likelihood: ``"bernoulli"`` or ``"gaussian"`` (with fixed ``gaussian_variance``).
      gaussian_variance: observation variance of the Gaussian likelihood.
      kl_weight: weight of the KL term in the training loss (1 is the ELBO).
      seed: seed of the posterior draws in training.
      image_shape: the shape to draw one example as an image; None draws examples whose
        features are images or square vectors.
      **kwargs: ``keras.Model`` arguments (``name``, ...).
    """

    kind = "vae"
    submodels = ("encoder", "decoder")

    def __init__(self, encoder, decoder, likelihood="bernoulli", gaussian_variance=1.0,
                 kl_weight=1.0, seed=None, image_shape=None, **kwargs):
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        inputs = base.single_input(encoder, "encoder")
        base.single_input(decoder, "decoder")
        # === Layers ===
        self.encoder, self.decoder = encoder, decoder
        self.sampling = VAESampling(seed=seed, kl_weight=kl_weight, dtype="float32",
                                    name="sampling")
        # === Functional model ===
        z_mean, z_log_var = encoder(inputs)
        super().__init__(inputs=inputs, outputs=decoder(self.sampling([z_mean, z_log_var])),
                         **kwargs)
        # === Config ===
        self.likelihood = likelihood
        self.gaussian_variance = float(gaussian_variance)
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.reconstruction_loss(reduction=None)  # validates gaussian_variance now

    @property
    def latent_dim(self):
        """The width of z."""
        return int(self.decoder.inputs[0].shape[-1])

    def reconstruction_loss(self, reduction="sum_over_batch_size"):
        """The negative log-likelihood of ``likelihood``, summed over features per example.

        Args:
          reduction: a Keras reduction; None gives one value per example.

        Returns:
          A `selu_zoo.losses.BernoulliReconstruction` (on logits) or
          `GaussianReconstruction`.
        """
        if self.likelihood == "bernoulli":
            return losses.BernoulliReconstruction(from_logits=True, reduction=reduction)
        return losses.GaussianReconstruction(variance=self.gaussian_variance,
                                             reduction=reduction)

    def default_loss(self):
        return self.reconstruction_loss()

    def training_pair(self, features, label):
        del label
        return features, features

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' loss, with the features as their own targets when ``fit(x)`` gives none."""
        return super().compute_loss(x=x, y=x if y is None else y, y_pred=y_pred,
                                    sample_weight=sample_weight, training=training)

    # --- Endpoints ---------------------------------------------------------------------------

    def _parameter_name(self):
        return "x_logits" if self.likelihood == "bernoulli" else "x_mean"

    def serving_endpoints(self):
        from selu_zoo.tasks import endpoints  # noqa: PLC0415  (TensorFlow, for exports)

        features_spec = endpoints.input_spec(self.inputs[0], "features")
        z_spec = endpoints.input_spec(self.decoder.inputs[0], "z")
        eps_spec = endpoints.input_spec(self.decoder.inputs[0], "eps")
        bernoulli = self.likelihood == "bernoulli"

        def encode(features):
            z_mean, z_log_var = self.encoder(features, training=False)
            return {"z_mean": endpoints.as_float32(z_mean),
                    "z_log_var": endpoints.as_float32(z_log_var)}

        def decode(z):
            parameter = endpoints.as_float32(self.decoder(z, training=False))
            if bernoulli:
                return {"x_mean": keras.ops.sigmoid(parameter), "x_logits": parameter}
            return {"x_mean": parameter}

        def reconstruct(features):
            return decode(encode(features)["z_mean"])

        def sample(eps):
            return decode(eps)  # the prior is N(0, I): z = eps, drawn by the caller

        return (endpoints.Endpoint("reconstruct", reconstruct, (features_spec,)),
                endpoints.Endpoint("encode", encode, (features_spec,)),
                endpoints.Endpoint("decode", decode, (z_spec,)),
                endpoints.Endpoint("sample", sample, (eps_spec,)))

    def endpoint_inputs(self, features, seed=0):
        """Features for ``reconstruct`` and ``encode``; their ``z_mean`` for ``decode``;
        N(0, I) draws (seeded) for ``sample``."""
        features = np.asarray(features, np.float32)
        z_mean = self.run_endpoint("encode", {"features": features})["z_mean"]
        eps = np.random.default_rng(seed).standard_normal(z_mean.shape).astype(np.float32)
        return {"reconstruct": {"features": features}, "encode": {"features": features},
                "decode": {"z": z_mean.astype(np.float32)}, "sample": {"eps": eps}}

    # --- The ELBO ----------------------------------------------------------------------------

    def elbo_terms(self, features, run=None, num_samples=ELBO_SAMPLES, seed=0, first_index=0):
        """Per-example Monte Carlo estimates of the two ELBO terms.

        ``reconstruction`` is ``-E_q[log p(x | z)]`` over ``num_samples`` posterior draws
        ``z = z_mean + exp(z_log_var / 2) * eps`` (the log-variance clipped as the sampling
        layer clips it), ``kl`` is ``KL(q(z | x) || N(0, I))``; the ELBO is
        ``-(reconstruction + kl)``. The draws of example ``i`` depend only on ``seed`` and
        ``first_index + i``, so an example's estimate is the same in any batch and for any
        artifact.

        Args:
          features: NumPy features, shape ``(n, *feature_shape)``.
          run: ``run(endpoint, inputs) -> outputs`` of the artifact to score; the model
            itself when None.
          num_samples: posterior draws per example.
          seed: seed of the draws.
          first_index: the index of the first example in its dataset.

        Returns:
          ``(reconstruction, kl)``: float64 arrays of shape ``(n,)``.
        """
        run = run or self.run_endpoint
        features = np.asarray(features, np.float32)
        encoded = run("encode", {"features": features})
        z_mean = encoded["z_mean"].astype(np.float32)
        z_log_var = np.clip(encoded["z_log_var"].astype(np.float32),
                            self.sampling.min_log_var, self.sampling.max_log_var)
        eps = np.stack([np.random.default_rng([seed, first_index + i]).standard_normal(
            (num_samples, z_mean.shape[-1])) for i in range(len(features))]).astype(np.float32)
        nll = self.reconstruction_loss(reduction=None)
        reconstruction = np.zeros(len(features))
        for s in range(num_samples):
            z = z_mean + np.exp(0.5 * z_log_var) * eps[:, s]
            parameter = run("decode", {"z": z})[self._parameter_name()]
            reconstruction += np.asarray(nll(features, parameter), np.float64) / num_samples
        kl = np.asarray(gaussian_kl(z_mean, z_log_var), np.float64)
        return reconstruction, kl

    def elbo(self, features, run=None, num_samples=ELBO_SAMPLES, seed=0, first_index=0):
        """Per-example Monte Carlo ELBO in nats (see `elbo_terms`); a ``(n,)`` float64 array."""
        reconstruction, kl = self.elbo_terms(features, run, num_samples, seed, first_index)
        return -(reconstruction + kl)

    def evaluation_metrics(self, batches, seed=0):
        """The mean ELBO (`elbo`) over a dataset of ``(features, label)`` batches."""
        values, seen = [], 0
        for x, _ in batches.as_numpy_iterator():
            values.append(self.elbo(x, seed=seed, first_index=seen))
            seen += len(x)
        return {"elbo": float(np.mean(np.concatenate(values)))}

    def artifact_metrics(self, features, labels, run, seed=0):
        del labels
        reconstruction, kl = self.elbo_terms(features, run, seed=seed)
        x_mean = run("reconstruct", {"features": np.asarray(features, np.float32)})["x_mean"]
        error = x_mean.astype(np.float64) - np.asarray(features, np.float64)
        return {"elbo": float(np.mean(-(reconstruction + kl))),
                "reconstruction": float(np.mean(reconstruction)), "kl": float(np.mean(kl)),
                "mse": float(np.mean(error ** 2))}

    # --- Pictures and probes -----------------------------------------------------------------

    def _picture_shape(self):
        if self.image_shape is not None:
            return self.image_shape
        shape = tuple(int(d) for d in self.inputs[0].shape[1:])
        if len(shape) in (2, 3):
            return shape
        side = math.isqrt(shape[0]) if len(shape) == 1 else 0
        return (side, side) if side and side * side == shape[0] else None

    def pictures(self, features, seed=0):
        """Originals, their reconstructions, and samples from the prior, one labeled row each.

        Args:
          features: NumPy features; the first `PICTURE_COLUMNS` are drawn.
          seed: seed of the prior draws.

        Returns:
          ``{"vae_samples": image}``, or ``{}`` if examples cannot be drawn as images.
        """
        shape = self._picture_shape()
        if shape is None:
            return {}
        originals = np.asarray(features[:PICTURE_COLUMNS], np.float32)
        eps = np.random.default_rng(seed).standard_normal(
            (PICTURE_COLUMNS, self.latent_dim)).astype(np.float32)
        rows = {"originals": originals,
                "reconstructions": self.run_endpoint("reconstruct",
                                                     {"features": originals})["x_mean"],
                "samples": self.run_endpoint("sample", {"eps": eps})["x_mean"]}
        return {"vae_samples": pictures.image_rows(
            {label: np.reshape(images, (-1, *shape)) for label, images in rows.items()})}

    def activation_probe(self):
        encoder_probe = base.layer_probe(self.encoder, prefix="encoder/")
        decoder_probe = base.layer_probe(self.decoder, prefix="decoder/")

        def probe(features):
            outputs = dict(encoder_probe(features, training=False)) if encoder_probe else {}
            if decoder_probe is not None:
                z_mean, _ = self.encoder(features, training=False)
                outputs.update(decoder_probe(z_mean, training=False))
            return outputs

        return probe

    def get_config(self):
        return {**super().get_config(), "likelihood": self.likelihood,
                "gaussian_variance": self.gaussian_variance, "kl_weight": self.kl_weight,
                "seed": self.seed, "image_shape": self.image_shape}
