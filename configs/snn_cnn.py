"""`snn_cnn`, the self-normalizing CNN, on digits as 8x8x1 images."""

from configs import base


def get_config():
    """Returns the default `snn_cnn` config."""
    config = base.get_config()
    config.model = "snn_cnn"
    config.feature_shape = (8, 8, 1)
    config.filters = (32, 64, 128)  # one stage each; stages after the first halve the size
    config.convs_per_stage = 1
    config.kernel_size = 3  # odd
    config.padding = "reflect"  # or "symmetric", "zeros"
    config.downsample = "stride"  # or "avg_pool"
    config.dropout_rate = 0.05  # feature alpha dropout after each stage
    return config
