"""Activation mean and variance per layer, at initialization and after training.

The paper's central claim: with SELU and LeCun-normal weights (variance 1/fan_in) the
activations of every layer stay near mean 0 and variance 1, however deep the network,
while other activation/initialization pairs drift. This experiment measures the pooled
mean and variance (over units and examples) of each hidden layer's output in inference
mode:

* at initialization, for N(0, 1) inputs (``probe_examples`` x ``input_dim``), averaged
  over ``seeds`` weight draws (width 256: at width 128 the depth-64 variance of
  SELU + LeCun varied between 0.90 and 1.16 over ten weight draws, at 256 between 0.96
  and 1.10);
* after ``train_epochs`` epochs of plain SGD on standardized digits (the same
  architectures at width 128 with a linear softmax head), on the standardized test
  split.
"""

import os

import numpy as np
from absl import logging
from ml_collections import ConfigDict

from experiments import common, models, plotting, training
from selu_zoo.callbacks import activation_statistics

NAME = "activation_stats"
TABLE_LAYERS = (1, 2, 4, 8, 16, 32, 64)


def get_settings(quick=False):
    """The experiment's settings.

    Args:
      quick: tiny settings for tests (the depth stays 64, the training is one epoch of
        a depth-4 network).

    Returns:
      A ``ConfigDict``.
    """
    s = ConfigDict()
    s.variants = ["selu_lecun", "selu_glorot", "relu_glorot", "relu_he", "tanh_glorot",
                  "elu_lecun"]
    s.depth = 64
    s.width = 256
    s.input_dim = 64  # as digits
    s.probe_examples = 1024
    s.seeds = 3
    s.train_dataset = "digits"
    s.train_depth = 64
    s.train_width = 128  # a quarter of the training cost of width 256
    s.train_epochs = 5
    s.train_batch_size = 64
    s.train_learning_rate = 0.01
    if quick:
        s.probe_examples = 512
        s.seeds = 1
        s.train_depth = 4
        s.train_epochs = 1
    return s


def _summarize(per_seed):
    """Mean, min and max over seeds of per-layer statistics.

    Args:
      per_seed: list (seeds) of arrays ``(layers, 2)`` of (mean, variance).

    Returns:
      Dict of per-layer lists: mean, variance, and their min/max over seeds.
    """
    stats = np.asarray(per_seed, np.float64)  # (seeds, layers, 2)
    return {
        "mean": stats[..., 0].mean(0), "variance": stats[..., 1].mean(0),
        "mean_min": stats[..., 0].min(0), "mean_max": stats[..., 0].max(0),
        "variance_min": stats[..., 1].min(0), "variance_max": stats[..., 1].max(0),
    }


def _layer_statistics(model, inputs):
    """Per-layer (mean, variance) of the ``hidden_<i>`` outputs, ordered by depth.

    Args:
      model: a model from `models.build_mlp`.
      inputs: a probe batch.

    Returns:
      float64 array ``(depth, 2)``.
    """
    recorded = activation_statistics(model, inputs, select=models.is_hidden_output)
    order = sorted(recorded, key=lambda name: int(name.rsplit("_", 1)[1]))
    return np.array([recorded[name] for name in order], np.float64)


def at_initialization(settings):
    """Statistics of untrained networks on N(0, 1) inputs.

    Args:
      settings: from `get_settings`.

    Returns:
      Dict variant -> `_summarize` output.
    """
    results = {}
    for variant in settings.variants:
        per_seed = []
        for seed in range(settings.seeds):
            common.set_seed(seed)
            model = models.build_mlp(variant, settings.input_dim, settings.depth,
                                     settings.width)
            rng = np.random.default_rng(seed)
            probe = rng.standard_normal(
                (settings.probe_examples, settings.input_dim)).astype(np.float32)
            per_seed.append(_layer_statistics(model, probe))
        results[variant] = _summarize(per_seed)
        logging.info("%s at init, layer %d: mean %.4f variance %.4g", variant,
                     settings.depth, results[variant]["mean"][-1],
                     results[variant]["variance"][-1])
    return results


def after_training(settings, data_dir=None):
    """Statistics of networks trained briefly with SGD, on the standardized test split.

    Args:
      settings: from `get_settings`.
      data_dir: TFDS data directory for the embedded dataset.

    Returns:
      Dict variant -> `_summarize` output plus ``train_loss`` and ``test_accuracy``
      (mean over seeds; NaN when training diverged).
    """
    splits, info = common.load_standardized(settings.train_dataset, data_dir)
    x_train, y_train = splits["train"]
    x_test, y_test = splits["test"]
    results = {}
    for variant in settings.variants:
        trainer = None
        per_seed, losses, accuracies = [], [], []
        for seed in range(settings.seeds):
            common.set_seed(seed)
            model = models.build_mlp(variant, x_train.shape[1], settings.train_depth,
                                     settings.train_width, num_classes=info.num_classes)
            if trainer is None:
                trainer = training.Trainer(model)
            trainer.reset(model.get_weights(), settings.train_learning_rate)
            batches = training.epoch_batches(len(x_train), settings.train_batch_size,
                                             settings.train_epochs,
                                             np.random.default_rng(seed))
            step_losses = trainer.train(x_train, y_train, batches)
            steps_per_epoch = len(batches) // settings.train_epochs
            losses.append(step_losses[-steps_per_epoch:].mean())
            accuracies.append(trainer.evaluate(x_test, y_test)[1])
            per_seed.append(_layer_statistics(trainer.model, x_test))
        results[variant] = _summarize(per_seed)
        results[variant]["train_loss"] = float(np.mean(losses))
        results[variant]["test_accuracy"] = float(np.mean(accuracies))
        logging.info("%s trained: last-epoch loss %.4f, test accuracy %.3f, layer %d mean "
                     "%.4f variance %.4g", variant, np.mean(losses), np.mean(accuracies),
                     settings.train_depth, results[variant]["mean"][-1],
                     results[variant]["variance"][-1])
    return results


