"""`snn`, the self-normalizing MLP, on breast_cancer (30 features)."""

from configs import base


def get_config():
    """Returns the default `snn` config (also good on digits with dataset="digits")."""
    config = base.get_config()
    config.model = "snn"
    config.dataset = "breast_cancer"
    config.learning_rate = 3e-4
    config.depth = 4  # SELUDense blocks
    config.width = 256
    config.dropout_rate = 0.05  # alpha dropout after each block
    config.residual = False  # blocks (h + f(h)) / sqrt(2)
    return config
