"""CSV preparation against a bare pyarrow read; the input pipeline against the train step.

* **Preparation.** A 1,000,000-row HTRU2-shaped file (below) prepared by
  `selu_zoo.datasets.tabular` (hash, read, check, split, train statistics, dataset
  written), each time into a fresh data_dir, interleaved with ``pyarrow.csv.read_csv`` of
  the same file; and 100,000 rows stored as one TFDS example per row against one per
  block of rows (the stored form).

Synthetic files shaped like the HTRU2 pulsar file (8 float features and an integer label
in the last column, no header, about 9 % positives) of 10k, 100k and 1M rows are written
and prepared with `selu_zoo.datasets.tabular` into a temporary data_dir (60/20/20 split:
the train split holds 60 % of the rows; the preparation's wall-clock and CPU time are
noted). Then, per size:

* **Memory.** A fresh Python process imports TensorFlow and selu_zoo, warms TF's runtime
  up on a 10-element pipeline, resets its peak-RSS mark (``/proc/self/clear_refs``) and
  notes its RSS: the baseline. It opens the dataset (the statistics pass: the remembered
  statistics are deleted first) and streams one full epoch of
  ``data.batches("train", 256, shuffle_seed=0)``. Reported: the peak RSS above the
  baseline (``VmHWM``), in two modes: as `open_dataset` plans reads (splits up to
  `selu_zoo.datasets.pipeline.CACHE_LIMIT_BYTES` of decoded data are cached in memory by
  their first pass, so that a run reads each split from disk once) and with every split
  streamed from disk (the cache limit set to 0).
* **Throughput.** Side by side (`benchmarks.harness`): the zoo's default ``snn`` (4 x
  SELUDense(256), alpha dropout 0.05) built for this dataset and compiled as training.py
  compiles it (its task's loss, Adam, ``jit_compile=True``), one ``train_on_batch`` of 256
  examples; against pulling the next batch of 256 from the pipeline ``fit`` consumes
  (``batches("train", 256, shuffle_seed=0, repeat=True, map_fn=model.training_pair)``),
  from the memory cache (warmed by a full epoch first) and streamed from disk; and the
  train step fed by the streamed pipeline. The target: the pipeline delivers at least 3
  times the examples per second the train step consumes (its speed vs the train step).
"""

import atexit
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import harness

TITLE = "Input pipeline vs train step (HTRU2-shaped CSV)"
SIZES = (10_000, 100_000, 1_000_000)
MEMORY_ONLY_SIZES = (3_000_000,)  # full mode: memory only, past the shuffle buffer's cap
QUICK_SIZES = (2_000,)
PREPARE_ROWS, QUICK_PREPARE_ROWS = 1_000_000, 20_000  # preparation vs bare pyarrow
FORM_ROWS = 100_000  # the storage forms compared
BATCH = 256
FEATURES = 8
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODES = {"planned": "as open_dataset plans (memory cache where it fits)",
          "streamed": "every split streamed (cache_limit_bytes=0)"}


