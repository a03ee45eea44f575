"""The fields every model's config shares: data, training and their defaults."""

import ml_collections
from ml_collections import config_dict


def get_config():
    """Returns the shared part of every config; ``configs/<model>.py`` adds its own fields.

    Data: ``dataset`` is an embedded dataset (digits, breast_cancer, wine, iris,
    adding_problem), a TFDS catalog name (mnist, fashion_mnist, cifar10, ...; downloaded
    on first use unless --nodownload) or ``csv:PATH`` (``csv:TRAIN,VALIDATION,TEST`` for
    separate split files). ``feature_shape`` reshapes each example (e.g. ``(8, 8, 1)``);
    None keeps the stored shape. The ``label_column`` ... ``missing_values`` fields are
    for CSV files only.
    """
    config = ml_collections.ConfigDict()
    config.model = config_dict.placeholder(str)
    # --- Data ---
    config.dataset = "digits"
    config.feature_shape = config_dict.placeholder(tuple)
    config.clip_standardized = config_dict.placeholder(float)  # e.g. 10.0: bound on |x|
    config.label_column = config_dict.placeholder(str)  # CSV: header name or 0-based index
    config.header = "auto"  # CSV: "auto", "yes" or "no"
    config.exclude_columns = ()  # CSV: names or indices of columns that are not features
    config.task = "auto"  # CSV: "auto", "classification" or "regression"
    config.split_column = config_dict.placeholder(str)  # CSV: column of train/validation/test
    config.missing_values = "error"  # CSV: "error", or "mean" to impute the train mean
    # --- Training ---
    config.epochs = 30
    config.batch_size = 32
    config.steps_per_epoch = config_dict.placeholder(int)  # None: one pass over train
    # Train steps per tf.function call; None: the largest divisor of the epoch's steps up to
    # 32 (a whole number of calls per epoch). It changes speed, not results.
    config.steps_per_execution = config_dict.placeholder(int)
    # Resume checkpoint every N epochs; None: as often as it costs <= 4% of the epochs' time
    # (and at the end). A run resumes after its last checkpointed epoch.
    config.checkpoint_every = config_dict.placeholder(int)
    config.optimizer = "adam"  # any keras.optimizers.get name: adam, sgd, adamw, rmsprop...
    config.learning_rate = 1e-3
    config.momentum = config_dict.placeholder(float)  # for optimizers that take one (sgd)
    config.seed = 0  # weights, dropout masks, shuffling
    config.jit_compile = True  # XLA-compile the train step
    config.mixed_precision = config_dict.placeholder(str)  # "mixed_float16", "mixed_bfloat16"
    return config
