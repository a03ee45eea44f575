"""Runs the benchmark groups in one process and writes JSON, RESULTS.md and ratios.png.

    python -m benchmarks --quick                 # smoke run, under a minute
    python -m benchmarks --full                  # the full suite, a few minutes
    python -m benchmarks --only=selu,dropout     # some groups; other groups' results are kept
    python -m benchmarks --update_results        # rewrite the committed benchmarks/results/

Results go to --output_dir (default output/benchmarks, not committed); the committed
benchmarks/results/ change only with --update_results. Scratch files (generated data, exported
models) live in <output folder>/scratch while the run lasts, never in the system temp folder.
"""

import contextlib
import os
import shutil
import tempfile
import time

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import (  # noqa: E402
    backends, csv_end_to_end, data_pipeline, dropout_op, harness, inference, selu_op, serving,
    step_floor, training)

GROUPS = {"selu": selu_op, "dropout": dropout_op, "training": training,
          "step_floor": step_floor, "inference": inference,
          "serving": serving, "data_pipeline": data_pipeline, "csv_end_to_end": csv_end_to_end,
          "backends": backends}

QUICK = harness.Settings(repeats=3, warmup=1, min_sample_s=0.05, budget_s=2.0, mode="quick")
FULL = harness.Settings(repeats=15, warmup=3, min_sample_s=0.3, budget_s=30.0, mode="full")

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Smoke run: small sizes, few repeats (under a minute).")
flags.DEFINE_bool("full", False, "Full run (the default): full sizes and repeats.")
flags.DEFINE_list("only", [], f"Groups to run, from {', '.join(GROUPS)}; default all.")
COMMITTED_RESULTS = os.path.join(os.path.dirname(__file__), "results")
flags.DEFINE_string("output_dir", os.path.join("output", "benchmarks"),
                    "Where the JSON files, RESULTS.md and ratios.png go (ignored with "
                    "--update_results).")
flags.DEFINE_bool("update_results", False,
                  f"Write into the committed results folder, {COMMITTED_RESULTS}, instead of "
                  "--output_dir.")
flags.DEFINE_integer("threads", 0, "TensorFlow intra- and inter-op threads (0: its default).")
flags.DEFINE_string("note", "", "A sentence for RESULTS.md, e.g. that the machine was shared.")


@contextlib.contextmanager
def scratch_folder(output_dir):
    """Makes ``<output_dir>/scratch`` the temp folder of this process and its children while
    the block runs, then deletes it."""
    scratch = os.path.join(output_dir, "scratch")
    os.makedirs(scratch, exist_ok=True)
    saved = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    try:
        yield scratch
    finally:
        tempfile.tempdir = saved[1]
        if saved[0] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved[0]
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv):
    del argv
    if FLAGS.quick and FLAGS.full:
        raise app.UsageError("--quick and --full are exclusive")
    unknown = sorted(set(FLAGS.only) - set(GROUPS))
    if unknown:
        raise app.UsageError(f"unknown group(s) {unknown}; choose from {sorted(GROUPS)}")
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")  # each candidate is its own tf.function: no retrace news
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    settings = QUICK if FLAGS.quick else FULL
    output_dir = COMMITTED_RESULTS if FLAGS.update_results else FLAGS.output_dir
    start = time.perf_counter()
    with scratch_folder(output_dir):
        for name in FLAGS.only or list(GROUPS):
            result = harness.run_group(name, GROUPS[name], settings)
            logging.info("wrote %s", harness.write_group(result, output_dir))
    markdown, png = harness.write_report(output_dir, order=list(GROUPS), note=FLAGS.note)
    logging.info("wrote %s%s in %.0f s", markdown, f" and {png}" if png else "",
                 time.perf_counter() - start)


if __name__ == "__main__":
    app.run(main)
