"""The zoo's models as ``python train.py --model=<name>`` trains them, with their default configs.

Each model runs ``training.train_and_evaluate`` with its default config (training, test
evaluation and every export, in a temporary workdir and export folder) and reports what a
user sees: parameters, test metrics, the best epoch, the wall time of the whole run, and the
self-normalization probe's per-layer activation statistics before and after training,
against the domain of the paper's Theorem 1 (`selu_zoo.theory.in_theorem1_domain`).
"""

import importlib
import json
import os
import tempfile

from ml_collections import ConfigDict

from experiments import plotting
from selu_zoo import theory

NAME = "zoo"


def get_settings(quick=False):
    """The experiment's settings.

    Args:
      quick: tiny settings for tests (one small model, one epoch, no export).

    Returns:
      A ``ConfigDict``.
    """
    s = ConfigDict()
    s.models = ["snn", "snn_vae", "snn_rnn", "snn_cnn"]
    s.overrides = {}
    s.export = True
    s.seeds = 1  # the default config's seed; --seeds is accepted but one run is what users see
    if quick:
        s.models = ["snn"]
        s.overrides = {"dataset": "iris", "epochs": 1, "depth": 1, "width": 16,
                       "jit_compile": False}
        s.export = False
    return s


def _layers(statistics):
    return {name: {"mean": mean, "variance": variance, "in_theorem1_domain":
                   theory.in_theorem1_domain(mean, variance)}
            for name, (mean, variance) in statistics.items()}


def _export_summary(artifacts):
    """What the export report says of each artifact: metrics, parity, file sizes."""
    with open(artifacts["report"], encoding="utf-8") as f:
        report = json.load(f)

    def worst(diffs):
        return max(v for outputs in diffs.values() for v in outputs.values())

    summary = {"keras": report["keras"]["metrics"],
               "saved_model": {"metrics": report["saved_model"]["metrics"],
                               "max_abs_diff_vs_keras": worst(
                                   report["saved_model"]["max_abs_diff"])}}
    for variant, entry in report["tflite"].items():
        summary[f"tflite_{variant}"] = {
            "metrics": entry["metrics"], "size_bytes": entry["size_bytes"],
            "max_abs_diff_vs_keras": worst(entry["max_abs_diff_vs_keras"]),
            "non_finite_inputs": entry["non_finite_inputs"]}
    return summary


def run(settings, data_dir=None):
    """Trains every model of ``settings.models``; returns the results dict."""
    import training  # noqa: PLC0415  (the project's driver, beside train.py)

    results = {"settings": settings.to_dict(), "models": {}}
    for name in settings.models:
        config = importlib.import_module(f"configs.{name}").get_config()
        for key, value in settings.overrides.items():
            setattr(config, key, value)
        with tempfile.TemporaryDirectory(prefix=f"selu_zoo-{name}-") as folder:
            export = training.ExportOptions(f"{folder}/exports", name) if settings.export \
                else None
            result = training.train_and_evaluate(config, f"{folder}/work", data_dir=data_dir,
                                                 export_options=export)
            metrics = result["metrics"]
            report = _export_summary(result["artifacts"]) if settings.export else None
        results["models"][name] = {
            "dataset": metrics["dataset"], "kind": metrics["kind"],
            "parameters": metrics["parameters"], "test": metrics["test"],
            "epochs": config.epochs, "best_epoch": metrics["best_epoch"],
            "wall_time_s": metrics["wall_time_s"],
            "before_training": _layers(metrics["self_normalization"]["before"]),
            "after_training": _layers(metrics["self_normalization"]["after"]),
            "export": report}
    return results


def _summary(layers):
    inside = sum(layer["in_theorem1_domain"] for layer in layers.values())
    variances = [layer["variance"] for layer in layers.values()]
    means = [abs(layer["mean"]) for layer in layers.values()]
    return (f"{inside}/{len(layers)} | {min(variances):.2f}-{max(variances):.2f} | "
            f"{max(means):.2f}")


def markdown(results):
    """The results as Markdown tables."""
    lines = ["# The zoo with its default configs", "",
             "| model | dataset | parameters | test | best epoch | wall time (s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results["models"].items():
        test = ", ".join(f"{k} {v:.4f}" for k, v in r["test"].items())
        lines.append(f"| `{name}` | {r['dataset']} | {r['parameters']:,} | {test} | "
                     f"{r['best_epoch']} of {r['epochs']} | {r['wall_time_s']:.0f} |")
    lines += ["", "Self-normalization probe (validation examples, inference mode): SELU "
              "layers in Theorem 1's domain, the range of their variances, the largest "
              "|mean|.", "",
              "| model | before: in domain | before: variance | before: max abs mean "
              "| after: in domain | after: variance | after: max abs mean |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results["models"].items():
        lines.append(f"| `{name}` | {_summary(r['before_training'])} | "
                     f"{_summary(r['after_training'])} |")
    exported = {n: r["export"] for n, r in results["models"].items() if r.get("export")}
    if exported:
        lines += ["", "Exports (the verification rows of the test split; metric of Keras, "
                  "then each TFLite file's; max abs difference of every output to Keras):", "",
                  "| model | metric | Keras | SavedModel | float32 | float16 | int8 | float32 "
                  "diff | int8 size (bytes) |", "| --- | --- | --- | --- | --- | --- | --- | "
                  "--- | --- |"]
        for name, e in exported.items():
            metric = "accuracy" if "accuracy" in e["keras"] else "elbo"
            values = [e[k]["metrics"].get(metric, float("nan")) if k != "keras"
                      else e["keras"].get(metric, float("nan"))
                      for k in ("keras", "saved_model", "tflite_float32", "tflite_float16",
                                "tflite_int8")]
            lines.append(f"| `{name}` | {metric} | " + " | ".join(f"{v:.4f}" for v in values)
                         + f" | {e['tflite_float32']['max_abs_diff_vs_keras']:.1e} | "
                         f"{e['tflite_int8']['size_bytes']:,} |")
    return "\n".join(lines) + "\n"


def plot(results, output_dir):
    """Per-layer activation variance before and after training, one panel per model.

    Returns:
      The paths of the PNG files written.
    """
    plt = plotting.pyplot()
    models = results["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.2), squeeze=False,
                             constrained_layout=True)
    for axis, (name, r) in zip(axes[0], models.items()):
        low, high = theory.THEOREM1_VARIANCE
        axis.axhspan(low, high, color="tab:green", alpha=0.15, label="Theorem 1 domain")
        for key, style in (("before_training", "o--"), ("after_training", "s-")):
            variances = [layer["variance"] for layer in r[key].values()]
            axis.plot(range(1, len(variances) + 1), variances, style,
                      label=key.replace("_", " "))
        axis.set_title(f"{name} ({r['dataset']})")
        axis.set_xlabel("SELU layer")
        axis.set_ylabel("activation variance")
    axes[0][0].legend(fontsize=8)
    path = os.path.join(output_dir, "zoo_variance.png")
    plotting.save(fig, path)
    return [path]
