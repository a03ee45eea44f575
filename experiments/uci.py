"""SNNs vs ReLU MLPs (plain, BatchNorm, LayerNorm) on the four embedded UCI datasets.

The paper compared SNNs with other feed-forward networks on 121 UCI datasets; here are
four (``digits``, ``breast_cancer``, ``wine``, ``iris``, with selu_zoo's fixed stratified
60/20/20 splits). Protocol, the same for every variant:

* plain minibatch SGD, batch ``batch_size``, ``steps`` steps (a fixed step budget, so
  small datasets get more epochs), inputs standardized with train-split statistics;
* every ``eval_every`` steps the validation split is evaluated and the best checkpoint
  (highest validation accuracy, ties broken by lower validation loss) is kept
  (early stopping);
* hyperparameters from the grid ``learning_rates`` x ``depths`` x ``dropout_rates``
  (alpha dropout for SNNs, standard dropout otherwise) are chosen by the seed-0 best
  validation accuracy (ties: lower validation loss, then grid order);
* the chosen configuration is trained with ``seeds`` seeds (weights, batch order,
  dropout masks; the split is fixed) and the test accuracy at the best checkpoint is
  reported as mean and standard deviation over seeds.
"""

import itertools
import math
import os

import numpy as np
from absl import logging
from ml_collections import ConfigDict

from experiments import common, models, plotting, training

NAME = "uci"


def get_settings(quick=False):
    """The experiment's settings.

    Args:
      quick: tiny settings for tests.

    Returns:
      A ``ConfigDict``.
    """
    s = ConfigDict()
    s.datasets = ["digits", "breast_cancer", "wine", "iris"]
    s.variants = ["snn", "relu", "relu_bn", "relu_ln"]
    s.width = 128
    s.learning_rates = [0.03, 0.3]
    s.depths = [2, 8]
    # Alpha dropout (SNN) / dropout (others) rates searched; [0.0, 0.1] doubles the cost.
    s.dropout_rates = [0.0]
    s.batch_size = 64
    s.steps = 300
    s.eval_every = 25
    s.seeds = 3
    if quick:  # one architecture per variant: one trace each
        s.datasets = ["iris"]
        s.width = 16
        s.depths = [2]
        s.dropout_rates = [0.1]
        s.steps = 40
        s.eval_every = 20
        s.seeds = 1
    return s


def _sort_key(result):
    """Orders checkpoints or configurations: higher accuracy, then lower loss, wins."""
    loss = result["validation_loss"]
    return (result["validation_accuracy"], -loss if math.isfinite(loss) else -math.inf)


def train_and_select_checkpoint(trainer, build, splits, learning_rate, seed, settings):
    """Trains one network and returns its best-validation checkpoint's metrics.

    Args:
      trainer: a `training.Trainer` for this architecture.
      build: zero-argument function building a fresh model of the architecture.
      splits: from `common.load_standardized`.
      learning_rate: SGD step size.
      seed: seed of the weights, the batch order and the dropout masks.
      settings: from `get_settings`.

    Returns:
      Dict with ``validation_accuracy``, ``validation_loss``, ``test_accuracy``,
      ``test_loss`` and ``step`` of the best checkpoint.
    """
    common.set_seed(seed)
    trainer.reset(build().get_weights(), learning_rate)
    x, y = splits["train"]
    batches = training.stream_batches(len(x), settings.batch_size, settings.steps,
                                      np.random.default_rng(seed))
    best = None
    for start in range(0, settings.steps, settings.eval_every):
        trainer.train(x, y, batches[start:start + settings.eval_every])
        val_loss, val_accuracy = trainer.evaluate(*splits["validation"])
        current = {"validation_accuracy": val_accuracy, "validation_loss": val_loss,
                   "step": min(start + settings.eval_every, settings.steps)}
        if best is None or _sort_key(current) > _sort_key(best):
            test_loss, test_accuracy = trainer.evaluate(*splits["test"])
            best = dict(current, test_accuracy=test_accuracy, test_loss=test_loss)
    return best


