"""A user's CSV end to end: ``train.py --model=snn`` against the plain-Keras script.

One generated CSV (`ROWS` rows, `FEATURES` float features with a header, a binary ``label``
column that depends non-linearly on the features, with noise). Each candidate is a whole
process, import to exit, 2 epochs, run interleaved with the other (`benchmarks.harness`):

* plain Keras: `benchmarks/plain_keras_csv.py`, the twenty lines a user would write
  (pandas, scikit-learn's split, ``Normalization.adapt``, 4 x ``Dense(256, "selu")`` +
  ``AlphaDropout(0.05)``, ``fit`` with its defaults);
* selu_zoo: ``python train.py --model=snn --config.dataset=csv:FILE
  --config.label_column=label --config.epochs=2 --noexport`` with a fresh workdir and data_dir
  each time, so the CSV's preparation is part of every run.

Each run's test accuracy is recorded in the comparison's params (``test_accuracy``).
"""

import itertools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks import harness

TITLE = "A user's CSV end to end: train.py against plain Keras"
ROWS, QUICK_ROWS = 240_000, 5_000
FEATURES = 24
EPOCHS = 2
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_csv(path, rows, seed=0):
    """Writes ``rows`` rows of `FEATURES` features (``f0``...) and a 0/1 ``label``; returns path."""
    import pandas as pd  # noqa: PLC0415  (comes with tensorflow-datasets' extras; only here)

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    x[:, FEATURES // 2:] += 0.5 * x[:, :FEATURES - FEATURES // 2]  # correlated features
    score = (np.sin(2 * x[:, 0]) * x[:, 1] + x[:, 2] * x[:, 3] + np.tanh(x[:, 4] + x[:, 5])
             + 0.5 * np.abs(x[:, 6]) - 0.4 + 0.4 * rng.normal(size=rows))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = (score > 0).astype(np.int64)
    frame.to_csv(path, index=False, float_format="%.5g")
    return path


def _run(args, cwd):
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr[-2000:]}")
    return result.stdout


def build(settings, rows=None):
    """One comparison: the two whole-process candidates on one generated CSV."""
    rows = rows or (QUICK_ROWS if settings.mode == "quick" else ROWS)
    directory = tempfile.mkdtemp(prefix="csv_end_to_end_")
    csv_path = write_csv(os.path.join(directory, "data.csv"), rows)
    accuracy = {"plain Keras": [], "selu_zoo train.py": []}
    runs = itertools.count()

    def plain():
        out = _run([os.path.join(_ROOT, "benchmarks", "plain_keras_csv.py"), csv_path,
                    str(EPOCHS)], directory)
        accuracy["plain Keras"].append(json.loads(out.strip().splitlines()[-1])["test_accuracy"])

    def zoo():
        run = os.path.join(directory, f"run{next(runs)}")
        _run([os.path.join(_ROOT, "train.py"), "--model=snn",
              f"--config.dataset=csv:{csv_path}", "--config.label_column=label",
              f"--config.epochs={EPOCHS}", "--noexport", f"--workdir={run}/work",
              f"--data_dir={run}/tfds"], directory)
        with open(os.path.join(run, "work", "metrics.json")) as f:
            accuracy["selu_zoo train.py"].append(json.load(f)["test"]["accuracy"])

    return [harness.Comparison(
        name=f"{rows:,} rows x {FEATURES} features, {EPOCHS} epochs, whole process",
        candidates=[harness.Candidate("plain Keras", plain),
                    harness.Candidate("selu_zoo train.py", zoo)],
        references=["plain Keras"], items_per_call=rows, item_name="rows",
        params={"rows": rows, "features": FEATURES, "epochs": EPOCHS,
                "test_accuracy": accuracy},
        notes=["Wall time of a whole process (import, read, prepare, train, evaluate), "
               "interleaved with the other candidate; a fresh workdir and data_dir for every "
               "selu_zoo run, so preparing the CSV is always included."])]
