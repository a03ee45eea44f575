"""`train_and_evaluate`: config -> dataset -> model -> fit -> test metrics -> exports.

train.py parses flags and calls this; tests and notebooks can call it directly.

Under a ``tf.distribute`` strategy the model is built and compiled inside ``strategy.scope()``
and trained with Keras ``fit`` where that works (one device; ``mirrored`` without XLA;
``tpu``), else with the custom loop of `selu_zoo.distribute` (``multi_worker``; ``mirrored``
with ``config.jit_compile``). Either way the global batch size is ``config.batch_size`` and the
learning rate is used as configured (not scaled with the number of replicas). In a
multi-worker run only the chief writes checkpoints, logs, ``metrics.json``, the PNG and the
exports.
"""

import json
import math
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from models import registry, vae as vae_models
from selu_zoo import callbacks, datasets, distribute, export

VAE_MODELS = ("snn_vae",)
_PROBE_SIZE = 256
_IMAGE_EXAMPLES = 8
_REPRESENTATIVE_EXAMPLES = 256
_ELBO_SAMPLES = 20
LOOPS = ("auto", "fit", "custom")


def _atomic_write_json(path, payload):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def _as_autoencoder(dataset):
    """Maps ``(features, label)`` batches to ``(features, features)`` for the VAE."""
    return dataset.map(lambda x, _: (x, x), num_parallel_calls=tf.data.AUTOTUNE)


def _image_shape(info, config):
    """Shape of one image for VAE pictures: the config's ``image_shape``, else a square guess."""
    if config.get("image_shape") is not None:
        return tuple(config.image_shape)
    size = int(np.prod(info.feature_shape))
    side = math.isqrt(size)
    return (side, side) if side * side == size else None


def _backup_epoch(backup_dir):
    """The epoch a previous interrupted run reached, from Keras' BackupAndRestore metadata."""
    path = os.path.join(backup_dir, "training_metadata.json")
    try:
        with open(path, encoding="utf-8") as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError):
        return None


def _make_callbacks(config, model_name, workdir, probe, info, *, keras_fit):
    """The chief's callbacks; with ``keras_fit`` also the resume backup and the NaN stop.

    (The custom loop checkpoints, resumes and stops on NaN by itself.)
    """
    log_dir = os.path.join(workdir, "logs")
    best = callbacks.BestModelCheckpoint(os.path.join(workdir, "checkpoints", "best.keras"),
                                         monitor="val_loss")
    result = [
        best,
        keras.callbacks.TensorBoard(log_dir, write_graph=keras_fit),
        callbacks.SelfNormalizationMonitor(probe, log_dir=os.path.join(log_dir,
                                                                       "self_normalization")),
    ]
    if keras_fit:
        result[:0] = [keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup"),
                                                       double_checkpoint=True),
                      keras.callbacks.TerminateOnNaN()]
    image_shape = _image_shape(info, config)
    if model_name in VAE_MODELS and image_shape is not None:
        noise = np.random.default_rng(config.seed).normal(
            size=(_IMAGE_EXAMPLES, config.latent_dim)).astype(np.float32)
        result.append(callbacks.VAEImageLogger(probe[:_IMAGE_EXAMPLES], noise, image_shape,
                                               os.path.join(log_dir, "vae_images")))
    return result, best


def _write_vae_png(model, probe, config, info, path):
    image_shape = _image_shape(info, config)
    if image_shape is None:
        return None
    noise = np.random.default_rng(config.seed).normal(
        size=(2 * _IMAGE_EXAMPLES, config.latent_dim)).astype(np.float32)
    originals, reconstructions, samples = callbacks.vae_images(
        model, probe[:_IMAGE_EXAMPLES], noise, image_shape)
    rows = np.concatenate([originals, reconstructions, samples])
    png = tf.io.encode_png(callbacks.image_grid(rows, _IMAGE_EXAMPLES))
    tmp = f"{path}.tmp-{os.getpid()}"
    tf.io.write_file(tmp, png)
    os.replace(tmp, path)
    return path