def compare(splits, num_classes, variant, settings):
    """Grid search on seed 0, then the chosen configuration with every seed.

    Args:
      splits: from `common.load_standardized`.
      num_classes: number of classes.
      variant: a key of `models.VARIANTS`.
      settings: from `get_settings`.

    Returns:
      Dict: ``config`` (chosen depth, dropout, learning rate), ``grid`` (seed-0
      validation accuracy and loss of every configuration), ``test_accuracy`` (per
      seed), its ``test_accuracy_mean`` and ``test_accuracy_std`` (ddof 0), and
      ``validation_accuracy_mean``.
    """
    input_dim = splits["train"][0].shape[1]
    grid, builders, trainers = [], {}, {}
    for depth, dropout in itertools.product(settings.depths, settings.dropout_rates):
        def build(depth=depth, dropout=dropout):
            return models.build_mlp(variant, input_dim, depth, settings.width,
                                    num_classes=num_classes, dropout=dropout)

        common.set_seed(0)
        builders[depth, dropout] = build
        trainers[depth, dropout] = training.Trainer(build())
        for learning_rate in settings.learning_rates:
            result = train_and_select_checkpoint(
                trainers[depth, dropout], build, splits, learning_rate, 0, settings)
            grid.append({"depth": depth, "dropout": dropout,
                         "learning_rate": learning_rate, **result})
    chosen = max(grid, key=_sort_key)  # max keeps the first of equals: grid order
    key = chosen["depth"], chosen["dropout"]
    runs = [chosen] + [
        train_and_select_checkpoint(trainers[key], builders[key], splits,
                                    chosen["learning_rate"], seed, settings)
        for seed in range(1, settings.seeds)]
    accuracies = np.array([run["test_accuracy"] for run in runs])
    return {
        "config": {"depth": chosen["depth"], "dropout": chosen["dropout"],
                   "learning_rate": chosen["learning_rate"]},
        "grid": [{k: g[k] for k in ("depth", "dropout", "learning_rate",
                                    "validation_accuracy", "validation_loss")}
                 for g in grid],
        "test_accuracy": accuracies,
        "test_accuracy_mean": accuracies.mean(),
        "test_accuracy_std": accuracies.std(),
        "validation_accuracy_mean": np.mean([run["validation_accuracy"] for run in runs]),
        "best_step_mean": np.mean([run["step"] for run in runs]),
    }


def run(settings, data_dir=None):
    """Runs the comparison on every dataset.

    Args:
      settings: from `get_settings`.
      data_dir: TFDS data directory where the embedded datasets are prepared.

    Returns:
      The results dict (JSON-ready): ``datasets[name][variant]`` from `compare`, plus
      ``datasets[name]["sizes"]`` and a ``summary`` (mean accuracy and mean rank per
      variant, winner per dataset).
    """
    results = {"settings": settings.to_dict(),
               "labels": {v: models.VARIANTS[v].label for v in settings.variants},
               "datasets": {}}
    for name in settings.datasets:
        splits, info = common.load_standardized(name, data_dir)
        per_variant = {"sizes": {split: len(xy[0]) for split, xy in splits.items()}}
        for variant in settings.variants:
            per_variant[variant] = compare(splits, info.num_classes, variant, settings)
            logging.info("%s %s: test accuracy %.4f +- %.4f with %s", name, variant,
                         per_variant[variant]["test_accuracy_mean"],
                         per_variant[variant]["test_accuracy_std"],
                         per_variant[variant]["config"])
        results["datasets"][name] = per_variant
    results["summary"] = summarize(results["datasets"], settings.variants)
    return common.jsonable(results)


def summarize(per_dataset, variants):
    """Mean test accuracy, mean rank (1 = best; ties share the mean rank) and winners.

    Args:
      per_dataset: ``results["datasets"]``.
      variants: the variants compared.

    Returns:
      Dict with ``mean_accuracy`` and ``mean_rank`` (variant -> value) and ``winner``
      (dataset -> list of the variants with the highest mean test accuracy).
    """
    ranks = {v: [] for v in variants}
    winners = {}
    for name, per_variant in per_dataset.items():
        means = np.array([per_variant[v]["test_accuracy_mean"] for v in variants])
        for v, mean in zip(variants, means):
            ranks[v].append(1 + np.sum(means > mean) + 0.5 * (np.sum(means == mean) - 1))
        winners[name] = [v for v, mean in zip(variants, means) if mean == means.max()]
    return {
        "mean_accuracy": {v: np.mean([per_dataset[n][v]["test_accuracy_mean"]
                                      for n in per_dataset]) for v in variants},
        "mean_rank": {v: np.mean(ranks[v]) for v in variants},
        "winner": winners,
    }


