"""The theory drawn: the moment map's vector field, its fixed point, and SELU parameters.

* The (mean, variance) plane with arrows from each point ``x`` in the direction of
  ``g(x) - x``, ``g`` = `selu_zoo.theory.moment_map` for normalized weights
  (``omega = 0``, ``tau = 1``), over a background counting the iterations of ``g``
  needed to come within ``tolerance`` of the fixed point (0, 1) (the basin and how fast
  it is crossed); trajectories of ``g`` from a few starting points; the contour where
  the Jacobian's spectral norm is 1 (inside it ``g`` is a contraction); the paper's
  Theorem 1 domain (mean in [-0.1, 0.1], variance in [0.8, 1.5]). A second panel shows
  perturbed weights (``omega = 0.1``, ``tau = 1.05``), whose fixed point moves away
  from (0, 1) (found with `selu_zoo.theory.fixed_point`).
* `selu_zoo.theory.selu_parameters` for a few target fixed points (a table, each checked
  by `fixed_point` and the Jacobian's spectral norm there), and scale and alpha as
  curves over the target variance for three target means.

With ``omega = 0`` the pre-activation does not depend on the input mean, so the map
forgets the mean in one step and the basin is set by the variance alone.
"""

import os

import numpy as np
from absl import logging
from ml_collections import ConfigDict

from experiments import common, plotting
from selu_zoo import ALPHA, SCALE, theory

NAME = "theory"


def get_settings(quick=False):
    """The experiment's settings.

    Args:
      quick: a coarser grid and fewer curve points.

    Returns:
      A ``ConfigDict``.
    """
    s = ConfigDict()
    s.mean_range = [-1.0, 1.0]
    s.variance_range = [0.05, 3.0]
    s.grid = 21  # arrows per axis
    s.basin_grid = 161  # background pixels per axis
    s.iterations = 60
    s.tolerance = 1e-3
    s.starts = [[-0.9, 0.1], [0.9, 2.8], [-0.8, 2.5], [0.7, 0.3], [0.4, 1.6]]
    s.perturbed_omega = 0.1
    s.perturbed_tau = 1.05
    s.targets = [[0.0, 1.0], [0.0, 0.25], [0.0, 0.5], [0.0, 2.0], [0.0, 4.0],
                 [-0.5, 1.0], [-0.1, 1.0], [0.1, 1.0], [0.2, 1.0], [0.5, 1.0]]
    s.curve_means = [-0.2, 0.0, 0.2]
    s.curve_variances = [0.25, 4.0]
    s.curve_points = 40
    s.seeds = 1  # unused (deterministic); accepted for a uniform command line
    if quick:
        s.grid = 9
        s.basin_grid = 41
        s.curve_points = 8
    return s


def iterate(mean, variance, iterations, omega=0.0, tau=1.0):
    """Iterates the moment map from (arrays of) starting points.

    Args:
      mean: starting means.
      variance: starting variances (> 0).
      iterations: number of steps.
      omega: sum of the incoming weights.
      tau: sum of their squares.

    Returns:
      float64 array ``(iterations + 1, 2, *shape)``: the trajectory, start included.
    """
    mean, variance = np.broadcast_arrays(np.asarray(mean, np.float64),
                                         np.asarray(variance, np.float64))
    path = [np.stack([mean, variance])]
    for _ in range(iterations):
        mean, variance = theory.moment_map(mean, variance, omega, tau)
        path.append(np.stack([np.asarray(mean), np.asarray(variance)]))
    return np.array(path)


def steps_to_converge(path, target, tolerance):
    """First step at which a trajectory is within ``tolerance`` of ``target`` (max norm).

    Args:
      path: from `iterate`.
      target: (mean, variance).
      tolerance: distance.

    Returns:
      float array of the trajectories' shape; NaN where never within tolerance.
    """
    target = np.asarray(target, np.float64).reshape((1, 2) + (1,) * (path.ndim - 2))
    close = np.max(np.abs(path - target), axis=1) <= tolerance
    first = np.argmax(close, axis=0).astype(np.float64)
    return np.where(close.any(axis=0), first, np.nan)


