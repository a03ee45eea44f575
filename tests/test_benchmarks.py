"""Smoke tests of the benchmark suite: small groups, tiny sizes, files and fields only.

Benchmarks are measured, never asserted: nothing here looks at a timing's value.
"""

import json

import numpy as np
import pytest

from benchmarks import harness, selu_op

TINY = harness.Settings(repeats=2, warmup=1, min_sample_s=0.001, budget_s=1.0, mode="quick")


@pytest.fixture(scope="module")
def selu_results(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("results")
    result = harness.run_group("selu", selu_op, TINY, size=4096)
    json_path = harness.write_group(result, output_dir)
    markdown, _ = harness.write_report(output_dir, order=["selu"], note="test run")
    return output_dir, json_path, markdown


def test_group_json_has_machine_versions_and_candidate_statistics(selu_results):
    _, json_path, _ = selu_results
    with open(json_path) as file:
        result = json.load(file)
    assert result["group"] == "selu" and result["mode"] == "quick"
    assert result["machine"]["cpu_model"] and result["machine"]["cpu_cores"] >= 1
    for library in ("python", "tensorflow", "keras", "numpy", "torch"):
        assert library in result["versions"]  # torch is None when not installed
    assert result["versions"]["tensorflow"] and result["versions"]["keras"]
    names = [c["name"] for c in result["comparisons"]]
    assert names == ["SELU, forward, graph", "SELU, forward, XLA",
                     "SELU, forward+backward, graph", "SELU, forward+backward, XLA"]
    for comparison in result["comparisons"]:
        assert comparison["params"]["elements"] == 4096
        candidates = {c["name"]: c for c in comparison["candidates"]}
        assert set(candidates) == {"floor x*c1+c2", "selu_zoo.ops.selu", "tf.nn.selu",
                                   "keras.activations.selu"}
        for entry in candidates.values():
            assert 0 < entry["min_s"] <= entry["median_s"] <= entry["max_s"]
            assert entry["repeats"] == 2 and entry["calls_per_sample"] >= 1
            assert set(entry["speed_vs"]) == set(comparison["references"])
            assert set(entry["cpu_speed_vs"]) == set(comparison["references"])
            assert entry["cpu_median_s"] >= 0
        for reference in comparison["references"]:
            assert candidates[reference]["speed_vs"][reference] == pytest.approx(1.0)


def test_markdown_report_lists_every_candidate(selu_results):
    _, _, markdown = selu_results
    text = open(markdown).read()
    assert "test run" in text and "## SELU op (`selu`)" in text
    assert text.count("| selu_zoo.ops.selu |") == 4
    assert "speed vs floor x*c1+c2" in text


def test_report_keeps_other_groups_and_skips_cleanly(selu_results, tmp_path):
    output_dir, _, _ = selu_results

    class Unavailable:
        TITLE = "needs something missing"

        @staticmethod
        def build(settings):
            raise harness.Skip("missing for the test")

    skipped = harness.run_group("unavailable", Unavailable, TINY)
    assert skipped["skipped"] == "missing for the test" and "comparisons" not in skipped
    harness.write_group(skipped, output_dir)
    markdown, _ = harness.write_report(output_dir, order=["selu"])
    text = open(markdown).read()
    assert "Skipped: missing for the test" in text and "## SELU op" in text


def test_data_pipeline_group_in_quick_mode():
    from benchmarks import data_pipeline

    result = harness.run_group("data_pipeline", data_pipeline, TINY, sizes=(500,),
                               memory=False, preparation_rows=0)
    (comparison,) = result["comparisons"]
    assert comparison["params"]["rows"] == 500 and comparison["params"]["train_rows"] == 300
    assert comparison["params"]["train_split_cached"] is True
    assert comparison["params"]["prepare_wall_s"] > 0 and "validating and preparing" in (
        comparison["notes"][0])
    candidates = {c["name"]: c for c in comparison["candidates"]}
    assert set(candidates) == {
        "train step, one in-memory batch", "pipeline, memory cache",
        "train step fed from the memory cache", "pipeline, streamed from disk",
        "train step fed by the streamed pipeline"}
    assert comparison["references"] == ["train step, one in-memory batch"]
    for entry in candidates.values():
        assert entry["examples_per_s"] > 0 and entry["repeats"] == 2


def test_data_pipeline_memory_figures(tmp_path, capsys):
    from benchmarks import data_pipeline

    path = data_pipeline.write_csv(str(tmp_path / "htru2_like.csv"), 300)
    rows = [line.split(",") for line in open(path).read().splitlines()]
    assert len(rows) == 300 and {len(row) for row in rows} == {9}
    assert {row[8] for row in rows} == {"0", "1"}
    data_pipeline.memory_child(path, str(tmp_path / "tfds"), "planned")
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["train_rows"] == 180 and figures["cached"] is True
    assert figures["baseline_rss_mib"] > 0
    assert figures["epoch_peak_above_baseline_mib"] >= figures["open_peak_above_baseline_mib"]


def test_csv_end_to_end_inputs_and_the_plain_keras_baseline(tmp_path, capsys):
    """The generated CSV has a header, 24 features and a balanced-enough 0/1 label, and the
    plain-Keras script trains on it and reports its test accuracy."""
    import pandas as pd

    from benchmarks import csv_end_to_end, plain_keras_csv

    path = csv_end_to_end.write_csv(str(tmp_path / "data.csv"), 500)
    frame = pd.read_csv(path)
    assert list(frame.columns) == [f"f{i}" for i in range(24)] + ["label"]
    assert len(frame) == 500 and set(frame["label"]) == {0, 1}
    assert 0.3 < frame["label"].mean() < 0.7
    plain_keras_csv.main(path, epochs=1)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= report["test_accuracy"] <= 1.0 and report["train_rows"] == 320


def test_step_floor_compares_the_snn_model_with_its_linear_twin_and_stock_keras():
    """The floor is the same task model with linear layers and no dropout; one call of a
    candidate runs `steps_per_execution` train steps of Keras' own train function."""
    import keras

    from benchmarks import step_floor
    from selu_zoo.layers import SELUDense

    x = np.random.default_rng(0).normal(size=(64, step_floor.FEATURES)).astype("float32")
    config, info = step_floor._config(depth=2, width=16), step_floor._info(x)
    models = {kind: step_floor._model(kind, config, info)
              for kind in ("linear", "selu_zoo", "keras")}
    layer_types = {kind: {type(layer) for layer in model._flatten_layers()}
                   for kind, model in models.items()}
    assert SELUDense in layer_types["selu_zoo"] and SELUDense not in layer_types["linear"]
    assert keras.layers.AlphaDropout in layer_types["keras"]
    assert keras.layers.AlphaDropout not in layer_types["linear"]
    dense = [layer for layer in models["linear"]._flatten_layers()
             if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 3 and all(layer.activation is keras.activations.linear
                                   for layer in dense)
    assert all(type(m) is type(models["selu_zoo"]) for m in models.values())  # one task
    y = (x[:, 0] > 0).astype("int32")
    call = step_floor._train_call(models["selu_zoo"], x, y, batch=8, steps_per_execution=4,
                                  jit_compile=True)
    call()
    assert int(models["selu_zoo"].optimizer.iterations) == 4
