"""The main job's bookkeeping: what each epoch spends beside its train and validation steps.

    python -m benchmarks.bookkeeping                   # output/benchmarks/bookkeeping.json
    python -m benchmarks.bookkeeping --update_results  # benchmarks/results/bookkeeping.json

Runs the main job, ``python train.py --model=snn_vae --noexport`` (exporting happens once,
not per epoch), ``--runs`` times, each a whole process in a fresh workdir, and reads the
``epoch_seconds`` of its ``metrics.json`` (`selu_zoo.callbacks.TimedCallbacks`): per epoch
the train steps, the validation, each callback's ``on_epoch_end`` and the whole epoch, and
the final writes at the end of training (``train_end_s``). The goal is measured within the
same epochs: after the first epoch (tracing), the whole epochs cost at most 1.15x their train
and validation steps.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

from absl import app, flags, logging

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COMMITTED = os.path.join(_ROOT, "benchmarks", "results", "bookkeeping.json")
GOAL = 1.15  # whole epoch / (train + validation), epochs after the first

_OUTPUT_DIR = flags.DEFINE_string("output_dir", os.path.join("output", "benchmarks"),
                                  "Where bookkeeping.json goes (ignored with --update_results).")
_UPDATE = flags.DEFINE_bool("update_results", False,
                            f"Write {_COMMITTED} instead of --output_dir.")
_RUNS = flags.DEFINE_integer("runs", 2, "Whole runs of the main job.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs per run (default: the config's).")


def run_main_job(workdir, data_dir, epochs=None):
    """Runs ``train.py --model=snn_vae --noexport``; returns its ``metrics.json``.

    Raises:
      RuntimeError: naming the last lines of its console if it fails.
    """
    args = [sys.executable, os.path.join(_ROOT, "train.py"), "--model=snn_vae", "--noexport",
            f"--workdir={workdir}", f"--data_dir={data_dir}"]
    args += [f"--config.epochs={epochs}"] if epochs else []
    result = subprocess.run(args, cwd=_ROOT, capture_output=True, text=True, check=False,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode:
        raise RuntimeError(f"train.py failed: {result.stderr[-2000:]}")
    with open(os.path.join(workdir, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def summarize(epoch_seconds):
    """The breakdown of a run's epochs after the first.

    Args:
      epoch_seconds: ``metrics.json``'s ``epoch_seconds`` (one dict of parts per epoch).

    Returns:
      ``{"epochs", "ratio", "seconds", "share"}``: the epochs counted, the whole epochs over
      their train and validation steps, each part's median seconds per epoch, and each part's
      total as a fraction of the train and validation steps.
    """
    later = epoch_seconds[1:]
    steps = sum(e["train"] + e["validation"] for e in later)
    parts = sorted({part for e in later for part in e} - {"epoch"})
    return {"epochs": len(later),
            "ratio": round(sum(e["total"] for e in later) / steps, 3),
            "seconds": {p: round(statistics.median(e.get(p, 0.0) for e in later), 4)
                        for p in parts},
            "share": {p: round(sum(e.get(p, 0.0) for e in later) / steps, 3)
                      for p in parts if p not in ("train", "validation", "total")}}


def main(argv):
    del argv
    output_dir = os.path.dirname(_COMMITTED) if _UPDATE.value else _OUTPUT_DIR.value
    scratch = os.path.join(_OUTPUT_DIR.value, "scratch", "bookkeeping")
    runs = []
    try:
        for index in range(_RUNS.value):
            metrics = run_main_job(os.path.join(scratch, f"run{index}"),
                                   os.path.join(scratch, "tfds"), _EPOCHS.value)
            runs.append({"wall_time_s": metrics["wall_time_s"],
                         **summarize(metrics["epoch_seconds"]),
                         "train_end_s": metrics["train_end_seconds"],
                         "epoch_seconds": metrics["epoch_seconds"]})
            logging.info("run %d: whole epochs %.3fx their steps (goal <= %.2fx); shares %s",
                         index + 1, runs[-1]["ratio"], GOAL, runs[-1]["share"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {"title": "The main job's bookkeeping per epoch (train.py --model=snn_vae)",
              "goal": f"whole epoch <= {GOAL}x its train + validation steps, after epoch 1",
              "ratio": statistics.median(r["ratio"] for r in runs), "runs": runs,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average": os.getloadavg()}}
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "bookkeeping.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    logging.info("whole epochs %.3fx their steps (median of %d runs); wrote %s",
                 result["ratio"], len(runs), path)


if __name__ == "__main__":
    app.run(main)