def vector_field(settings, omega, tau):
    """The moment map on the arrow grid and the basin grid.

    Args:
      settings: from `get_settings`.
      omega: sum of the incoming weights.
      tau: sum of their squares.

    Returns:
      Dict: ``fixed_point``; arrow grid ``mean``, ``variance``, ``d_mean``,
      ``d_variance`` (``g(x) - x``); basin grid ``basin_mean``, ``basin_variance``,
      ``steps`` (iterations to converge, NaN if not within ``settings.iterations``),
      ``spectral_norm`` (of the Jacobian); ``trajectories`` from ``settings.starts``.
    """
    fixed = theory.fixed_point(omega=omega, tau=tau)
    means = np.linspace(*settings.mean_range, settings.grid)
    variances = np.linspace(*settings.variance_range, settings.grid)
    m, v = np.meshgrid(means, variances)
    gm, gv = theory.moment_map(m, v, omega, tau)
    bm, bv = np.meshgrid(np.linspace(*settings.mean_range, settings.basin_grid),
                         np.linspace(*settings.variance_range, settings.basin_grid))
    steps = steps_to_converge(iterate(bm, bv, settings.iterations, omega, tau), fixed,
                              settings.tolerance)
    starts = np.asarray(settings.starts, np.float64)
    paths = iterate(starts[:, 0], starts[:, 1], 12, omega, tau)  # (13, 2, starts)
    return {
        "omega": omega, "tau": tau, "fixed_point": fixed,
        "spectral_norm_at_fixed_point": theory.jacobian_spectral_norm(*fixed, omega, tau),
        "mean": m, "variance": v, "d_mean": gm - m, "d_variance": gv - v,
        "basin_mean": bm, "basin_variance": bv, "steps": steps,
        "spectral_norm": theory.jacobian_spectral_norm(bm, bv, omega, tau),
        "trajectories": np.moveaxis(paths, 2, 0),  # (starts, steps, 2)
        "converged_fraction": float(np.mean(np.isfinite(steps))),
        "max_steps": float(np.nanmax(steps)) if np.isfinite(steps).any() else None,
    }


def parameter_table(targets):
    """SELU parameters for target fixed points, each checked by iteration and Jacobian.

    Args:
      targets: list of (mean, variance).

    Returns:
      List of dicts: ``mean``, ``variance``, ``scale``, ``alpha``, ``fixed_point`` (of
      the map with those parameters, started at the target), ``spectral_norm`` (of the
      Jacobian at the target; < 1: attracting), or ``error`` if unsolvable.
    """
    rows = []
    for mean, variance in targets:
        row = {"mean": mean, "variance": variance}
        try:
            scale, alpha = theory.selu_parameters(mean, variance)
        except ValueError as error:
            row["error"] = str(error)
            rows.append(row)
            continue
        row.update(scale=scale, alpha=alpha,
                   fixed_point=theory.fixed_point(scale=scale, alpha=alpha, mean0=mean,
                                                  variance0=variance),
                   spectral_norm=float(theory.jacobian_spectral_norm(
                       mean, variance, scale=scale, alpha=alpha)))
        rows.append(row)
    return rows


def parameter_curves(settings):
    """Scale and alpha over target variances, one curve per target mean.

    Args:
      settings: from `get_settings`.

    Returns:
      Dict: ``variance`` (the x values) and, per mean (as a string), ``scale`` and
      ``alpha`` lists (NaN where no solution exists).
    """
    variances = np.geomspace(*settings.curve_variances, settings.curve_points)
    curves = {"variance": variances}
    for mean in settings.curve_means:
        scales, alphas = [], []
        for variance in variances:
            try:
                scale, alpha = theory.selu_parameters(mean, float(variance))
            except ValueError:
                scale, alpha = np.nan, np.nan
            scales.append(scale)
            alphas.append(alpha)
        curves[str(mean)] = {"scale": scales, "alpha": alphas}
    return curves


def run(settings, data_dir=None):
    """Computes the vector fields, the parameter table and curves.

    Args:
      settings: from `get_settings`.
      data_dir: unused (no data).

    Returns:
      The results dict (JSON-ready). The grids are kept for plotting but only summaries
      go to JSON (see `to_json`).
    """
    del data_dir
    normalized = vector_field(settings, 0.0, 1.0)
    perturbed = vector_field(settings, settings.perturbed_omega, settings.perturbed_tau)
    for field in (normalized, perturbed):
        logging.info("omega %g tau %g: fixed point %s, spectral norm %.4f, %.1f%% of the "
                     "grid converges within %d steps", field["omega"], field["tau"],
                     field["fixed_point"], field["spectral_norm_at_fixed_point"],
                     100 * field["converged_fraction"], settings.iterations)
    return {"settings": settings.to_dict(), "fields": [normalized, perturbed],
            "parameters": parameter_table(settings.targets),
            "curves": parameter_curves(settings)}


_GRID_KEYS = ("mean", "variance", "d_mean", "d_variance", "basin_mean", "basin_variance",
              "steps", "spectral_norm")


def to_json(results):
    """Drops the big grids (they are regenerated in well under a second).

    Args:
      results: from `run`.

    Returns:
      A JSON-ready copy with per-field summaries only.
    """
    out = {k: v for k, v in results.items() if k != "fields"}
    out["fields"] = [{k: v for k, v in field.items() if k not in _GRID_KEYS}
                     for field in results["fields"]]
    return common.jsonable(out)


def _pair(point):
    """``(mean, variance)`` with six decimals, without a sign on rounded zeros."""
    return "({}, {})".format(*(f"{value:.6f}".replace("-0.000000", "0.000000")
                               for value in point))


