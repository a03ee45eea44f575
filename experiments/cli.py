"""Command line: ``python -m experiments --only=<comma list> [--quick] ...``.

Each experiment module (see `experiments.EXPERIMENTS`) provides ``get_settings(quick)``,
``run(settings, data_dir) -> results``, ``markdown(results)``,
``plot(results, output_dir) -> [png paths]`` and optionally ``to_json(results)`` (what
of the results goes to JSON; default: everything); `run_experiment` ties them together
and writes ``<name>.json`` and ``<name>.md`` next to the figures, into ``--output_dir``
(default ``output/experiments``, not committed); ``--update_results`` rewrites the committed
``experiments/results/`` instead.
"""

import importlib
import os
import time

from absl import flags
from absl import logging

from experiments import EXPERIMENTS, common

FLAGS = flags.FLAGS
flags.DEFINE_string("only", ",".join(EXPERIMENTS),
                    f"Comma-separated experiments to run, from: {', '.join(EXPERIMENTS)}.")
flags.DEFINE_bool("quick", False, "Tiny settings (seconds per experiment), as in the tests.")
COMMITTED_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
flags.DEFINE_string("output_dir", os.path.join("output", "experiments"),
                    "Folder for the JSON, Markdown and PNG results (ignored with "
                    "--update_results).")
flags.DEFINE_bool("update_results", False,
                  f"Write into the committed results folder, {COMMITTED_RESULTS}, instead of "
                  "--output_dir.")
flags.DEFINE_string("data_dir", None,
                    "TFDS data directory (embedded datasets are prepared there; MNIST is "
                    "used when prepared there). Default: TFDS's own default.")
flags.DEFINE_integer("seeds", None,
                     "Number of seeds per configuration (default 3; --quick: 1).")


def parse_only(only):
    """Splits and checks the ``--only`` list.

    Args:
      only: comma-separated experiment names.

    Returns:
      The names, in the given order, without duplicates.

    Raises:
      ValueError: for an unknown or missing name.
    """
    names = []
    for name in (part.strip() for part in only.split(",")):
        if not name:
            continue
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("--only names no experiment")
    return names


def command_line(name, quick, seeds):
    """The command that regenerates one experiment's files (shown in its Markdown).

    Args:
      name: experiment name.
      quick: whether quick mode was used.
      seeds: the ``--seeds`` override or None.

    Returns:
      The command as a string.
    """
    parts = ["python -m experiments", f"--only={name}"]
    if quick:
        parts.append("--quick")
    if seeds is not None:
        parts.append(f"--seeds={seeds}")
    return " ".join(parts)


def run_experiment(name, output_dir, quick=False, data_dir=None, seeds=None):
    """Runs one experiment and writes its JSON, Markdown and figures.

    Args:
      name: one of `experiments.EXPERIMENTS`.
      output_dir: folder for the results (created if missing).
      quick: use the tiny settings.
      data_dir: TFDS data directory, or None for TFDS's default.
      seeds: override of the number of seeds, or None.

    Returns:
      The results dict, with ``runtime_s``, ``command`` and ``figures`` added.
    """
    module = importlib.import_module(f"experiments.{name}")
    settings = module.get_settings(quick)
    if seeds is not None:
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        settings.seeds = int(seeds)
    os.makedirs(output_dir, exist_ok=True)
    logging.info("running %s (quick=%s) into %s", name, quick, output_dir)
    start = time.perf_counter()
    results = module.run(settings, data_dir=data_dir)
    results["command"] = command_line(name, quick, seeds)
    results["quick"] = bool(quick)
    results["figures"] = [os.path.basename(p) for p in module.plot(results, output_dir)]
    results["runtime_s"] = round(time.perf_counter() - start, 1)  # figures included
    to_json = getattr(module, "to_json", common.jsonable)
    common.write_json(os.path.join(output_dir, f"{name}.json"), to_json(results))
    footer = (f"\nRegenerate: `{results['command']}` (run time {results['runtime_s']} s"
              f"{', quick settings' if quick else ''}). Figures: "
              f"{', '.join(results['figures']) or 'none'}.\n")
    common.write_text(os.path.join(output_dir, f"{name}.md"),
                      module.markdown(results) + footer)
    logging.info("%s done in %.1f s", name, results["runtime_s"])
    return results


def main(argv):
    """absl entry point.

    Args:
      argv: leftover command line arguments (none accepted).
    """
    if len(argv) > 1:
        raise SystemExit(f"unexpected arguments: {' '.join(argv[1:])}")
    names = parse_only(FLAGS.only)
    start = time.perf_counter()
    output_dir = COMMITTED_RESULTS if FLAGS.update_results else FLAGS.output_dir
    for name in names:
        run_experiment(name, output_dir, quick=FLAGS.quick, data_dir=FLAGS.data_dir,
                       seeds=FLAGS.seeds)
    logging.info("all done in %.1f s: %s", time.perf_counter() - start, ", ".join(names))
