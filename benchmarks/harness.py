"""Shared timing and reporting for the benchmark groups.

A group module builds `Comparison`s: candidates that do the same work, measured side by side
in this process. `measure` warms every candidate up (compiles, first allocations), calibrates
how many calls make one sample, then takes `repeats` samples of each candidate *interleaved*
(round-robin, with the order rotated every round), so that load from other processes on a
shared machine spreads over all candidates instead of biasing one. A candidate too slow for
the time budget gets fewer samples (at least 3; the JSON records how many). Reported: median, min and
max seconds per call, and the speed of each candidate relative to the comparison's reference
candidates (reference median / candidate median: 2.0 means twice as fast). The same ratio of
process CPU time (all threads) is kept too: less sensitive to other processes on a shared
machine, but it also counts threads that spin while waiting for work.

`write_group` stores one JSON file per group; `write_report` rebuilds ``RESULTS.md`` and
``ratios.png`` (when matplotlib is installed) from every group JSON in the output folder, so
running a single group with ``--only`` refreshes that group and keeps the others.
"""

import dataclasses
import datetime
import glob
import json
import math
import os
import platform
import statistics
import time
from typing import Callable, Optional

from absl import logging

SCHEMA_VERSION = 1


@dataclasses.dataclass
class Candidate:
    """One way of doing a comparison's work: ``fn()`` does one call's worth, synchronously."""

    name: str
    fn: Callable[[], object]


@dataclasses.dataclass
class Comparison:
    """Candidates measured together. ``references`` name candidates; the first is primary."""

    name: str
    candidates: list
    references: list
    items_per_call: Optional[int] = None  # e.g. a batch's examples: reports items per second
    item_name: str = "examples"
    params: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Settings:
    """How long to measure: the same for every comparison of a run."""

    repeats: int = 15
    warmup: int = 3
    min_sample_s: float = 0.3
    budget_s: float = 30.0  # per candidate and comparison: slower candidates get fewer repeats
    mode: str = "full"


class Skip(Exception):
    """Raised by a group's ``build`` when it cannot run here; the reason is logged and stored."""


def measure(comparison, settings):
    """Times a comparison's candidates interleaved; returns its JSON-ready result."""
    candidates = comparison.candidates
    numbers, repeats = {}, {}
    for candidate in candidates:
        candidate.fn()  # the first call traces and compiles
        start = time.perf_counter()
        candidate.fn()
        once = max(time.perf_counter() - start, 1e-7)
        for _ in range(settings.warmup - 1 if once < 1.0 else 0):
            candidate.fn()
        # calls per sample, so that a sample lasts >= min_sample_s; fewer repeats (at least 3)
        # for a candidate that would exceed the time budget of a comparison
        numbers[candidate.name] = number = max(1, math.ceil(settings.min_sample_s / once))
        affordable = int(settings.budget_s / (once * number))
        repeats[candidate.name] = max(min(settings.repeats, affordable), min(3, settings.repeats))
    samples = {candidate.name: [] for candidate in candidates}
    cpu_samples = {candidate.name: [] for candidate in candidates}
    for round_index in range(settings.repeats):
        shift = round_index % len(candidates)
        for candidate in candidates[shift:] + candidates[:shift]:
            if round_index >= repeats[candidate.name]:
                continue
            number = numbers[candidate.name]
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(number):
                candidate.fn()
            samples[candidate.name].append((time.perf_counter() - start) / number)
            cpu_samples[candidate.name].append((time.process_time() - cpu_start) / number)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu_samples.items()}
    results = []
    for candidate in candidates:
        values = samples[candidate.name]
        entry = {
            "name": candidate.name,
            "median_s": medians[candidate.name],
            "min_s": min(values),
            "max_s": max(values),
            "repeats": len(values),
            "calls_per_sample": numbers[candidate.name],
            "speed_vs": {ref: medians[ref] / medians[candidate.name]
                         for ref in comparison.references},
            "cpu_median_s": cpu_medians[candidate.name],
            "cpu_speed_vs": {ref: cpu_medians[ref] / max(cpu_medians[candidate.name], 1e-9)
                             for ref in comparison.references},
        }
        if comparison.items_per_call:
            entry[f"{comparison.item_name}_per_s"] = (
                comparison.items_per_call / medians[candidate.name])
        results.append(entry)
    return {
        "name": comparison.name,
        "references": list(comparison.references),
        "items_per_call": comparison.items_per_call,
        "item_name": comparison.item_name,
        "params": comparison.params,
        "notes": comparison.notes,
        "candidates": results,
    }