def choose_loop(loop, strategy, config):
    """``"fit"`` or ``"custom"``: the training loop for ``loop`` (one of `LOOPS`) and ``strategy``.

    Args:
      loop: ``"auto"`` (Keras fit where it works, else the custom loop), ``"fit"`` or
        ``"custom"``.
      strategy: the ``tf.distribute.Strategy``.
      config: the experiment ConfigDict (``jit_compile`` matters).

    Returns:
      ``"fit"`` or ``"custom"``.

    Raises:
      ValueError: for an unknown loop, or ``"fit"`` where Keras fit fails.
    """
    if loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}; choose one of {', '.join(LOOPS)}")
    jit_compile = bool(config.get("jit_compile", False))
    fit_works = distribute.uses_keras_fit(strategy, jit_compile=jit_compile)
    if loop == "fit" and not fit_works:
        raise ValueError(
            f"--loop=fit does not work under {distribute.strategy_name(strategy)} with "
            f"{strategy.num_replicas_in_sync} replicas (jit_compile={jit_compile}) in Keras "
            f"{keras.__version__}; use --loop=custom or auto")
    if loop == "auto":
        return "fit" if fit_works else "custom"
    return loop


def _fit(model, splits, config, callback_list, workdir):
    """Keras fit; returns ``(history dict, epoch resumed from or None)``."""
    resumed_from = _backup_epoch(os.path.join(workdir, "backup"))
    if resumed_from is not None:
        logging.info("resuming an interrupted run from epoch %d (backup in %s)",
                     resumed_from, os.path.join(workdir, "backup"))
    history = model.fit(
        splits["train"], validation_data=splits["validation"], epochs=config.epochs,
        steps_per_epoch=config.get("steps_per_epoch"), callbacks=callback_list,
        verbose=1 if sys.stdout.isatty() else 2)
    return history.history, resumed_from