def markdown(results):
    """The fixed points and the parameter table as Markdown.

    Args:
      results: from `run`.

    Returns:
      A Markdown string.
    """
    s = results["settings"]
    field_rows = [[f["omega"], f["tau"], _pair(f["fixed_point"]),
                   common.fmt(f["spectral_norm_at_fixed_point"], ".4f"),
                   f"{100 * f['converged_fraction']:.1f}%",
                   common.fmt(f["max_steps"], ".0f")] for f in results["fields"]]
    rows = []
    for r in results["parameters"]:
        if "error" in r:
            rows.append([r["mean"], r["variance"], "no solution", "", "", ""])
            continue
        rows.append([r["mean"], r["variance"], f"{r['scale']:.6f}", f"{r['alpha']:.6f}",
                     _pair(r["fixed_point"]),
                     f"{r['spectral_norm']:.4f}"])
    return "\n".join([
        "# Theory: the moment map and SELU parameters",
        "",
        f"Fixed points of the moment map and convergence of its iteration over the grid "
        f"mean in {s['mean_range']} x variance in {s['variance_range']} "
        f"({s['basin_grid']}^2 starts, at most {s['iterations']} steps, tolerance "
        f"{s['tolerance']}):",
        "",
        common.markdown_table(["omega", "tau", "fixed point (mean, variance)",
                               "Jacobian spectral norm there", "grid converged",
                               "max steps"], field_rows),
        "`selu_parameters(mean, variance)` (omega = 0, tau = 1): the SELU scale and alpha "
        "that make (mean, variance) the fixed point; checked by `fixed_point` with those "
        "parameters and by the Jacobian's spectral norm at the target (< 1: attracting).",
        "",
        common.markdown_table(["target mean", "target variance", "scale", "alpha",
                               "fixed point found", "spectral norm"], rows),
    ])


def _plot_field(ax, field, settings, plt, title):
    """One panel: basin background, spectral-norm contour, arrows, trajectories."""
    image = ax.pcolormesh(field["basin_mean"], field["basin_variance"], field["steps"],
                          cmap="Blues_r", shading="auto")
    ax.contour(field["basin_mean"], field["basin_variance"], field["spectral_norm"],
               levels=[1.0], colors="tab:red", linewidths=1.0)
    d_mean, d_var = field["d_mean"], field["d_variance"]
    length = np.hypot(d_mean, d_var)
    length = np.where(length > 0, length, 1.0)
    ax.quiver(field["mean"], field["variance"], d_mean / length, d_var / length,
              np.log10(length), cmap="autumn", angles="xy", pivot="mid", width=0.004)
    for path in field["trajectories"]:
        ax.plot(path[:, 0], path[:, 1], "-o", color="k", ms=2.5, lw=0.8, alpha=0.8)
    ax.add_patch(plt.Rectangle((-0.1, 0.8), 0.2, 0.7, fill=False, ls="--", ec="tab:green",
                               lw=1.2))
    fixed = field["fixed_point"]
    ax.plot(*fixed, marker="*", color="gold", mec="k", ms=14, zorder=5)
    ax.set_xlim(*settings["mean_range"])
    ax.set_ylim(*settings["variance_range"])
    ax.set_xlabel("mean")
    ax.set_ylabel("variance")
    ax.set_title(title, fontsize=9)
    return image


def plot(results, output_dir):
    """Writes ``theory_moment_map.png`` and ``theory_selu_parameters.png``.

    Args:
      results: from `run`.
      output_dir: destination folder.

    Returns:
      List of the PNG paths written (empty without matplotlib).
    """
    plt = plotting.pyplot()
    s = results["settings"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for ax, field in zip(axes, results["fields"]):
        fixed = field["fixed_point"]
        image = _plot_field(
            ax, field, s, plt,
            f"omega={field['omega']:g}, tau={field['tau']:g}: fixed point "
            f"({fixed[0]:.3f}, {fixed[1]:.3f}), |J|={field['spectral_norm_at_fixed_point']:.3f}")
    fig.colorbar(image, ax=axes, label=f"iterations to reach the fixed point (±{s['tolerance']})")
    fig.suptitle("Moment map g(mean, variance) of a SELU layer: arrows g(x) - x (direction; "
                 "color: log10 length), black: iterates, red: |J| = 1, green: Theorem 1 "
                 "domain", fontsize=10)
    paths = [os.path.join(output_dir, f"{NAME}_moment_map.png")]
    plotting.save(fig, paths[0])

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    curves = results["curves"]
    for mean in s["curve_means"]:
        for ax, key in zip(axes, ("scale", "alpha")):
            ax.plot(curves["variance"], curves[str(mean)][key], label=f"target mean {mean:g}")
    for ax, key in zip(axes, ("scale (lambda)", "alpha")):
        ax.set_xscale("log")
        ticks = [t for t in (0.25, 0.5, 1.0, 2.0, 4.0)
                 if s["curve_variances"][0] <= t <= s["curve_variances"][1]]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("target variance")
        ax.set_ylabel(key)
        ax.axvline(1.0, color="k", lw=0.6, ls=":")
        ax.legend(fontsize=8)
    axes[0].plot([1.0], [SCALE], "k*", ms=10)
    axes[1].plot([1.0], [ALPHA], "k*", ms=10)
    fig.suptitle("selu_parameters(mean, variance): SELU parameters for other fixed points "
                 "(omega=0, tau=1); star: the paper's (1.0507, 1.6733)", fontsize=10)
    paths.append(os.path.join(output_dir, f"{NAME}_selu_parameters.png"))
    plotting.save(fig, paths[1])
    return paths