def markdown(results):
    """The accuracy table, the chosen hyperparameters and the summary, as Markdown.

    Args:
      results: from `run`.

    Returns:
      A Markdown string.
    """
    s = results["settings"]
    variants = s["variants"]
    labels = results["labels"]
    rows, config_rows = [], []
    for name, per_variant in results["datasets"].items():
        best = max(per_variant[v]["test_accuracy_mean"] for v in variants)
        cells = []
        for v in variants:
            r = per_variant[v]
            cell = (f"{common.fmt(r['test_accuracy_mean'], '.4f')} ± "
                    f"{common.fmt(r['test_accuracy_std'], '.4f')}")
            cells.append(f"**{cell}**" if r["test_accuracy_mean"] == best else cell)
            c = r["config"]
            config_rows.append([name, labels[v], c["depth"], c["dropout"],
                                c["learning_rate"],
                                common.fmt(r["validation_accuracy_mean"], ".4f"),
                                common.fmt(r["best_step_mean"], ".0f")])
        sizes = per_variant["sizes"]
        rows.append([f"{name} ({sizes['train']}/{sizes['validation']}/{sizes['test']})"]
                    + cells)
    summary = results["summary"]
    rows.append(["mean accuracy"] + [common.fmt(summary["mean_accuracy"][v], ".4f")
                                     for v in variants])
    rows.append(["mean rank (1 = best)"] + [common.fmt(summary["mean_rank"][v], ".2f")
                                           for v in variants])
    return "\n".join([
        "# UCI: SNN vs ReLU MLPs",
        "",
        f"Test accuracy, mean ± std over {s['seeds']} seed(s) (the split is fixed; seeds "
        "vary weights, batch order and dropout masks), at the checkpoint with the best "
        f"validation accuracy. Plain SGD, batch {s['batch_size']}, {s['steps']} steps, "
        f"width {s['width']}; grid: learning rate {s['learning_rates']} x depth "
        f"{s['depths']} x dropout {s['dropout_rates']} (alpha dropout for the SNN), chosen "
        "on validation accuracy of seed 0. Dataset sizes: train/validation/test. Bold: "
        "highest mean.",
        "",
        common.markdown_table(["dataset"] + [labels[v] for v in variants], rows),
        "## Chosen hyperparameters",
        "",
        common.markdown_table(["dataset", "variant", "depth", "dropout", "learning rate",
                               "val accuracy (mean)", "best step (mean)"], config_rows),
    ])


def plot(results, output_dir):
    """Grouped bars of test accuracy (mean, std as error bars) per dataset and variant.

    Args:
      results: from `run`.
      output_dir: folder for ``uci.png``.

    Returns:
      List of the PNG paths written (empty without matplotlib).
    """
    plt = plotting.pyplot()
    variants = results["settings"]["variants"]
    names = list(results["datasets"])
    fig, ax = plt.subplots(figsize=(9, 3.8), constrained_layout=True)
    width = 0.8 / len(variants)
    for i, v in enumerate(variants):
        means = [results["datasets"][n][v]["test_accuracy_mean"] or 0.0 for n in names]
        stds = [results["datasets"][n][v]["test_accuracy_std"] or 0.0 for n in names]
        ax.bar(np.arange(len(names)) + (i - (len(variants) - 1) / 2) * width, means, width,
               yerr=stds, capsize=3, label=results["labels"][v])
    ax.set_xticks(np.arange(len(names)), names)
    lows = [results["datasets"][n][v]["test_accuracy_mean"] or 0.0
            for n in names for v in variants]
    ax.set_ylim(max(0.0, min(lows) - 0.1), 1.0)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"Test accuracy, mean ± std over {results['settings']['seeds']} seed(s)")
    path = os.path.join(output_dir, f"{NAME}.png")
    plotting.save(fig, path)
    return [path]
