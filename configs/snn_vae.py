"""`snn_vae`, the self-normalizing VAE, on digits (64 pixels in [0, 1])."""

from configs import base


def get_config():
    """Returns the default `snn_vae` config (Bernoulli likelihood)."""
    config = base.get_config()
    config.model = "snn_vae"
    config.epochs = 50
    config.clip_standardized = 10.0  # one nearly constant pixel standardizes to 87 otherwise
    config.depth = 4  # hidden SELUDense layers in the encoder, and again in the decoder
    config.width = 128
    config.dropout_rate = 0.0
    config.residual = False
    config.latent_dim = 8
    config.likelihood = "bernoulli"  # or "gaussian"
    config.gaussian_variance = 0.1  # observation variance of the Gaussian likelihood
    config.kl_weight = 1.0
    return config
