"""Training loss over epochs: SNNs vs ReLU MLPs with and without batch normalization.

The analogue of the paper's Figure 1 (there: MNIST and CIFAR10, 8 to 32 layers). Every
network is trained with plain minibatch SGD, the paper's optimizer. For each dataset,
depth and variant the learning rate is picked from a small grid by the validation loss
after the last epoch of a seed-0 run; the chosen learning rate is then trained with
``seeds`` seeds (weights, shuffling, dropout) and the per-epoch training loss (the mean
minibatch loss of the epoch, in training mode) is reported as mean, standard
deviation, min and max over seeds.

Datasets: the embedded UCI ``digits`` always; ``mnist`` when it is prepared in the TFDS
``data_dir`` (selu_zoo never downloads; otherwise it is skipped with a log line and
recorded as skipped), on its first ``mnist_train_examples`` training images.
"""

import math
import os

import numpy as np
from absl import logging
from ml_collections import ConfigDict

from experiments import common, models, plotting, training
from selu_zoo import datasets

NAME = "training_curves"


def get_settings(quick=False):
    """The experiment's settings.

    Args:
      quick: tiny settings for tests.

    Returns:
      A ``ConfigDict``.
    """
    s = ConfigDict()
    s.datasets = ["digits", "mnist"]
    s.variants = ["snn", "relu_bn", "relu"]
    s.depths = [8, 16, 32]
    s.width = 128
    s.learning_rates = [0.01, 0.03, 0.1]
    s.epochs = 20
    s.batch_size = 64
    s.seeds = 3
    s.mnist_train_examples = 10000
    if quick:
        s.depths = [4]
        s.width = 32
        s.learning_rates = [0.01, 0.1]
        s.epochs = 2
        s.seeds = 1
        s.mnist_train_examples = 1000
    return s


def _validation_loss(value):
    """NaN (diverged) becomes +inf so that it loses every comparison."""
    return value if math.isfinite(value) else math.inf


def _train_once(trainer, build, splits, learning_rate, seed, settings):
    """Trains one network from scratch and evaluates it on the validation split.

    Args:
      trainer: a `training.Trainer` for this architecture.
      build: zero-argument function building a fresh model of the architecture.
      splits: from `common.load_standardized`.
      learning_rate: SGD step size.
      seed: seed of the weights, the shuffling and the dropout masks.
      settings: from `get_settings`.

    Returns:
      ``(epoch_losses, validation_loss, validation_accuracy)``.
    """
    common.set_seed(seed)
    trainer.reset(build().get_weights(), learning_rate)
    x, y = splits["train"]
    batches = training.epoch_batches(len(x), settings.batch_size, settings.epochs,
                                     np.random.default_rng(seed))
    losses = trainer.train(x, y, batches).reshape(settings.epochs, -1).mean(axis=1)
    val_loss, val_accuracy = trainer.evaluate(*splits["validation"])
    return losses, val_loss, val_accuracy


def curves(splits, num_classes, settings):
    """Learning-rate search and seeded runs for every depth and variant of one dataset.

    Args:
      splits: from `common.load_standardized`.
      num_classes: number of classes.
      settings: from `get_settings`.

    Returns:
      Dict ``"depth_<d>"`` -> variant -> results (chosen learning rate, the search's
      validation losses, per-epoch training-loss statistics over seeds, final values).
    """
    input_dim = splits["train"][0].shape[1]
    out = {}
    for depth in settings.depths:
        out[f"depth_{depth}"] = {}
        for variant in settings.variants:
            def build(variant=variant, depth=depth):
                return models.build_mlp(variant, input_dim, depth, settings.width,
                                        num_classes=num_classes)

            common.set_seed(0)
            trainer = training.Trainer(build())
            search = {}
            for learning_rate in settings.learning_rates:
                search[learning_rate] = _train_once(trainer, build, splits, learning_rate,
                                                    0, settings)
            best = min(settings.learning_rates,
                       key=lambda lr: _validation_loss(search[lr][1]))
            runs = [search[best]] + [
                _train_once(trainer, build, splits, best, seed, settings)
                for seed in range(1, settings.seeds)]
            losses = np.array([run[0] for run in runs])  # (seeds, epochs)
            final = losses[:, -1]
            result = {
                "learning_rate": best,
                "search_validation_loss": {str(lr): search[lr][1]
                                           for lr in settings.learning_rates},
                "train_loss_mean": losses.mean(0), "train_loss_std": losses.std(0),
                "train_loss_min": losses.min(0), "train_loss_max": losses.max(0),
                "final_train_loss_mean": final.mean(), "final_train_loss_std": final.std(),
                "validation_loss_mean": np.mean([run[1] for run in runs]),
                "validation_accuracy_mean": np.mean([run[2] for run in runs]),
                "diverged_seeds": int(np.sum(~np.isfinite(final))),
            }
            out[f"depth_{depth}"][variant] = result
            logging.info("depth %d %s: lr %g, final train loss %.4g +- %.2g, val acc %.3f",
                         depth, variant, best, result["final_train_loss_mean"],
                         result["final_train_loss_std"], result["validation_accuracy_mean"])
    return out


