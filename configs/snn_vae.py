"""Default config of `snn_vae`, the self-normalizing VAE, on digits (64 pixels in [0, 1])."""

import ml_collections
from ml_collections import config_dict


def get_config():
    """Returns the default `snn_vae` ConfigDict (Bernoulli likelihood)."""
    config = ml_collections.ConfigDict()
    config.model = "snn_vae"
    config.dataset = "digits"
    config.feature_shape = config_dict.placeholder(tuple)  # None: the dataset's
    # Model.
    config.depth = 4  # hidden SELUDense layers in the encoder, and again in the decoder
    config.width = 128
    config.dropout_rate = 0.0
    config.clip_standardized = 10.0  # limit standardized inputs to [-10, 10]
    config.latent_dim = 8
    config.likelihood = "bernoulli"  # or "gaussian"
    config.gaussian_variance = 0.1  # observation variance when likelihood == "gaussian"
    config.kl_weight = 1.0
    config.residual = False
    # Training.
    config.epochs = 50
    config.batch_size = 32
    config.optimizer = "adam"
    config.learning_rate = 1e-3
    config.momentum = 0.0
    config.seed = 0
    config.jit_compile = True
    config.mixed_precision = config_dict.placeholder(str)
    config.steps_per_epoch = config_dict.placeholder(int)
    return config