def _custom_loop(model, strategy, splits, info, config, callback_list, workdir):
    """`selu_zoo.distribute.train`; returns ``(history dict, epoch resumed from or None)``.

    Checkpoints go to ``<workdir>/backup`` (the chief's; other workers write temporary
    copies) and are removed by the chief after a finished run, like Keras' BackupAndRestore.
    An epoch is ``config.steps_per_epoch`` steps, else the full global batches of one pass
    over the train split.
    """
    backup_dir = os.path.join(workdir, "backup")
    steps = config.get("steps_per_epoch") or max(
        1, info.num_examples["train"] // config.batch_size)
    result = distribute.train(
        model, strategy, splits["train"].unbatch(), global_batch_size=config.batch_size,
        epochs=config.epochs, steps_per_epoch=steps, checkpoint_dir=backup_dir,
        validation_examples=splits["validation"].unbatch(), callbacks=callback_list,
        jit_compile=bool(config.get("jit_compile", False)))
    if distribute.is_chief(strategy):
        shutil.rmtree(backup_dir, ignore_errors=True)
    return result.history, result.initial_epoch or None


def train_and_evaluate(config, *, model_name, workdir, export_dir=None, data_dir=None,
                       keep_versions=5, serving_base_path=None, strategy=None, loop="auto"):
    """Trains ``model_name`` as ``config`` says, evaluates on the test split and exports.

    Resumes from ``<workdir>/backup`` when an earlier run of the same command was interrupted.
    The model evaluated and exported is the best checkpoint on the validation loss.

    Args:
      config: the experiment ConfigDict (``configs/<model>.py`` plus overrides).
      model_name: a registered model name.
      workdir: folder for logs, checkpoints, the resume backup and ``metrics.json``; in a
        multi-worker run, on storage that every worker reads (the chief writes it).
      export_dir: export root, or None to skip exports.
      data_dir: TFDS data folder, or None for TFDS's default.
      keep_versions: SavedModel versions to keep per model.
      serving_base_path: the export root as TensorFlow Serving sees it, for models.config.
      strategy: a ``tf.distribute.Strategy`` (`selu_zoo.distribute.make_strategy`), or None
        for the default one. ``config.batch_size`` is the global batch size; the learning rate
        is not scaled with the number of replicas.
      loop: ``"auto"``, ``"fit"`` or ``"custom"`` (see `choose_loop`).

    Returns:
      A summary dict: test metrics and the path of every artifact. On a multi-worker run's
      non-chief workers, which neither evaluate nor write anything, ``{"chief": False,
      "metrics": None, "artifacts": {}}``.

    Raises:
      ValueError: for an unknown dataset, a config that does not fit the dataset, or a batch
        size the replicas do not divide.
      RuntimeError: if training diverged (NaN/inf loss).
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    loop = choose_loop(loop, strategy, config)
    distribute.per_replica_batch_size(strategy, config.batch_size)
    logging.info("training %s with %s (%d replica(s)), loop %s, global batch %d, learning "
                 "rate %g", model_name, distribute.strategy_name(strategy),
                 strategy.num_replicas_in_sync, loop, config.batch_size, config.learning_rate)
    keras.utils.set_random_seed(config.seed)
    feature_shape = config.get("feature_shape")
    # Workers of a cluster on one machine share data_dir: the chief prepares it first.
    splits, info = distribute.chief_first(strategy, lambda: datasets.make_datasets(
        config.dataset, config.batch_size, feature_shape=feature_shape, data_dir=data_dir,
        shuffle_seed=config.seed))
    vae = model_name in VAE_MODELS
    if vae:
        splits = {name: _as_autoencoder(ds) for name, ds in splits.items()}
    with strategy.scope():
        model = registry.build_model(model_name, config, info)
        registry.compile_model(model, config)

    x_val, _ = datasets.load_arrays(config.dataset, "validation", feature_shape=feature_shape,
                                    data_dir=data_dir)
    probe = x_val[:_PROBE_SIZE]
    callback_list, best = _make_callbacks(config, model_name, workdir, probe, info,
                                          keras_fit=loop == "fit")
    if not chief:  # nothing that writes files; the loop's checkpoints go to a temporary place
        callback_list, best = [], None
    diverged = RuntimeError(
        f"training of {model_name} diverged (loss became NaN or inf); lower "
        f"--config.learning_rate (now {config.learning_rate}) or check the data")
    if loop == "fit":
        history, resumed_from = _fit(model, splits, config, callback_list, workdir)
    else:
        try:
            history, resumed_from = _custom_loop(model, strategy, splits, info, config,
                                                 callback_list, workdir)
        except distribute.NonFiniteLossError:
            raise diverged from None
    losses = history.get("loss", [])
    trained = bool(losses) or resumed_from is not None  # a resumed run may have nothing left
    if not trained or not all(math.isfinite(v) for v in losses) or (
            chief and best.best is None):
        raise diverged
    if not chief:
        logging.info("training done; the chief evaluates and exports")
        return {"chief": False, "metrics": None, "artifacts": {}}

    model = keras.models.load_model(best.filepath)
    test_metrics = model.evaluate(splits["test"], return_dict=True, verbose=0)
    test_arrays = datasets.load_arrays(config.dataset, "test", feature_shape=feature_shape,
                                       data_dir=data_dir)
    if vae:  # Keras' loss uses the posterior mean in inference; the ELBO samples z ~ q(z|x).
        x_test = test_arrays[0]
        test_metrics["elbo"] = -float(np.mean(vae_models.negative_elbo(
            model, x_test, loss=vae_models.reconstruction_loss(config, reduction=None),
            num_samples=_ELBO_SAMPLES, seed=config.seed)))
    metrics = {
        "model": model_name, "dataset": config.dataset,
        "test": {k: float(v) for k, v in test_metrics.items()},
        "best_epoch": best.best_epoch, "best_val_loss": best.best,
        "epochs": config.epochs, "resumed_from_epoch": resumed_from,
        "parameters": model.count_params(),
        "strategy": distribute.strategy_name(strategy),
        "replicas": strategy.num_replicas_in_sync,
        "loop": loop, "global_batch_size": config.batch_size,
    }
    metrics_path = os.path.join(workdir, "metrics.json")
    _atomic_write_json(metrics_path, metrics)
    artifacts = {"metrics": metrics_path, "best_checkpoint": best.filepath,
                 "tensorboard": os.path.join(workdir, "logs")}
    if vae:
        artifacts["vae_png"] = _write_vae_png(model, probe, config, info,
                                              os.path.join(workdir, "vae_samples.png"))
    if export_dir is not None:
        artifacts.update(_export(model, model_name, config, export_dir, data_dir, test_arrays,
                                 keep_versions, serving_base_path))
    logging.info("test metrics of %s on %s: %s", model_name, config.dataset,
                 ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items()))
    for name, path in artifacts.items():
        logging.info("artifact %-16s %s", name, path)
    return {"chief": True, "metrics": metrics, "artifacts": artifacts}


def _export(model, model_name, config, export_dir, data_dir, test_arrays, keep_versions,
            serving_base_path):
    """Exports with train-split representative data and the test split for verification."""
    x_train, _ = datasets.load_arrays(config.dataset, "train",
                                      feature_shape=config.get("feature_shape"),
                                      data_dir=data_dir)
    x_test, y_test = test_arrays
    result = export.export_all(
        model, export_dir, model_name,
        representative_data=x_train[:_REPRESENTATIVE_EXAMPLES],
        validation_data=(x_test, x_test if model_name in VAE_MODELS else y_test),
        keep_versions=keep_versions, serving_base_path=serving_base_path)
    artifacts = {"saved_model": result["saved_model"], "keras": result["keras"],
                 "tflite_report": result["report"], "models_config": result["models_config"]}
    artifacts.update({f"tflite_{variant}": path for variant, path in result["tflite"].items()})
    return artifacts
