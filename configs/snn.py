"""Default config of `snn`, the self-normalizing MLP, on breast_cancer (30 features)."""

import ml_collections
from ml_collections import config_dict


def get_config():
    """Returns the default `snn` ConfigDict (also good on digits with dataset="digits")."""
    config = ml_collections.ConfigDict()
    config.model = "snn"
    config.dataset = "breast_cancer"
    config.feature_shape = config_dict.placeholder(tuple)  # None: the dataset's, flattened
    config.clip_standardized = config_dict.placeholder(float)  # e.g. 10.0
    # Model.
    config.depth = 4
    config.width = 256
    config.dropout_rate = 0.05
    config.residual = False
    # Training.
    config.epochs = 30
    config.batch_size = 32
    config.optimizer = "adam"
    config.learning_rate = 3e-4
    config.momentum = 0.0
    config.seed = 0
    config.jit_compile = True
    config.mixed_precision = config_dict.placeholder(str)  # e.g. "mixed_bfloat16"
    config.steps_per_epoch = config_dict.placeholder(int)
    return config