def run_group(name, module, settings, **build_kwargs):
    """Builds and measures one group; returns its JSON-ready result (possibly skipped).

    ``module.build`` returns `Comparison`s to measure here, or `measure`'s results (dicts)
    that it measured elsewhere.
    """
    result = {
        "schema_version": SCHEMA_VERSION,
        "group": name,
        "title": module.TITLE,
        "mode": settings.mode,
        "settings": dataclasses.asdict(settings),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "load_average_before": _load_average(),
    }
    try:
        comparisons = module.build(settings, **build_kwargs)
    except Skip as skip:
        logging.warning("benchmark group %r skipped: %s", name, skip)
        result["skipped"] = str(skip)
        return result
    result["comparisons"] = []
    for comparison in comparisons:
        # A dict is a comparison measured already (in a child process, e.g. another backend).
        measured = comparison if isinstance(comparison, dict) else None
        if measured is None:
            logging.info("measuring %s / %s", name, comparison.name)
            measured = measure(comparison, settings)
        result["comparisons"].append(measured)
        for entry in measured["candidates"]:
            logging.info("  %-40s %10.3f ms  %s", entry["name"], entry["median_s"] * 1e3,
                         "  ".join(f"x{v:.2f} vs {k}" for k, v in entry["speed_vs"].items()))
    result["load_average_after"] = _load_average()
    return result


# --- environment ----------------------------------------------------------------------------


def machine_info():
    """CPU model, core count and platform of this machine."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cpu_cores": os.cpu_count(), "platform": platform.platform()}


def versions():
    """Versions of Python and the libraries a benchmark may use (None when not installed)."""
    found = {"python": platform.python_version()}
    for module_name in ("tensorflow", "keras", "numpy", "torch", "matplotlib"):
        try:
            module = __import__(module_name)
            found[module_name] = getattr(module, "__version__", "unknown")
        except ImportError:
            found[module_name] = None
    return found


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


# --- reporting ------------------------------------------------------------------------------


def write_group(result, output_dir):
    """Writes ``<output_dir>/<group>.json``; returns its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{result['group']}.json")
    with open(path, "w") as file:
        json.dump(result, file, indent=2, sort_keys=False)
        file.write("\n")
    return path


def load_groups(output_dir, order=()):
    """Every group JSON in output_dir, groups named in ``order`` first."""
    results = []
    for path in glob.glob(os.path.join(output_dir, "*.json")):
        with open(path) as file:
            data = json.load(file)
        if isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION:
            results.append(data)
    rank = {name: i for i, name in enumerate(order)}
    return sorted(results, key=lambda r: (rank.get(r["group"], len(rank)), r["group"]))


def write_report(output_dir, order=(), note=""):
    """Rebuilds RESULTS.md (and ratios.png when matplotlib is installed) from the JSON files."""
    groups = load_groups(output_dir, order)
    markdown = os.path.join(output_dir, "RESULTS.md")
    with open(markdown, "w") as file:
        file.write(_markdown(groups, note))
    png = _plot(groups, os.path.join(output_dir, "ratios.png"))
    return markdown, png


def _fmt_time(seconds):
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


def _markdown(groups, note):
    lines = ["# Benchmark results", "",
             "Generated by `python -m benchmarks` from the JSON files next to this one. Times are "
             "wall-clock seconds per call: median, min and max over interleaved repeats after "
             "warm-up. *Speed vs X* is X's median time divided by the candidate's (above 1: "
             "faster than X). *CPU-time speed* is the same ratio of process CPU time (all "
             "threads): steadier when other jobs share the machine, but it counts threads "
             "spinning while they wait for work.", ""]
    if note:
        lines += [f"**Note:** {note}", ""]
    seen_machines = []
    for group in groups:
        machine = (group["machine"]["cpu_model"], group["machine"]["cpu_cores"])
        if machine not in seen_machines:
            seen_machines.append(machine)
    if groups:
        versions_ = groups[0]["versions"]
        lines += ["Machine: " + "; ".join(f"{m} ({c} cores)" for m, c in seen_machines) + ".",
                  "Versions: " + ", ".join(f"{k} {v}" for k, v in versions_.items()
                                           if v is not None) + ".", ""]
    for group in groups:
        lines += [f"## {group['title']} (`{group['group']}`)", "",
                  f"Mode `{group['mode']}`, started {group['started']}, load average "
                  f"before/after: {group.get('load_average_before')} / "
                  f"{group.get('load_average_after')}.", ""]
        if "skipped" in group:
            lines += [f"Skipped: {group['skipped']}", ""]
            continue
        for comparison in group["comparisons"]:
            refs = comparison["references"]
            rate = f"{comparison['item_name']}_per_s"
            head = ["candidate", "median", "min", "max", "repeats"]
            head += [f"speed vs {ref}" for ref in refs]
            head.append(f"CPU-time speed vs {refs[0]}")
            if comparison["items_per_call"]:
                head.append(f"{comparison['item_name']}/s")
            # structured parameters (dicts, lists) stay in the JSON; the table gets scalars
            params = ", ".join(f"{k}={v}" for k, v in comparison["params"].items()
                               if not isinstance(v, (dict, list)))
            lines += [f"### {comparison['name']}", ""]
            if params:
                lines += [f"Parameters: {params}.", ""]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for entry in comparison["candidates"]:
                row = [entry["name"], _fmt_time(entry["median_s"]), _fmt_time(entry["min_s"]),
                       _fmt_time(entry["max_s"]), str(entry["repeats"])]
                row += [f"{entry['speed_vs'][ref]:.2f}" for ref in refs]
                row.append(f"{entry['cpu_speed_vs'][refs[0]]:.2f}")
                if comparison["items_per_call"]:
                    row.append(f"{entry[rate]:,.0f}")
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
            lines += [f"- {note}" for note in comparison["notes"]]
            if comparison["notes"]:
                lines.append("")
    return "\n".join(lines)


