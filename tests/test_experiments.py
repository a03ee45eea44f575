"""Tests of the experiments package: the quick mode of each experiment, in-process.

Each experiment runs once per module (``--quick`` settings) into a temporary folder with
its own TFDS data_dir; the tests check the files and that the numbers are sane. The
activation-statistics check is numeric: SELU + LeCun stays at (0, 1) at depth 64, ReLU +
Glorot does not. Figure checks skip without matplotlib (the ``experiments`` extra).
"""

import json
import math

import numpy as np
import pytest
from absl import flags

from experiments import EXPERIMENTS, cli, common, training
from selu_zoo import ALPHA, SCALE


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A results folder and a TFDS data_dir shared by this module's quick runs."""
    root = tmp_path_factory.mktemp("experiments")
    return {"output_dir": root / "results", "data_dir": root / "tfds", "cache": {}}


@pytest.fixture(scope="module")
def quick(workspace):
    """Returns a function running one experiment in quick mode once (cached)."""
    def run(name):
        cache = workspace["cache"]
        if name not in cache:
            cache[name] = cli.run_experiment(
                name, str(workspace["output_dir"]), quick=True,
                data_dir=str(workspace["data_dir"]))
        return cache[name]
    return run


def _read_json(workspace, name):
    with open(workspace["output_dir"] / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def _check_text_outputs(workspace, name, results):
    output_dir = workspace["output_dir"]
    assert (output_dir / f"{name}.json").is_file()
    markdown = (output_dir / f"{name}.md").read_text(encoding="utf-8")
    assert markdown.startswith("# ")
    assert f"python -m experiments --only={name} --quick" in markdown
    on_disk = _read_json(workspace, name)
    assert on_disk["quick"] is True and on_disk["runtime_s"] >= 0
    assert on_disk["command"] == results["command"]
    return on_disk, markdown


def test_activation_stats_selu_lecun_stays_normalized_at_depth_64(workspace, quick):
    results = quick("activation_stats")
    on_disk, markdown = _check_text_outputs(workspace, "activation_stats", results)
    init = on_disk["init"]
    assert on_disk["settings"]["depth"] == 64
    for variant in on_disk["settings"]["variants"]:
        assert len(init[variant]["mean"]) == len(init[variant]["variance"]) == 64
    selu = init["selu_lecun"]
    assert abs(selu["mean"][-1]) < 0.1
    assert abs(selu["variance"][-1] - 1.0) < 0.15
    # every layer, not only the last
    assert max(abs(m) for m in selu["mean"]) < 0.1
    assert max(abs(v - 1.0) for v in selu["variance"]) < 0.15
    relu = init["relu_glorot"]
    assert not (abs(relu["mean"][-1]) < 0.1 and abs(relu["variance"][-1] - 1.0) < 0.15)
    assert relu["variance"][-1] < 1e-6  # variance halves per layer: 2**-64 scale
    assert "SELU + LeCun normal" in markdown and "layer 64" in markdown


def test_activation_stats_after_training(workspace, quick):
    trained = quick("activation_stats")["trained"]
    depth = quick("activation_stats")["settings"]["train_depth"]
    for variant, stats in trained.items():
        assert len(stats["variance"]) == depth
        assert 0.0 <= stats["test_accuracy"] <= 1.0
    selu = trained["selu_lecun"]
    assert math.isfinite(selu["train_loss"]) and selu["train_loss"] < math.log(10)
    assert abs(selu["mean"][-1]) < 0.25 and 0.5 < selu["variance"][-1] < 1.5
    assert trained["relu_glorot"]["variance"][-1] < 0.05


def test_training_curves(workspace, quick):
    results = quick("training_curves")
    on_disk, markdown = _check_text_outputs(workspace, "training_curves", results)
    settings = on_disk["settings"]
    assert on_disk["datasets"]["mnist"] == {"skipped": "not prepared in the TFDS data_dir"}
    assert "Skipped: mnist" in markdown
    digits = on_disk["datasets"]["digits"]
    for depth in settings["depths"]:
        for variant in settings["variants"]:
            r = digits[f"depth_{depth}"][variant]
            assert r["learning_rate"] in settings["learning_rates"]
            assert len(r["train_loss_mean"]) == settings["epochs"]
            assert set(r["search_validation_loss"]) == {
                str(lr) for lr in settings["learning_rates"]}
            assert all(0 < loss < 10 for loss in r["train_loss_mean"])
            assert r["train_loss_min"][-1] <= r["train_loss_mean"][-1] <= r[
                "train_loss_max"][-1]
            assert 0.0 <= r["validation_accuracy_mean"] <= 1.0
    # the chosen rate has the lowest validation loss of the search
    r = digits[f"depth_{settings['depths'][0]}"]["snn"]
    assert r["search_validation_loss"][str(r["learning_rate"])] == min(
        r["search_validation_loss"].values())


def test_uci(workspace, quick):
    results = quick("uci")
    on_disk, markdown = _check_text_outputs(workspace, "uci", results)
    settings = on_disk["settings"]
    for name in settings["datasets"]:
        assert name in markdown
        for variant in settings["variants"]:
            r = on_disk["datasets"][name][variant]
            assert len(r["test_accuracy"]) == settings["seeds"]
            assert 0.0 <= r["test_accuracy_mean"] <= 1.0
            assert r["test_accuracy_std"] >= 0.0
            assert len(r["grid"]) == (len(settings["learning_rates"]) * len(settings["depths"])
                                      * len(settings["dropout_rates"]))
            assert r["config"]["learning_rate"] in settings["learning_rates"]
        # far better than chance (3 classes) even with the tiny budget
        assert max(on_disk["datasets"][name][v]["test_accuracy_mean"]
                   for v in settings["variants"]) > 0.6
    ranks = on_disk["summary"]["mean_rank"]
    assert all(1.0 <= rank <= len(settings["variants"]) for rank in ranks.values())
    assert sum(ranks.values()) == pytest.approx(sum(range(1, len(ranks) + 1)))


def test_theory(workspace, quick):
    results = quick("theory")
    on_disk, markdown = _check_text_outputs(workspace, "theory", results)
    normalized = on_disk["fields"][0]
    assert (normalized["omega"], normalized["tau"]) == (0.0, 1.0)
    assert normalized["fixed_point"] == pytest.approx([0.0, 1.0], abs=1e-9)
    assert normalized["spectral_norm_at_fixed_point"] == pytest.approx(0.7877, abs=1e-4)
    assert normalized["converged_fraction"] == 1.0
    paper = next(r for r in on_disk["parameters"] if (r["mean"], r["variance"]) == (0, 1))
    assert paper["scale"] == pytest.approx(SCALE, rel=1e-5)
    assert paper["alpha"] == pytest.approx(ALPHA, rel=1e-5)
    for row in on_disk["parameters"]:
        assert row["fixed_point"] == pytest.approx([row["mean"], row["variance"]], abs=1e-5)
        assert row["spectral_norm"] < 1.0
    # the grids themselves: arrows near (0, 1) are short, far away they are long
    field = results["fields"][0]
    length = np.hypot(field["d_mean"], field["d_variance"])
    near = np.argmin(np.hypot(field["mean"], field["variance"] - 1.0))
    assert length.flat[near] < 0.2 < length.max()
    assert "1.050701" in markdown and "1.673263" in markdown


def test_zoo(workspace, quick):
    results = quick("zoo")
    (snn,) = results["models"].values()
    assert snn["kind"] == "classifier" and 0 <= snn["test"]["accuracy"] <= 1
    for key in ("before_training", "after_training"):
        (layer,) = snn[key].values()  # one SELU layer in the quick model
        assert layer["variance"] > 0 and isinstance(layer["in_theorem1_domain"], bool)
    on_disk = json.loads((workspace["output_dir"] / "zoo.json").read_text())
    assert on_disk["models"]["snn"]["parameters"] == snn["parameters"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_figures(workspace, quick, name):
    pytest.importorskip("matplotlib")
    results = quick(name)
    assert results["figures"]
    for figure in results["figures"]:
        data = (workspace["output_dir"] / figure).read_bytes()
        assert data.startswith(b"\x89PNG") and 10_000 < len(data) < 400_000


def test_command_line(tmp_path):
    argv = ["experiments", "--only=theory", "--quick", f"--output_dir={tmp_path}",
            "--seeds=2"]
    flags.FLAGS(argv)
    try:
        cli.main(argv[:1])
    finally:
        flags.FLAGS.unparse_flags()
    written = json.loads((tmp_path / "theory.json").read_text())
    assert written["command"] == "python -m experiments --only=theory --quick --seeds=2"
    assert written["settings"]["seeds"] == 2


def test_parse_only():
    assert cli.parse_only("uci, theory,uci") == ["uci", "theory"]
    with pytest.raises(ValueError, match="unknown experiment 'mnist'"):
        cli.parse_only("theory,mnist")
    with pytest.raises(ValueError, match="no experiment"):
        cli.parse_only(" , ")


def test_jsonable_and_batches():
    assert common.jsonable({"a": np.float32(1.23456789), "b": [np.nan, np.inf], "c": (1,)}) == {
        "a": 1.23457, "b": [None, None], "c": [1]}
    rng = np.random.default_rng(0)
    batches = training.epoch_batches(10, 3, 2, rng)
    assert batches.shape == (6, 3)
    assert len(set(batches[:3].ravel())) == 9  # one pass: no repeats
    stream = training.stream_batches(7, 4, 7, rng)
    assert stream.shape == (7, 4)
    assert np.bincount(stream.ravel(), minlength=7).tolist() == [4] * 7  # 4 full passes