def _load(name, settings, data_dir):
    """Standardized splits of one dataset, or None (logged) when it is not prepared."""
    if name == "mnist":
        try:
            return common.load_standardized(
                "mnist", data_dir, feature_shape=(784,),
                max_train_examples=settings.mnist_train_examples)
        except datasets.DatasetNotAvailableError as error:
            logging.info("skipping MNIST, it is not prepared in the TFDS data_dir: %s",
                         error)
            return None
    return common.load_standardized(name, data_dir)


def run(settings, data_dir=None):
    """Trains all networks of the experiment.

    Args:
      settings: from `get_settings`.
      data_dir: TFDS data directory (embedded datasets are prepared there; MNIST is
        read from there when prepared).

    Returns:
      The results dict (JSON-ready); ``datasets[name]`` is the `curves` output, or
      ``{"skipped": reason}``.
    """
    results = {"settings": settings.to_dict(),
               "labels": {v: models.VARIANTS[v].label for v in settings.variants},
               "datasets": {}}
    for name in settings.datasets:
        loaded = _load(name, settings, data_dir)
        if loaded is None:
            results["datasets"][name] = {"skipped": "not prepared in the TFDS data_dir"}
            continue
        splits, info = loaded
        results["datasets"][name] = curves(splits, info.num_classes, settings)
        results["datasets"][name]["train_examples"] = len(splits["train"][0])
    return common.jsonable(results)


def markdown(results):
    """The results as Markdown (one row per dataset, depth and variant).

    Args:
      results: from `run`.

    Returns:
      A Markdown string.
    """
    s = results["settings"]
    rows, skipped = [], []
    for name, per_depth in results["datasets"].items():
        if "skipped" in per_depth:
            skipped.append(f"{name} ({per_depth['skipped']})")
            continue
        for depth in s["depths"]:
            for variant, r in per_depth[f"depth_{depth}"].items():
                rows.append([
                    name, depth, results["labels"][variant], r["learning_rate"],
                    f"{common.fmt(r['final_train_loss_mean'], '.3g')} ± "
                    f"{common.fmt(r['final_train_loss_std'], '.2g')}",
                    common.fmt(r["validation_loss_mean"], ".3g"),
                    common.fmt(r["validation_accuracy_mean"], ".3f"),
                    r["diverged_seeds"]])
    text = [
        "# Training curves: SNN vs ReLU (+BatchNorm) MLPs",
        "",
        f"Plain SGD, batch {s['batch_size']}, {s['epochs']} epochs, width {s['width']}; "
        f"learning rate picked from {s['learning_rates']} by the seed-0 validation loss "
        f"after the last epoch; {s['seeds']} seed(s) with the chosen rate. Final train "
        "loss: mean minibatch loss of the last epoch (training mode), mean ± std over "
        "seeds. Validation columns: after the last epoch, mean over seeds.",
        "",
        common.markdown_table(
            ["dataset", "depth", "variant", "learning rate", "final train loss",
             "val loss", "val accuracy", "diverged seeds"], rows),
    ]
    if skipped:
        text += [f"Skipped: {', '.join(skipped)}.", ""]
    return "\n".join(text)


def plot(results, output_dir):
    """Training loss (log scale) vs epoch; rows: datasets, columns: depths.

    Args:
      results: from `run`.
      output_dir: folder for ``training_curves.png``.

    Returns:
      List of the PNG paths written (empty without matplotlib).
    """
    plt = plotting.pyplot()
    s = results["settings"]
    names = [n for n, r in results["datasets"].items() if "skipped" not in r]
    fig, axes = plt.subplots(len(names), len(s["depths"]), squeeze=False,
                             figsize=(4.2 * len(s["depths"]), 3.6 * len(names)),
                             constrained_layout=True)
    epochs = np.arange(1, s["epochs"] + 1)
    for row, name in enumerate(names):
        for col, depth in enumerate(s["depths"]):
            ax = axes[row, col]
            for variant, r in results["datasets"][name][f"depth_{depth}"].items():
                mean = np.asarray(r["train_loss_mean"], np.float64)
                line, = ax.plot(epochs, mean, lw=1.6,
                                label=f"{results['labels'][variant]}, lr {r['learning_rate']}")
                if s["seeds"] > 1:
                    ax.fill_between(epochs, np.asarray(r["train_loss_min"], np.float64),
                                    np.asarray(r["train_loss_max"], np.float64),
                                    color=line.get_color(), alpha=0.2, lw=0)
            ax.set_yscale("log")
            ax.set_title(f"{name}, {depth} layers", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss")
            ax.legend(fontsize=7)
    band = f"; band: min/max over {s['seeds']} seeds" if s["seeds"] > 1 else ""
    fig.suptitle(f"Training loss, SGD, width {s['width']}{band}")
    path = os.path.join(output_dir, f"{NAME}.png")
    plotting.save(fig, path)
    return [path]