def write_csv(path, rows, seed=0):
    """Writes ``rows`` HTRU2-shaped lines: 8 features (5 significant digits) and a 0/1 label."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as file:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            x = rng.normal(size=(n, FEATURES)).astype(np.float32)
            y = (x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n) > 1.45).astype(np.int64)
            columns = [np.char.mod("%.5g", x[:, j]) for j in range(FEATURES)]
            lines = columns[0]
            for column in columns[1:] + [y.astype(str)]:
                lines = np.char.add(np.char.add(lines, ","), column)
            file.write("\n".join(lines.tolist()) + "\n")
    return path


def _csv_options():
    from selu_zoo.datasets import tabular

    return tabular.CsvOptions(label_column="8")


# --- memory: one fresh process per measurement ------------------------------------------------


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(csv_path, data_dir, mode):
    """Runs in a fresh process: prints one JSON line of RSS figures (MiB)."""
    import tensorflow as tf

    from selu_zoo.datasets import pipeline, sources

    for _ in tf.data.Dataset.range(10).map(lambda i: i * 2).batch(4).prefetch(2):
        pass  # TF's runtime (thread pools, first allocations) is part of the baseline
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    baseline = _status_kib("VmRSS")
    start = time.perf_counter()
    source = sources.open_source(f"csv:{csv_path}", data_dir=data_dir,
                                 csv_options=_csv_options())
    data = pipeline.Dataset(source, cache_limit_bytes=0 if mode == "streamed" else None)
    opened, open_s = _status_kib("VmHWM"), time.perf_counter() - start
    start, rows = time.perf_counter(), 0
    for _, labels in data.batches("train", BATCH, shuffle_seed=0):
        rows += int(labels.shape[0])
    epoch_s = time.perf_counter() - start
    mib = 1 / 1024
    print(json.dumps({
        "mode": mode, "cached": data.cached("train"), "train_rows": rows,
        "baseline_rss_mib": baseline * mib, "peak_reset": reset,
        "open_peak_above_baseline_mib": (opened - baseline) * mib,
        "epoch_peak_above_baseline_mib": (_status_kib("VmHWM") - baseline) * mib,
        "rss_after_epoch_above_baseline_mib": (_status_kib("VmRSS") - baseline) * mib,
        "open_s": open_s, "epoch_s": epoch_s}))


def _forget_statistics(data_dir):
    for folder, _, files in os.walk(data_dir):
        for name in files:
            if name.startswith("selu_zoo-moments-"):
                os.remove(os.path.join(folder, name))


def measure_memory(csv_path, data_dir, mode):
    """Runs `memory_child` in a fresh interpreter; returns its figures."""
    _forget_statistics(data_dir)
    code = ("import sys; from benchmarks import data_pipeline; "
            "data_pipeline.memory_child(*sys.argv[1:])")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", code, csv_path, data_dir, mode],
                            cwd=_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"memory measurement failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- throughput ---------------------------------------------------------------------------------


def _model(csv_path, info):
    import configs.snn
    import training
    from models import registry

    config = configs.snn.get_config()
    config.dataset, config.label_column = f"csv:{csv_path}", "8"
    model = registry.build_model(config, info)
    model.compile(optimizer=training.make_optimizer(config), jit_compile=config.jit_compile)
    return model, config


def _memory_notes(rows, memory):
    """The memory figures of one size: ``(params, notes)``."""
    params, notes = {}, []
    for mode, figures in memory.items():
        params[f"peak_rss_mib_{mode}"] = round(figures["epoch_peak_above_baseline_mib"], 1)
        notes.append(
            f"{rows:,} rows, peak RSS above the baseline, {_MODES[mode]}: "
            f"{figures['open_peak_above_baseline_mib']:.1f} MiB after opening (statistics "
            f"pass, {figures['open_s']:.1f} s), {figures['epoch_peak_above_baseline_mib']:.1f}"
            f" MiB after one shuffled epoch of {figures['train_rows']:,} rows "
            f"({figures['epoch_s']:.1f} s, train split cached: {figures['cached']}); "
            f"baseline {figures['baseline_rss_mib']:.0f} MiB.")
    return params, notes


def _size_comparison(rows, csv_path, data_dir, memory):
    import tensorflow as tf

    from selu_zoo.datasets import pipeline

    data = pipeline.open_dataset(f"csv:{csv_path}", data_dir=data_dir,
                                 csv_options=_csv_options())
    model, config = _model(csv_path, data.info)
    assert config.jit_compile  # the zoo default: XLA train step
    model.make_train_function()
    step = model.train_function  # what fit calls once per batch: next, then the step
    train_rows = data.info.num_examples["train"]
    streamed_data = pipeline.Dataset(data.source, cache_limit_bytes=0)

    def fit_batches(dataset, seed):
        return iter(dataset.batches("train", BATCH, shuffle_seed=seed, repeat=True,
                                    map_fn=model.training_pair))

    x, y = next(iter(data.batches("train", BATCH, drop_remainder=True,
                                  map_fn=model.training_pair)))
    in_memory = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    candidates = [harness.Candidate("train step, one in-memory batch",
                                    lambda: step(in_memory))]
    if data.cached("train"):
        cached, cached_fed = fit_batches(data, 0), fit_batches(data, 1)
        for _ in range(-(-train_rows // BATCH) + 1):  # one epoch fills the memory cache
            next(cached)
        candidates += [
            harness.Candidate("pipeline, memory cache", lambda: next(cached)),
            harness.Candidate("train step fed from the memory cache",
                              lambda: step(cached_fed))]
    streamed, streamed_fed = fit_batches(streamed_data, 0), fit_batches(streamed_data, 1)
    candidates += [
        harness.Candidate("pipeline, streamed from disk", lambda: next(streamed)),
        harness.Candidate("train step fed by the streamed pipeline",
                          lambda: step(streamed_fed))]
    params = {"rows": rows, "train_rows": train_rows, "batch": BATCH,
              "train_split_cached": data.cached("train"),
              "model": f"snn default ({config.depth} x SELUDense({config.width}), "
                       f"dropout {config.dropout_rate}, jit_compile={config.jit_compile})"}
    memory_params, notes = _memory_notes(rows, memory)
    params.update(memory_params)
    return harness.Comparison(
        name=f"{rows:,} rows", candidates=candidates,
        references=["train step, one in-memory batch"], items_per_call=BATCH, params=params,
        notes=notes)


def _preparation(directory, rows):
    """Preparing a CSV (read, validate, split, statistics, cache written) against a bare
    ``pyarrow.csv.read_csv`` of the same file, each preparation into a fresh data_dir."""
    import pyarrow.csv

    from selu_zoo.datasets import tabular

    csv_path = write_csv(os.path.join(directory, f"prepare_{rows}.csv"), rows)
    runs = itertools.count()

    def prepare():
        data_dir = os.path.join(directory, f"prepare_{next(runs)}")
        tabular.prepare(f"csv:{csv_path}", _csv_options(), data_dir)
        shutil.rmtree(data_dir)

    mib = os.path.getsize(csv_path) / 2**20
    return harness.Comparison(
        name=f"preparing {rows:,} rows x {FEATURES + 1} columns",
        candidates=[harness.Candidate("pyarrow.csv.read_csv (bare)",
                                      lambda: pyarrow.csv.read_csv(csv_path)),
                    harness.Candidate("selu_zoo preparation", prepare)],
        references=["pyarrow.csv.read_csv (bare)"], items_per_call=rows, item_name="rows",
        params={"rows": rows, "csv_mib": round(mib, 1)},
        notes=[f"The file is {mib:.0f} MiB. A preparation hashes the file, reads it with "
               f"pyarrow, checks every row, splits it 60/20/20 (stratified), computes the "
               f"train statistics and writes the TFDS dataset; the time includes deleting "
               f"the folder it wrote. Goal: at most 3x the bare read (speed >= 0.33)."])


def _storage_forms(directory, rows=FORM_ROWS):
    """Writing rows as one TFDS example each (TFDS's usual form) against one per block."""
    import tensorflow as tf

    from selu_zoo.datasets.tabular import preparation

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    labels, row = rng.integers(0, 2, rows), np.arange(rows)
    path = os.path.join(directory, "forms.tfrecord")

    def per_row():
        with tf.io.TFRecordWriter(path) as writer:
            for values, label, index in zip(x.tolist(), labels.tolist(), row.tolist()):
                example = tf.train.Example()
                feature = example.features.feature
                feature["features"].float_list.value.extend(values)
                feature["label"].int64_list.value.append(label)
                feature["row"].int64_list.value.append(index)
                writer.write(example.SerializeToString())

    return harness.Comparison(
        name=f"storing {rows:,} rows",
        candidates=[harness.Candidate("one tf.train.Example per row", per_row),
                    harness.Candidate(f"one per {preparation.BLOCK_ROWS}-row block (selu_zoo)",
                                      lambda: preparation._write_shard(path, x, labels, row, rng))],
        references=["one tf.train.Example per row"], items_per_call=rows, item_name="rows",
        params={"rows": rows, "features": FEATURES},
        notes=["Why the prepared CSV data stores blocks of rows: serializing one example "
               "per row (TFDS's usual form) costs more than the whole preparation of the "
               "same rows in blocks."])


def build(settings, sizes=None, memory=True, preparation_rows=None):
    """One comparison per CSV size; ``memory=False`` skips the memory subprocesses.

    In full mode the memory is also measured at `MEMORY_ONLY_SIZES` (noted under the last
    comparison): past the shuffle buffer's cap, nothing grows with the file.
    """
    quick = settings.mode == "quick"
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    directory = tempfile.mkdtemp(prefix="selu_zoo_bench_data_")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    data_dir = os.path.join(directory, "tfds")
    from selu_zoo.datasets import tabular

    modes = () if not memory else ("planned",) if quick else tuple(_MODES)
    if preparation_rows is None:
        preparation_rows = QUICK_PREPARE_ROWS if quick else PREPARE_ROWS
    comparisons = [_preparation(directory, preparation_rows),
                   _storage_forms(directory)] if preparation_rows else []

    def prepared(rows):
        csv_path = write_csv(os.path.join(directory, f"htru2_like_{rows}.csv"), rows)
        wall, cpu = time.perf_counter(), time.process_time()
        tabular.prepare(f"csv:{csv_path}", _csv_options(), data_dir)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        params = {"prepare_wall_s": round(wall, 2), "prepare_cpu_s": round(cpu, 2)}
        mib = os.path.getsize(csv_path) / 2**20
        note = (f"{rows:,} rows: validating and preparing the CSV file ({mib:.0f} MiB) took"
                f" {wall:.1f} s wall clock, {cpu:.1f} s CPU time (this process).")
        return csv_path, params, note

    for rows in sizes:
        csv_path, prepare_params, prepare_note = prepared(rows)
        figures = {mode: measure_memory(csv_path, data_dir, mode) for mode in modes}
        comparisons.append(_size_comparison(rows, csv_path, data_dir, figures))
        comparisons[-1].params.update(prepare_params)
        comparisons[-1].notes.insert(0, prepare_note)
    for rows in () if quick or not memory else MEMORY_ONLY_SIZES:
        csv_path, prepare_params, prepare_note = prepared(rows)
        params, notes = _memory_notes(
            rows, {mode: measure_memory(csv_path, data_dir, mode) for mode in modes})
        params.update(prepare_params)
        notes.insert(0, prepare_note)
        comparisons[-1].params.update({f"{rows}_rows_{k}": v for k, v in params.items()})
        comparisons[-1].notes.extend(notes)
        os.remove(csv_path)
    return comparisons
