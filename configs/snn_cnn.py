"""Default config of `snn_cnn`, the self-normalizing CNN, on digits as 8x8x1 images."""

import ml_collections
from ml_collections import config_dict


def get_config():
    """Returns the default `snn_cnn` ConfigDict."""
    config = ml_collections.ConfigDict()
    config.model = "snn_cnn"
    config.dataset = "digits"
    config.feature_shape = (8, 8, 1)
    config.clip_standardized = config_dict.placeholder(float)  # e.g. 10.0
    # Model.
    config.filters = (32, 64, 128)
    config.convs_per_stage = 1
    config.kernel_size = 3
    config.padding = "reflect"  # or "symmetric", "zeros"
    config.downsample = "stride"  # or "avg_pool"
    config.dropout_rate = 0.05
    # Training.
    config.epochs = 30
    config.batch_size = 32
    config.optimizer = "adam"
    config.learning_rate = 1e-3
    config.momentum = 0.0
    config.seed = 0
    config.jit_compile = True
    config.mixed_precision = config_dict.placeholder(str)
    config.steps_per_epoch = config_dict.placeholder(int)
    return config