def _plot(groups, path):
    """A bar chart per comparison of speed vs its primary reference; None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logging.info("matplotlib not installed: no %s", path)
        return None
    panels = [(group, comparison) for group in groups for comparison in group.get("comparisons", [])]
    if not panels:
        return None
    columns = 2
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 2.6 * rows), squeeze=False)
    for axis, (group, comparison) in zip(axes.flat, panels):
        reference = comparison["references"][0]
        names = [entry["name"] for entry in comparison["candidates"]]
        speeds = [entry["speed_vs"][reference] for entry in comparison["candidates"]]
        bars = axis.barh(names, speeds, color=["#777777" if n == reference else "#3a6ea5"
                                               for n in names])
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
        axis.invert_yaxis()
        axis.set_title(f"{group['group']}: {comparison['name']}", fontsize=8)
        axis.set_xlabel(f"speed vs {reference} (higher is faster)", fontsize=7)
        axis.tick_params(labelsize=7)
        if max(speeds) / min(speeds) > 20:  # e.g. a pathological candidate: keep bars readable
            axis.set_xscale("log")
            axis.set_xlim(min(speeds) / 2, max(speeds) * 3)
        else:
            axis.set_xlim(0, max(speeds) * 1.25)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# --- shared candidate builders ----------------------------------------------------------------

FLOOR_SCALE, FLOOR_SHIFT = 1.0507009873554805, -0.3017  # non-trivial: grappler cannot drop them


def floor(x):
    """The element-wise floor: an affine map, the same memory traffic as an activation."""
    return x * FLOOR_SCALE + FLOOR_SHIFT


def elementwise_comparisons(label, functions, size, references, dtype="float32"):
    """Forward and forward+backward comparisons, in graph and XLA mode, of element-wise ops.

    Args:
      label: what the functions compute, for the comparison names.
      functions: candidate name -> function of a tensor, in display order.
      size: number of elements of the input.
      references: candidate names to report speeds against (the first is primary).
      dtype: input dtype.

    Returns:
      A list of four `Comparison`s. Forward+backward calls return both y and dx (with a
      random upstream gradient), so nothing can be pruned.
    """
    import tensorflow as tf

    x = tf.random.stateless_normal([size], seed=[1, 2], stddev=2.0, dtype=dtype)
    dy = tf.random.stateless_normal([size], seed=[3, 4], dtype=dtype)

    def forward_and_backward(fn):
        def run(x, dy):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return y, tape.gradient(y, x, output_gradients=dy)
        return run

    comparisons = []
    for direction, wrap, args in (("forward", lambda fn: fn, (x,)),
                                  ("forward+backward", forward_and_backward, (x, dy))):
        for mode, jit in (("graph", False), ("XLA", True)):
            candidates = []
            for name, fn in functions.items():
                compiled = tf.function(wrap(fn), jit_compile=jit, autograph=False)
                candidates.append(Candidate(name, lambda c=compiled, a=args: c(*a)))
            comparisons.append(Comparison(
                name=f"{label}, {direction}, {mode}", candidates=candidates,
                references=list(references),
                params={"elements": size, "dtype": dtype, "jit_compile": jit}))
    return comparisons