def _table(phase_results, depth):
    """Markdown table of mean / variance at `TABLE_LAYERS` for one phase."""
    layers = [layer for layer in TABLE_LAYERS if layer <= depth]
    headers = ["variant"] + [f"layer {layer}" for layer in layers]
    extra = "train_loss" in next(iter(phase_results.values()))
    if extra:
        headers += ["last-epoch train loss", "test accuracy"]
    rows = []
    for variant, stats in phase_results.items():
        row = [models.VARIANTS[variant].label] + [
            f"{common.fmt(stats['mean'][layer - 1])} / "
            f"{common.fmt(stats['variance'][layer - 1])}" for layer in layers]
        if extra:
            row += [common.fmt(stats["train_loss"], ".4f"),
                    common.fmt(stats["test_accuracy"], ".3f")]
        rows.append(row)
    return common.markdown_table(headers, rows)


def markdown(results):
    """The results as Markdown.

    Args:
      results: from `run`.

    Returns:
      A Markdown string.
    """
    s = results["settings"]
    return "\n".join([
        "# Activation statistics vs depth",
        "",
        f"Cells: mean / variance of a hidden layer's output (pooled over units and "
        f"examples), averaged over {s['seeds']} seed(s).",
        "",
        f"## At initialization: N(0, 1) inputs ({s['probe_examples']} x {s['input_dim']}), "
        f"depth {s['depth']}, width {s['width']}",
        "",
        _table(results["init"], s["depth"]),
        f"## After {s['train_epochs']} epoch(s) of SGD (learning rate "
        f"{s['train_learning_rate']}, batch {s['train_batch_size']}) on standardized "
        f"{s['train_dataset']}, depth {s['train_depth']}, width {s['train_width']}; probe: "
        "the standardized test split",
        "",
        _table(results["trained"], s["train_depth"]),
        "Glorot uniform has variance 2 / (fan_in + fan_out): equal to LeCun's 1 / fan_in "
        "for the square hidden layers, so SELU + Glorot differs from SELU + LeCun only in "
        "the first layer (64 -> width inputs), whose smaller variance SELU pulls back.",
        "",
    ])


def plot(results, output_dir):
    """Draws mean and variance vs layer index (rows: at init, trained).

    Args:
      results: from `run`.
      output_dir: folder for ``activation_stats.png``.

    Returns:
      List of the PNG paths written (empty without matplotlib).
    """
    plt = plotting.pyplot()
    s = results["settings"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    phases = [("init", f"at init, N(0,1) inputs, width {s['width']}"),
              ("trained", f"after {s['train_epochs']} epoch(s) SGD on {s['train_dataset']}, "
                          f"width {s['train_width']}")]
    panels = [("mean", "mean"), ("variance", "variance (log)"),
              ("variance", "variance (linear, zoom)")]
    for row, (phase, title) in enumerate(phases):
        for variant, stats in results[phase].items():
            layers = np.arange(1, len(stats["mean"]) + 1)
            label = models.VARIANTS[variant].label
            color = None
            for col, (key, _) in enumerate(panels):
                ax = axes[row, col]
                values = np.asarray(stats[key], np.float64)
                line, = ax.plot(layers, values, label=label, lw=1.6, color=color)
                color = line.get_color()
                if s["seeds"] > 1:
                    ax.fill_between(layers, np.asarray(stats[f"{key}_min"], np.float64),
                                    np.asarray(stats[f"{key}_max"], np.float64),
                                    color=color, alpha=0.15, lw=0)
        for col, (key, name) in enumerate(panels):
            ax = axes[row, col]
            ax.axhline(0.0 if key == "mean" else 1.0, color="k", lw=0.6, ls=":")
            ax.set_title(f"{name}, {title}", fontsize=9)
            ax.set_xlabel("layer")
        axes[row, 0].set_ylim(-0.5, 1.0)
        axes[row, 1].set_yscale("log")
        axes[row, 2].set_ylim(0.0, 2.0)
    axes[0, 1].legend(fontsize=8, loc="lower left")
    band = " (band: min/max over seeds)" if s["seeds"] > 1 else ""
    fig.suptitle(f"Activation statistics per layer{band}")
    path = os.path.join(output_dir, f"{NAME}.png")
    plotting.save(fig, path)
    return [path]


def run(settings, data_dir=None):
    """Measures the statistics at initialization and after training.

    Args:
      settings: from `get_settings`.
      data_dir: TFDS data directory for the embedded dataset.

    Returns:
      The results dict (JSON-ready): settings, labels, ``init`` and ``trained``, each
      variant -> per-layer lists (see `_summarize`).
    """
    return common.jsonable({
        "settings": settings.to_dict(),
        "labels": {v: models.VARIANTS[v].label for v in settings.variants},
        "init": at_initialization(settings),
        "trained": after_training(settings, data_dir)})
