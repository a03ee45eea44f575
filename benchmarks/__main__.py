"""Runs the benchmark groups in one process and writes JSON, RESULTS.md and ratios.png.

    python -m benchmarks --quick                 # smoke run, under a minute
    python -m benchmarks --full                  # the full suite, a few minutes
    python -m benchmarks --only=selu,dropout     # some groups; other groups' results are kept
"""

import os
import time

from absl import app, flags, logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import (  # noqa: E402
    data_pipeline, dropout_op, harness, inference, selu_op, serving, training)

GROUPS = {"selu": selu_op, "dropout": dropout_op, "training": training, "inference": inference,
          "serving": serving, "data_pipeline": data_pipeline}

QUICK = harness.Settings(repeats=3, warmup=1, min_sample_s=0.05, budget_s=2.0, mode="quick")
FULL = harness.Settings(repeats=15, warmup=3, min_sample_s=0.3, budget_s=30.0, mode="full")

FLAGS = flags.FLAGS
flags.DEFINE_bool("quick", False, "Smoke run: small sizes, few repeats (under a minute).")
flags.DEFINE_bool("full", False, "Full run (the default): full sizes and repeats.")
flags.DEFINE_list("only", [], f"Groups to run, from {', '.join(GROUPS)}; default all.")
flags.DEFINE_string("output_dir", os.path.join(os.path.dirname(__file__), "results"),
                    "Where the JSON files, RESULTS.md and ratios.png go.")
flags.DEFINE_integer("threads", 0, "TensorFlow intra- and inter-op threads (0: its default).")
flags.DEFINE_string("note", "", "A sentence for RESULTS.md, e.g. that the machine was shared.")


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
    start = time.perf_counter()
    for name in FLAGS.only or list(GROUPS):
        result = harness.run_group(name, GROUPS[name], settings)
        logging.info("wrote %s", harness.write_group(result, FLAGS.output_dir))
    markdown, png = harness.write_report(FLAGS.output_dir, order=list(GROUPS), note=FLAGS.note)
    logging.info("wrote %s%s in %.0f s", markdown, f" and {png}" if png else "",
                 time.perf_counter() - start)


if __name__ == "__main__":
    app.run(main)
