"""selu_zoo.export: one complete, verified artifact set per version, for stock tools.

Three task models (an SNN classifier, an SNN VAE, an unrolled SELU-RNN regressor) are built
by the zoo's builders at tiny widths, trained for a few steps and exported once per module;
every test reads those artifacts. The checks that need a fresh process run in the background
while the in-process tests run: the CLI on generic Keras models (started first), then
``saved_model_cli`` and a process that loads the SavedModels without selu_zoo and the
``.keras`` files with only selu_zoo and keras (started once the exports exist). Their tests
come last and collect the results.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import selu_zoo
from models import rnn as rnn_models
from models import snn as snn_models
from models import vae as vae_models
from selu_zoo import export, tasks
from selu_zoo.datasets.pipeline import DatasetInfo
from selu_zoo.export import (evaluation, formats, pipeline, publish, serving, tflite,
                             verification)
from selu_zoo.export.formats import warmup
from selu_zoo.layers import SELU, SELUDense

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABEL_NAMES = ("low", "middle", "high")
# Raw classifier features: scales as different as breast_cancer's, and one constant feature
# (a single int8 scale cannot fit them: the standardization must stay float).
SCALES = np.array([1000.0, 0.01, 1.0, 5.0, 0.1, 300.0, 1.0, 0.0], np.float32)
VAE_FEATURES, LATENT = 12, 2
STEPS, STEP_FEATURES = 6, 2
TARGET_MEAN, TARGET_SCALE = 40.0, 5.0
TRAIN = 256
# Signatures of each export: the endpoints (the first is also serving_default).
SIGNATURES = {"snn": ["serving_default"],
              "snn_rnn": ["serving_default"],
              "snn_vae": ["reconstruct", "encode", "decode", "sample", "serving_default"]}
# ONNX has its own tests (tests/test_onnx_files.py); these exports leave it out.
FORMATS = ("keras", "tflite")
ASSETS = ("{}.keras", "{}.tflite", "{}.f16.tflite", "{}.int8.tflite", "report.json",
          "tf_serving_warmup_requests")
CLI_MODELS = ("sequential", "unnamed", "two_io")
SAVED_MODEL_CLI = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable)) or \
    "saved_model_cli"


def _env():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONPATH"] = REPO  # this checkout's selu_zoo, not whichever one is installed
    return env


class Background:
    """Subprocesses started at once and collected by the tests that need them."""

    def __init__(self, cwd):
        self.cwd, self.procs, self.results = cwd, {}, {}

    def start(self, name, args):
        self.procs[name] = subprocess.Popen(args, cwd=self.cwd, env=_env(), text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def collect(self, name):
        """``(returncode, stdout, stderr)`` of a finished process."""
        if name not in self.results:
            stdout, stderr = self.procs[name].communicate(timeout=600)
            self.results[name] = (self.procs[name].returncode, stdout, stderr)
        return self.results[name]

    def close(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def _info(task, x, y, num_classes=None, label_names=None):
    """A `DatasetInfo` with the train split's statistics, as `open_dataset` gives."""
    regression = task == "regression"
    return DatasetInfo(
        name="toy", task=task, num_classes=num_classes, label_names=label_names,
        feature_names=None, feature_shape=tuple(x.shape[1:]),
        num_examples={"train": TRAIN, "validation": 0, "test": len(x) - TRAIN},
        mean=x[:TRAIN].mean(axis=0), variance=x[:TRAIN].var(axis=0),
        label_mean=float(y[:TRAIN].mean()) if regression else 0.0,
        label_variance=float(y[:TRAIN].var()) if regression else 1.0)


def _rnn_config(unroll):
    return ml_collections.ConfigDict(dict(
        units=8, depth=1, init_scale=0.5, dropout_rate=0.0, unroll=unroll, seed=0,
        feature_shape=(STEPS, STEP_FEATURES), clip_standardized=None))


# --- Generic models for the CLI: started first, they run while everything else does ------


def make_generic_models(rnn_info):
    """Plain Keras models (not tasks), one per kind of input/output naming, and a rolled RNN."""
    keras.utils.set_random_seed(1)
    sequential = keras.Sequential([keras.Input((5,)), SELUDense(8), keras.layers.Dense(2)],
                                  name="sequential")
    x = keras.Input((4,))  # no name
    unnamed = keras.Model(x, keras.layers.Dense(3)(SELUDense(6)(x)), name="unnamed")
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    # One mixed_bfloat16 layer: TFLite converts this model through its float32 twin.
    h = SELUDense(8, dtype="mixed_bfloat16", name="mixed")(keras.layers.Concatenate()([a, b]))
    two_io = keras.Model([a, b], [keras.layers.Dense(2, dtype="float32", name="y1")(h),
                                  keras.layers.Dense(1, dtype="float32", name="y2")(h)],
                         name="two_io")
    rolled = rnn_models.build_snn_rnn(_rnn_config(unroll=False), rnn_info)
    return {"sequential": sequential, "unnamed": unnamed, "two_io": two_io,
            "rolled_rnn": rolled}


@pytest.fixture(scope="module")
def data():
    """Raw features and labels; the first `TRAIN` rows are the train split."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((384, len(SCALES))).astype(np.float32)
    x = z * SCALES + np.where(SCALES > 0, 3 * SCALES, 7.0).astype(np.float32)
    y = (z[:, 0] > 0).astype(np.int64) + (z[:, 1] > 0.5)
    vae_x = (rng.uniform(size=(384, VAE_FEATURES)) < 0.3).astype(np.float32)
    rnn_x = rng.standard_normal((384, STEPS, STEP_FEATURES)).astype(np.float32)
    rnn_y = (TARGET_MEAN + TARGET_SCALE * rnn_x[:, :, 0].sum(axis=1)).astype(np.float32)
    return {"snn": (x, y), "snn_vae": (vae_x, vae_x), "snn_rnn": (rnn_x, rnn_y)}


def _held_out(data, name):
    x, y = data[name]
    return x[TRAIN:], y[TRAIN:]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def cli(work, data):
    """Saves the generic models and starts one CLI export per model, all at once."""
    rnn_x, rnn_y = data["snn_rnn"]
    models = make_generic_models(_info("classification", rnn_x, (rnn_y > TARGET_MEAN), 2))
    background = Background(work)
    os.makedirs(work / "cli_models")
    for name, model in models.items():
        path = work / "cli_models" / f"{name}.keras"
        model.save(path)
        background.start(name, [sys.executable, "-m", "selu_zoo.export",
                                f"--model_path={path}", f"--export_dir={work / 'cli'}"])
    yield {"background": background, "models": models, "export_dir": work / "cli",
           "models_dir": work / "cli_models"}
    background.close()


@pytest.fixture(scope="module", autouse=True)
def _start_cli_first(cli):
    """Starts the CLI processes before the first test, so they overlap with the others."""


# --- Task models, trained briefly and exported once -------------------------------------


@pytest.fixture(scope="module")
def models(data):
    keras.utils.set_random_seed(0)
    x, y = data["snn"]
    snn_config = ml_collections.ConfigDict(dict(
        depth=2, width=16, dropout_rate=0.05, seed=0, residual=False, clip_standardized=None))
    snn = snn_models.build_snn(snn_config, _info("classification", x, y, 3, LABEL_NAMES))
    vae_x, _ = data["snn_vae"]
    vae_config = ml_collections.ConfigDict(dict(
        depth=1, width=16, dropout_rate=0.0, seed=0, residual=False, clip_standardized=10.0,
        latent_dim=LATENT, likelihood="bernoulli", gaussian_variance=1.0, kl_weight=1.0))
    vae = vae_models.build_snn_vae(vae_config, _info("regression", vae_x, vae_x[:, 0]))
    rnn_x, rnn_y = data["snn_rnn"]
    rnn = rnn_models.build_snn_rnn(_rnn_config(unroll=True),
                                   _info("regression", rnn_x, rnn_y))
    built = {"snn": snn, "snn_vae": vae, "snn_rnn": rnn}
    for name, model in built.items():
        model.compile(keras.optimizers.Adam(1e-2))  # the task's loss and metrics
        x, y = data[name]
        model.fit(x[:TRAIN], y[:TRAIN], batch_size=32, epochs=3 if name == "snn_rnn" else 2,
                  verbose=0)
    return built


@pytest.fixture(scope="module")
def exports(models, data, work):
    """``snn`` twice (versions 1 and 2; the second without data), the VAE and the RNN once."""
    export_dir = str(work / "serving")
    results = {}
    for name, model in models.items():
        x, y = data[name]
        held_out = (x[TRAIN:], None if name == "snn_vae" else y[TRAIN:])
        results[name] = export.export_all(model, export_dir, name,
                                          representative_data=x[:128],
                                          validation_data=held_out, formats=FORMATS)
    results["snn_v2"] = export.export_all(models["snn"], export_dir, "snn", formats=FORMATS)
    return {"export_dir": export_dir, "results": results}


def _examples(models, data, count=5):
    """model -> endpoint -> (inputs, Keras outputs) on a few held-out rows."""
    examples = {}
    for name, model in models.items():
        endpoints = tasks.serving_endpoints(model)
        inputs = evaluation.endpoint_inputs(
            model, endpoints, evaluation.ExportData({"features": _held_out(data, name)[0][:count]},
                                                    None))
        examples[name] = {e.name: (inputs[e.name], e(inputs[e.name])) for e in endpoints}
    return examples


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    sys.modules["selu_zoo"] = None  # importing selu_zoo now raises ImportError
    import numpy as np
    import tensorflow as tf

    spec, data = json.load(open(sys.argv[1])), np.load(sys.argv[2])
    result = {"saved_model": {}, "keras": {}}
    for name, version_dir in spec["saved_models"].items():
        loaded = tf.saved_model.load(version_dir)
        for key in sorted(loaded.signatures.keys()):
            prefix = f"{name}/{key}/"
            inputs = {k[len(prefix) + 3:]: tf.constant(data[k]) for k in data.files
                      if k.startswith(prefix + "in:")}
            outputs = loaded.signatures[key](**inputs)
            expected = {k[len(prefix) + 4:]: data[k] for k in data.files
                        if k.startswith(prefix + "out:")}
            assert sorted(outputs) == sorted(expected), (name, key, sorted(outputs))
            result["saved_model"][f"{name}/{key}"] = max(
                float(np.max(np.abs(outputs[k].numpy() - v))) for k, v in expected.items())
    result["selu_zoo_modules"] = sorted(m for m, v in sys.modules.items()
                                        if m.startswith("selu_zoo") and v is not None)

    del sys.modules["selu_zoo"]
    import keras
    import selu_zoo

    for name, path in spec["keras"].items():
        model = keras.models.load_model(path, safe_mode=True)
        x, y = data[f"{name}/fit/x"], data[f"{name}/fit/y"]
        out = keras.ops.convert_to_numpy(model(x, training=False))
        weights = [w.numpy() for w in model.trainable_weights]
        iterations = int(model.optimizer.iterations)
        history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0).history
        result["keras"][name] = {
            "class": f"{type(model).__module__}.{type(model).__name__}",
            "label_names": list(getattr(model, "label_names", None) or []),
            "loss": type(model.loss).__name__, "history": sorted(history),
            "finite_loss": bool(np.isfinite(history["loss"][0])),
            "iterations": [iterations, int(model.optimizer.iterations)],
            "trained": any(not np.array_equal(a, w.numpy())
                           for a, w in zip(weights, model.trainable_weights)),
            "max_abs_diff": float(np.max(np.abs(out - data[f"{name}/keras_out"])))}
    result["other_modules"] = sorted({m.split(".")[0] for m in sys.modules} & {
        "models", "configs", "tests", "training", "train"})
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def tools(exports, models, data, work):
    """Starts saved_model_cli show and run, and the fresh-process loads, at once."""
    examples = _examples(models, data)
    arrays = {}
    for name, per_endpoint in examples.items():
        for key, (inputs, outputs) in per_endpoint.items():
            keys = [key] + (["serving_default"] if key == SIGNATURES[name][0] != "serving_default"
                            else [])
            for k in keys:
                arrays.update({f"{name}/{k}/in:{i}": v for i, v in inputs.items()})
                arrays.update({f"{name}/{k}/out:{o}": v for o, v in outputs.items()})
        x, y = data[name]
        arrays[f"{name}/fit/x"], arrays[f"{name}/fit/y"] = x[:16], y[:16]
        arrays[f"{name}/keras_out"] = keras.ops.convert_to_numpy(
            models[name](x[:16], training=False))
    np.savez(work / "examples.npz", **arrays)
    results = exports["results"]
    spec = {"saved_models": {n: results[n].version_dir for n in models},
            "keras": {n: results[n].files["keras"] for n in models}}
    (work / "spec.json").write_text(json.dumps(spec))
    features = examples["snn"]["serving_default"][0]["features"]
    background = Background(work)
    background.start("fresh", [sys.executable, "-c", FRESH_PROCESS, str(work / "spec.json"),
                               str(work / "examples.npz")])
    background.start("show", [SAVED_MODEL_CLI, "show", "--all",
                              "--dir", results["snn_vae"].version_dir])
    background.start("run", [SAVED_MODEL_CLI, "run", "--dir", results["snn_v2"].version_dir,
                             "--tag_set", "serve", "--signature_def", "serving_default",
                             "--input_exprs", f"features={features.tolist()!r}",
                             "--outdir", str(work / "cli_run")])
    yield {"background": background, "examples": examples, "work": work}
    background.close()


def _listing(directory):
    """Relative path -> bytes of every file under ``directory``, and every folder (None)."""
    found = {}
    for root, folders, files in os.walk(directory):
        for folder in folders:
            found[os.path.relpath(os.path.join(root, folder), directory) + "/"] = None
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                found[os.path.relpath(os.path.join(root, name), directory)] = f.read()
    return found


def _model_name(key):
    """The model name of an entry of ``exports["results"]`` (``snn_v2`` is ``snn``)."""
    return "snn" if key == "snn_v2" else key


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# --- Layout ------------------------------------------------------------------------------


def test_each_version_is_one_complete_artifact_set(exports, tools):
    export_dir, results = exports["export_dir"], exports["results"]
    assert sorted(os.listdir(export_dir)) == ["models.config", "snn", "snn_rnn", "snn_vae"]
    assert sorted(os.listdir(os.path.join(export_dir, "snn"))) == ["1", "2"]  # nothing hidden
    assert [results["snn"].version, results["snn_v2"].version] == [1, 2]
    for key, result in results.items():
        name = _model_name(key)
        assert result.version_dir == os.path.join(export_dir, name, str(result.version))
        top = set(os.listdir(result.version_dir))
        assert {"saved_model.pb", "variables", "assets.extra"} <= top
        assert os.listdir(os.path.join(result.version_dir, "variables"))
        assert sorted(os.listdir(os.path.join(result.version_dir, "assets.extra"))) == sorted(
            a.format(name) for a in ASSETS)
        assert sorted(result.files) == sorted(
            ["saved_model", "keras", "tflite_float32", "tflite_float16", "tflite_int8",
             "report", "warmup_requests", "models_config"])
        assert result.files["saved_model"] == result.version_dir
        for path in result.files.values():
            assert os.path.exists(path), path
        assert json.loads(_read(result.files["report"])) == json.loads(json.dumps(result.report))
        assert result.report["model_name"] == name and result.pruned == ()
    # Both versions of snn are whole: version 2 did not take anything from version 1.
    for version in ("1", "2"):
        tf.saved_model.load(os.path.join(export_dir, "snn", version))
    assert results["snn"].report["data"]["synthetic"] is False
    assert results["snn_v2"].report["data"]["synthetic"] is True
    config = text_format.Parse(_read(results["snn_v2"].files["models_config"]).decode(),
                               model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert sorted(entries) == ["snn", "snn_rnn", "snn_vae"]
    for name, entry in entries.items():
        assert entry.base_path == os.path.join(export_dir, name)
        assert entry.model_platform == "tensorflow"


def test_saved_model_signatures_have_named_inputs_and_outputs(exports):
    expected_outputs = {
        ("snn", "serving_default"): ["logits", "probabilities"],
        ("snn_rnn", "serving_default"): ["prediction"],
        ("snn_vae", "encode"): ["z_log_var", "z_mean"],
        ("snn_vae", "decode"): ["x_logits", "x_mean"],
        ("snn_vae", "sample"): ["x_logits", "x_mean"],
        ("snn_vae", "reconstruct"): ["x_logits", "x_mean"],
        ("snn_vae", "serving_default"): ["x_logits", "x_mean"]}
    expected_inputs = {"decode": "z", "sample": "eps"}
    for name, signatures in SIGNATURES.items():
        result = exports["results"][name]
        assert result.report["signatures"] == signatures
        loaded = tf.saved_model.load(result.version_dir)
        assert sorted(loaded.signatures.keys()) == sorted(signatures)
        for key in signatures:
            function = loaded.signatures[key]
            specs = function.structured_input_signature[1]
            assert list(specs) == [expected_inputs.get(key, "features")]
            for spec in specs.values():
                assert spec.shape[0] is None and spec.dtype == tf.float32
            assert sorted(function.structured_outputs) == expected_outputs[name, key]
    spec = tf.saved_model.load(exports["results"]["snn_rnn"].version_dir).signatures[
        "serving_default"].structured_input_signature[1]["features"]
    assert spec.shape.as_list() == [None, STEPS, STEP_FEATURES]


def test_serving_graphs_reach_no_xla(exports):
    for result in exports["results"].values():
        export.check_serving_graph(result.version_dir)
        pb = _read(os.path.join(result.version_dir, "saved_model.pb"))
        assert b"_XlaMustCompile" not in pb and b"_XlaCompile" not in pb
        assert b"XlaLaunch" not in pb


def test_checker_rejects_a_jit_compiled_forward(tmp_path):
    module = tf.Module()
    module.w = tf.Variable(tf.ones([3, 2]))
    module.forward = tf.function(
        lambda x: {"y": tf.matmul(x, module.w)}, jit_compile=True,
        input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.forward})
    with pytest.raises(export.ServingGraphError, match="_XlaMustCompile"):
        export.check_serving_graph(str(tmp_path))


def test_checker_rejects_saved_custom_gradients(models, tmp_path):
    """Without SaveOptions(experimental_custom_gradients=False) the XLA backward is saved."""
    archive = keras.export.ExportArchive()
    archive.track(models["snn"])
    endpoint = tasks.serving_endpoints(models["snn"])[0]
    archive.add_endpoint("serve", endpoint.fn, list(endpoint.input_signature))
    archive.write_out(str(tmp_path), verbose=False)
    problems = export.serving_graph_problems(str(tmp_path))
    assert problems and all("_XlaMustCompile" in p for p in problems)
    assert any("_selu_dense_backward" in p for p in problems)


def test_checker_rejects_ops_outside_core(exports, tmp_path):
    proto = serving.read_saved_model_proto(exports["results"]["snn"].version_dir)
    node = next(n for f in proto.meta_graphs[0].graph_def.library.function
                for n in f.node_def if n.op in ("Selu", "Expm1", "Elu", "MatMul"))
    node.op = "SeluZooCustomOp"  # as if the forward came from a custom op library
    (tmp_path / "saved_model.pb").write_bytes(proto.SerializeToString())
    with pytest.raises(export.ServingGraphError, match="SeluZooCustomOp"):
        export.check_serving_graph(str(tmp_path))
    assert "XlaLaunch" not in export.core_ops() and "MatMul" in export.core_ops()


def test_wrong_inputs_fail_with_clear_errors(exports):
    serve = tf.saved_model.load(exports["results"]["snn"].version_dir).signatures[
        "serving_default"]
    for bad in (tf.zeros([2, 5]), tf.zeros([2, 8], tf.int32), tf.zeros([8])):
        with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)):
            serve(features=bad)  # wrong width, dtype, missing batch axis
    with pytest.raises(TypeError, match="features"):
        serve(x=tf.zeros([2, 8]))
    vae = tf.saved_model.load(exports["results"]["snn_vae"].version_dir)
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        vae.signatures["decode"](z=tf.zeros([2, LATENT + 1]))
    interpreter = tflite.make_interpreter(_read(exports["results"]["snn"].files["tflite_float32"]))
    for bad in (np.zeros((2, 5), np.float32), np.zeros((2, 8), np.int32),
                np.zeros((8,), np.float32)):
        with pytest.raises(ValueError, match="features"):
            tflite.run_signature(interpreter, "serving_default", {"features": bad})


# --- What the tasks' endpoints and metrics mean ------------------------------------------


def test_vae_endpoints_mean_what_they_say(exports, data):
    result = exports["results"]["snn_vae"]
    x = _held_out(data, "snn_vae")[0][:6]
    eps = np.random.default_rng(3).standard_normal((6, LATENT)).astype(np.float32)
    loaded = tf.saved_model.load(result.version_dir)
    served = lambda key, inputs: {k: v.numpy() for k, v in loaded.signatures[key](
        **{n: tf.constant(a) for n, a in inputs.items()}).items()}
    lite = verification.tflite_runner(_read(result.files["tflite_float32"]))
    for run, atol in ((served, 1e-6), (lite, 1e-5)):
        encoded = run("encode", {"features": x})
        reconstructed = run("reconstruct", {"features": x})
        decoded = run("decode", {"z": encoded["z_mean"]})
        for k in ("x_mean", "x_logits"):
            np.testing.assert_allclose(reconstructed[k], decoded[k], atol=atol)
        sampled, decoded_eps = run("sample", {"eps": eps}), run("decode", {"z": eps})
        for k in ("x_mean", "x_logits"):
            np.testing.assert_array_equal(sampled[k], decoded_eps[k])
        for outputs in (reconstructed, sampled):
            np.testing.assert_allclose(outputs["x_mean"], 1 / (1 + np.exp(-outputs["x_logits"])),
                                       atol=1e-6)
            assert np.all((outputs["x_mean"] >= 0) & (outputs["x_mean"] <= 1))
    for k, v in served("serving_default", {"features": x}).items():
        np.testing.assert_array_equal(v, served("reconstruct", {"features": x})[k])


def test_vae_report_elbo_is_the_task_elbo(exports, models, data):
    vae, report = models["snn_vae"], exports["results"]["snn_vae"].report
    x = _held_out(data, "snn_vae")[0]
    metrics = report["keras"]["metrics"]
    assert metrics["elbo"] == pytest.approx(float(np.mean(vae.elbo(x, seed=0))), rel=1e-12)
    # The training driver's evaluation (batches, first_index per batch) gives the same value.
    batches = tf.data.Dataset.from_tensor_slices((x, x)).batch(64)
    assert vae.evaluation_metrics(batches, seed=0)["elbo"] == pytest.approx(metrics["elbo"],
                                                                            rel=1e-9)
    assert metrics["elbo"] == pytest.approx(-(metrics["reconstruction"] + metrics["kl"]))
    assert report["saved_model"]["metrics"]["elbo"] == pytest.approx(metrics["elbo"], rel=1e-6)
    lite = report["tflite"]
    assert lite["float32"]["metrics"]["elbo"] == pytest.approx(metrics["elbo"], rel=1e-5)
    for variant, bound in (("float16", 0.01), ("int8", 0.1)):
        delta = lite[variant]["metrics_delta_vs_float32"]["elbo"]
        assert delta == pytest.approx(lite[variant]["metrics"]["elbo"]
                                      - lite["float32"]["metrics"]["elbo"])
        assert np.isfinite(delta) and abs(delta) <= bound * abs(metrics["elbo"]), (variant, delta)


def test_regressor_predicts_in_target_units(exports, data):
    result = exports["results"]["snn_rnn"]
    x, y = _held_out(data, "snn_rnn")
    loaded = tf.saved_model.load(result.version_dir)
    prediction = loaded.signatures["serving_default"](features=tf.constant(x))[
        "prediction"].numpy().reshape(-1)
    error = prediction.astype(np.float64) - y
    metrics = result.report["saved_model"]["metrics"]
    assert metrics["mse"] == pytest.approx(float(np.mean(error ** 2)), rel=1e-6)
    assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(error))), rel=1e-6)
    # In target units: far better than the variance (predicting the standardized target
    # would be off by TARGET_MEAN, an mse of about 1600).
    assert metrics["mse"] < 0.5 * np.var(y)
    assert abs(np.mean(prediction) - TARGET_MEAN) < 0.5 * np.std(y)
    for artifact in (result.report["keras"], *result.report["tflite"].values()):
        assert sorted(artifact["metrics"]) == ["mae", "mse"]
    assert result.report["tflite"]["float32"]["metrics"]["mse"] == pytest.approx(
        metrics["mse"], rel=1e-4)


def test_classifier_report_and_int8_standardization(exports):
    report = exports["results"]["snn"].report
    assert report["kind"] == "classifier" and report["class"] == "Classifier"
    assert list(report["label_names"]) == list(LABEL_NAMES)
    accuracy = report["keras"]["metrics"]["accuracy"]
    assert accuracy > 0.5 and report["saved_model"]["metrics"]["accuracy"] == accuracy
    for per_output in report["saved_model"]["max_abs_diff"].values():
        assert max(per_output.values()) <= 1e-5
    lite = report["tflite"]
    assert abs(lite["float32"]["metrics"]["accuracy"] - accuracy) <= 1 / 128
    assert abs(lite["float16"]["metrics_delta_vs_float32"]["accuracy"]) <= 0.02
    assert abs(lite["int8"]["metrics_delta_vs_float32"]["accuracy"]) <= 0.1
    # The standardization stays float32 in the int8 file: one scale cannot fit raw features
    # of scales 0.01 to 1000.
    kept = lite["int8"]["kept_float"]
    standardization = [n for n in kept["nodes"] if "standardize" in n]
    assert standardization and kept["op_types"] == []
    assert any(n.endswith("/Sub") for n in standardization)
    assert lite["int8"]["float_ops"]["SUB"] == 1
    assert lite["int8"]["float_ops"].get("ELU", 0) >= 1  # ELU has no int8 kernel
    assert report["keras"]["optimizer_variables"] > 0


# --- TFLite ------------------------------------------------------------------------------


def test_tflite_files_are_builtin_only_with_elu(exports):
    for key, result in exports["results"].items():
        name = _model_name(key)
        for variant in tflite.VARIANTS:
            summary = tflite.op_summary(_read(result.files[f"tflite_{variant}"]))
            ops = summary["ops"]
            assert "ELU" in ops and "EXP" not in ops, (key, variant, ops)
            assert not [op for op in ops if op.startswith(("CUSTOM", "Flex"))], (key, ops)
            assert "WHILE" not in ops  # the RNN is unrolled
            assert sorted(summary["signatures"]) == sorted(
                s for s in SIGNATURES[name] if name != "snn_vae" or s != "serving_default")


def test_tflite_lowering_switch_is_trace_time_and_scoped():
    from selu_zoo import ops
    from selu_zoo.ops import tensorflow_ops

    # Away from 0 only: TensorFlow's own Elu kernel is inexact there (TFLite's is not).
    x = tf.constant([[-20.0, -0.7, 0.0, 0.5, 3.0]])
    kernel, bias = tf.eye(5) * 1.5, tf.fill([5], -0.25)

    def graph_ops(fn):
        graph = tf.function(fn, autograph=False).get_concrete_function().graph
        return {op.type for op in graph.get_operations()}

    with ops.tflite_lowering():
        with ops.tflite_lowering():
            pass
        lowered = graph_ops(lambda: ops.selu(x)) | graph_ops(lambda: ops.selu_dense(x, kernel,
                                                                                     bias))
        np.testing.assert_allclose(ops.selu(x), tensorflow_ops._selu_with_gradient(x),
                                   rtol=3e-7)
        np.testing.assert_allclose(
            ops.selu_dense(x, kernel, bias),
            tensorflow_ops._selu_dense_with_gradient(x, kernel, bias), rtol=3e-7)
    assert "Elu" in lowered and not {"Expm1", "PartitionedCall", "StatefulPartitionedCall",
                                     "IdentityN"} & lowered
    assert "Elu" not in graph_ops(lambda: ops.selu(x))  # the switch is off again


def test_tflite_selu_is_exact_near_zero(tmp_path):
    values = np.array([-1e-8, -1e-6, -20.0, 3.0, -1e-30, 0.0, -0.5, 1e-8, 50.0, -100.0],
                      np.float32)
    inputs = keras.Input((len(values),), name="features")
    model = keras.Model(inputs, SELU(name="prediction")(inputs))
    serving.write_saved_model(model, str(tmp_path / "lowered"), tflite_lowering=True)
    content = tflite.convert(str(tmp_path / "lowered"), ["serving_default"])
    assert tflite.op_summary(content)["ops"].get("ELU") == 1
    x = values.astype(np.float64)
    exact = np.where(x > 0, selu_zoo.SCALE * x, selu_zoo.SCALE * selu_zoo.ALPHA * np.expm1(x))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    for reference_kernels in (False, True):  # XNNPACK delegate, then TFLite's own kernels
        interpreter = tflite.make_interpreter(content,
                                              builtin_reference_kernels=reference_kernels)
        y = tflite.run_signature(interpreter, "serving_default",
                                 {"features": values[None]})["prediction"][0]
        error_in_ulp = np.abs(y.astype(np.float64) - exact) / ulp
        assert np.all(error_in_ulp <= 2), (reference_kernels, y, exact)
        assert y[0] != 0 and y[1] != 0  # where exp(x) - 1 would cancel


# --- Non-finite inputs and the int8 guard ------------------------------------------------


def test_report_records_non_finite_behaviour_of_every_artifact(exports):
    nan, finite = "non-finite outputs", "finite outputs"
    everywhere = {kind: nan for kind in verification.NON_FINITE_INPUTS}
    # The VAE clips standardized features to [-10, 10] (clip_standardized): infinite and
    # huge inputs are clipped to finite values in float; NaN goes through.
    clipped = {"nan": nan, "inf": finite, "-inf": finite, "huge": finite}
    for key, result in exports["results"].items():
        report = result.report
        expected = clipped if key == "snn_vae" else everywhere
        assert report["saved_model"]["non_finite_inputs"] == expected, key
        for variant in ("float32", "float16"):
            assert report["tflite"][variant]["non_finite_inputs"] == expected, (key, variant)
        # int8 quantizes NaN and infinities to finite integers; its guard answers NaN.
        assert report["tflite"]["int8"]["non_finite_inputs"] == everywhere, key
        guard = report["tflite"]["int8"]["non_finite_guard"]
        assert guard == {"bound": tflite.GUARD_BOUND, "scope": tflite.GUARD_SCOPE}
        assert any(tflite.GUARD_SCOPE in n for n in
                   report["tflite"]["int8"]["kept_float"]["nodes"])


def _unguarded_int8(model, representative, directory):
    """The int8 file the export would write without its guard (same calibration)."""
    endpoints = tasks.serving_endpoints(model)
    keys = [e.name for e in endpoints]
    serving.write_saved_model(model, directory, endpoints=endpoints, tflite_lowering=True)
    nodes, op_types = tflite.int8_float_nodes(
        model, tflite.convert(directory, keys, "float32"))
    calibration = evaluation.endpoint_inputs(model, endpoints, evaluation.prepare(
        representative, endpoints[0].input_signature, 200))
    return tflite.convert(directory, keys, "int8",
                          evaluation.representative_dataset(calibration),
                          float_nodes=nodes, float_op_types=op_types)


def test_int8_guard_answers_bad_rows_nan_and_keeps_the_others_exact(exports, models, data,
                                                                    tmp_path):
    """Only rows with a NaN, infinite or huge value come out NaN; the others get exactly
    what the int8 file without the guard gives, at a cost of a few float ops."""
    guarded = _read(exports["results"]["snn"].files["tflite_int8"])
    x = _held_out(data, "snn")[0]
    bad = x[:6].copy()
    bad[1, 0], bad[2, 3], bad[3, 5], bad[4, 7] = np.nan, np.inf, -np.inf, 3e38
    bad[5, 0] = tflite.GUARD_BOUND  # at the bound: still served
    outputs = verification.tflite_runner(guarded)(
        "serving_default", {"features": np.concatenate([bad, x])})
    for name, value in outputs.items():
        assert np.all(np.isnan(value[1:5])), (name, value[:6])
        assert np.all(np.isfinite(value[:1])) and np.all(np.isfinite(value[5:])), name
    summary = tflite.op_summary(guarded)
    assert {"ABS", "LESS_EQUAL", "REDUCE_ALL"} <= set(summary["ops"])
    for op in ("ABS", "LESS_EQUAL"):  # on the float input: NaN never reaches a QUANTIZE
        assert summary["float_ops"].get(op) == 1, summary["float_ops"]
    unguarded = _unguarded_int8(models["snn"], data["snn"][0][:128], str(tmp_path / "plain"))
    plain = verification.tflite_runner(unguarded)
    for name, value in plain("serving_default", {"features": x}).items():
        np.testing.assert_array_equal(outputs[name][6:], value)
    # What the guard is for: without it, a NaN row gets finite, confident probabilities.
    probabilities = plain("serving_default", {"features": bad[1:2]})["probabilities"]
    assert np.all(np.isfinite(probabilities)) and probabilities.max() > 0.3
    extra = {op: n - tflite.op_summary(unguarded)["ops"].get(op, 0)
             for op, n in summary["ops"].items()}
    assert sum(extra.values()) <= 8 and len(guarded) - len(unguarded) < 2048, extra


def test_guard_covers_every_float_input_and_leaves_other_values(tmp_path):
    a = keras.Input((3,), name="a")
    b = keras.Input((2, 2), name="b")
    h = keras.layers.Concatenate()([a, keras.layers.Flatten()(b)])
    model = keras.Model([a, b], keras.layers.Dense(2, name="y")(SELUDense(4)(h)))
    endpoints = tflite.guard_endpoints(tasks.serving_endpoints(model), bound=10.0)
    rng = np.random.default_rng(0)
    inputs = {"a": rng.standard_normal((4, 3)).astype(np.float32),
              "b": rng.standard_normal((4, 2, 2)).astype(np.float32)}
    inputs["a"][1, 2] = np.nan
    inputs["b"][2, 1, 0] = -11.0  # beyond the bound
    guarded = endpoints[0](inputs)["y"]
    plain = tasks.serving_endpoints(model)[0](inputs)["y"]
    assert np.all(np.isnan(guarded[1:3])) and not np.any(np.isnan(plain[2]))
    np.testing.assert_array_equal(guarded[[0, 3]], plain[[0, 3]])


# --- Failures leave nothing behind -------------------------------------------------------


def _fail(*args, **kwargs):
    raise RuntimeError("injected failure")


def _fake_tflite(*args, **kwargs):  # stands in for the slow conversions
    return ({v: b"not a model " + v.encode() for v in tflite.VARIANTS},
            {v: {} for v in tflite.VARIANTS})


@pytest.mark.parametrize("where", ["tflite", "warmup", "first_export"])
def test_failed_export_leaves_earlier_versions_and_config_untouched(exports, models, data,
                                                                    monkeypatch, where):
    export_dir = exports["export_dir"]
    before = _listing(export_dir)
    name = "brand_new" if where == "first_export" else "snn"
    if where == "tflite":  # SavedModel and .keras staged, nothing converted yet
        monkeypatch.setattr(formats.tflite, "convert_variants", _fail)
    else:  # every artifact staged, then the last step fails
        monkeypatch.setattr(formats.tflite, "convert_variants", _fake_tflite)
        monkeypatch.setattr(warmup, "write_warmup_requests", _fail)
    x, y = data["snn"]
    with pytest.raises(RuntimeError, match="injected failure"):
        export.export_all(models["snn"], export_dir, name, validation_data=(x, y))
    assert _listing(export_dir) == before  # byte for byte: no version, no staging, no lease
    assert publish.versions(os.path.join(export_dir, "snn")) == [1, 2]


def test_parity_failure_raises_and_publishes_nothing(exports, models, data, monkeypatch):
    export_dir = exports["export_dir"]
    before = _listing(export_dir)
    real_runner = verification.saved_model_runner

    def off_by_a_little(saved_model_dir):  # a SavedModel whose logits are 1e-3 off
        run = real_runner(saved_model_dir)
        return lambda name, inputs: {k: v + 1e-3 for k, v in run(name, inputs).items()}

    monkeypatch.setattr(verification, "saved_model_runner", off_by_a_little)
    with pytest.raises(export.ExportVerificationError,
                       match="the SavedModel does not match.*logits: max abs diff 0.001"):
        export.export_all(models["snn"], export_dir, "snn", validation_data=data["snn"])
    assert _listing(export_dir) == before


def test_a_keras_file_of_another_model_fails_verification(exports, models):
    with pytest.raises(export.ExportVerificationError, match="loads as Regressor"):
        export.verify_keras_file(models["snn"], exports["results"]["snn_rnn"].files["keras"])
    report = export.verify_keras_file(models["snn"], exports["results"]["snn"].files["keras"])
    assert report["optimizer_variables"] == len(models["snn"].optimizer.variables) > 0


def test_models_without_known_inputs_are_refused_before_publishing(tmp_path):
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="no known inputs"):
        export.export_all(Subclassed(), str(tmp_path), "subclassed")
    assert os.listdir(tmp_path) == []
    for bad in ("", "7", ".hidden", "a/b", "x y"):
        with pytest.raises(ValueError, match="model_name"):
            export.export_all(None, str(tmp_path), bad)


# --- Warmup requests ---------------------------------------------------------------------


def test_warmup_requests_replay_through_the_saved_model(exports):
    for key, result in exports["results"].items():
        records = warmup.read_warmup_requests(result.files["warmup_requests"])
        assert sorted({r.signature_name for r in records}) == sorted(
            result.report["signatures"]), key
        for record in records:
            assert 0 < len(next(iter(record.inputs.values()))) <= formats.warmup.WARMUP_EXAMPLES
            assert all(v.dtype == np.float32 for v in record.inputs.values())
        assert warmup.verify_warmup_requests(result.version_dir,
                                             result.files["warmup_requests"]) == len(records)


# --- Export data ------------------------------------------------------------------------


def test_prepare_takes_arrays_tuples_and_datasets(models, data):
    specs = tasks.serving_endpoints(models["snn"])[0].input_signature
    x, y = _held_out(data, "snn")
    one_hot = np.eye(3, dtype=np.float32)[y]
    batched = tf.data.Dataset.from_tensor_slices((x, one_hot)).batch(50)
    for given, labels in [((x, y), y), (batched, one_hot), ({"features": x}, None), (x, None)]:
        prepared = evaluation.prepare(given, specs, limit=100)
        assert prepared.features["features"].shape == (100, 8) and len(prepared) == 100
        np.testing.assert_array_equal(prepared.features["features"], x[:100])
        assert (prepared.labels is None) == (labels is None) and not prepared.synthetic
        if labels is not None:
            np.testing.assert_array_equal(prepared.labels, labels[:100])
    with pytest.raises(ValueError, match="shape"):
        evaluation.prepare(x[:, :5], specs, limit=10)
    with pytest.raises(ValueError, match="labels"):
        evaluation.prepare((x, y[:3]), specs, limit=1000)
    # Synthetic features look like the raw ones: drawn from the model's own Normalization
    # (whose variance 0 for the constant feature was replaced by 1).
    synthetic = evaluation.prepare(None, specs, limit=50, synthetic_stats=(
        pipeline.input_statistics(models["snn"], specs)))
    assert synthetic.synthetic and len(synthetic) == 50 and synthetic.labels is None
    mean, std = synthetic.features["features"].mean(0), synthetic.features["features"].std(0)
    np.testing.assert_allclose(mean, np.where(SCALES > 0, 3 * SCALES, 7.0), rtol=0.1, atol=0.5)
    np.testing.assert_allclose(std, np.where(SCALES > 0, SCALES, 1.0), rtol=0.3)


# --- The CLI on generic Keras models ----------------------------------------------------


def _cli_result(cli, name):
    returncode, stdout, stderr = cli["background"].collect(name)
    assert returncode == 0, stderr[-3000:]
    return json.loads(stdout[stdout.index("{"):])


def _generic_inputs(model, seed=0, names=None):
    rng = np.random.default_rng(seed)
    specs = tasks.serving_endpoints(model)[0].input_signature
    return {name: rng.standard_normal((5, *s.shape[1:])).astype(np.float32)
            for name, s in zip(names or [s.name for s in specs], specs)}


@pytest.mark.parametrize("name", CLI_MODELS)
def test_cli_exports_generic_models_that_serve_their_keras_outputs(cli, name):
    summary = _cli_result(cli, name)
    model = cli["models"][name]
    version_dir = str(cli["export_dir"] / name / "1")
    assert summary["version"] == 1 and summary["files"]["saved_model"] == version_dir
    assert summary["kind"] == "generic"
    # The CLI writes every format that is installed: ONNX too (the test extra has it).
    assert sorted(os.listdir(os.path.join(version_dir, "assets.extra"))) == sorted(
        [a.format(name) for a in ASSETS] + [f"{name}.serving_default.onnx"])
    assert summary["onnx"]["opset"] == 17 and summary["onnx"]["source"] == (
        "float32 twin" if name == "two_io" else "saved_model")
    # The CLI exports the model as loaded from its .keras file: inputs named as there.
    loaded = keras.models.load_model(cli["models_dir"] / f"{name}.keras", safe_mode=True)
    names = tasks.serving_endpoints(loaded)[0].input_names
    signature = tf.saved_model.load(version_dir).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == sorted(names)
    inputs = _generic_inputs(model, names=names)
    served = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    expected = tasks.serving_endpoints(model)[0](
        dict(zip(tasks.serving_endpoints(model)[0].input_names, inputs.values())))
    assert sorted(served) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(served[key].numpy(), value, atol=1e-5)
    if name == "two_io":
        assert sorted(expected) == ["y1", "y2"] and names == ("a", "b")
    else:
        assert names == ("input_0",)  # unnamed inputs are named by position


def test_generic_input_names_survive_saving(cli):
    for name in ("sequential", "unnamed"):
        loaded = keras.models.load_model(cli["models_dir"] / f"{name}.keras", safe_mode=True)
        assert (tasks.serving_endpoints(cli["models"][name])[0].input_names
                == tasks.serving_endpoints(loaded)[0].input_names)


def test_mixed_precision_converts_through_the_float32_twin(cli):
    summary = _cli_result(cli, "two_io")
    model = cli["models"]["two_io"]
    twin = export.float32_twin(model)
    assert twin is not model and model.get_layer("mixed").compute_dtype == "bfloat16"
    assert all(layer.compute_dtype == "float32" for layer in twin.layers)
    for a, b in zip(model.weights, twin.weights):
        np.testing.assert_array_equal(a, b)
    assert export.float32_twin(twin) is twin
    inputs = _generic_inputs(model, seed=1)  # named a and b, before and after saving
    lite = verification.tflite_runner(_read(summary["files"]["tflite_float32"]))(
        "serving_default", inputs)
    twin_outputs = tasks.serving_endpoints(twin)[0](inputs)
    model_outputs = tasks.serving_endpoints(model)[0](inputs)
    for key in ("y1", "y2"):
        np.testing.assert_allclose(lite[key], twin_outputs[key], atol=1e-5)
        np.testing.assert_allclose(lite[key], model_outputs[key], atol=0.1)  # 3 digits


# TensorFlow's own C++ lines, which the CLI must not show (as train.py does not).
NATIVE_NOISE = ("I0000", "W0000", "E0000", "absl::InitializeLog", "cpu_feature_guard",
                "cuInit", "cuda", "oneDNN", "fully_quantize", "XNNPACK")


def _raw_env():
    """This checkout on the path, and nothing that quiets TensorFlow by itself."""
    env = {k: v for k, v in _env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONUNBUFFERED": "1"}


def _noise(text):
    return [line for line in text.splitlines() if any(word in line for word in NATIVE_NOISE)]


def test_cli_help_prints_no_tensorflow_cpp_lines(tmp_path):
    done = subprocess.run([sys.executable, "-m", "selu_zoo.export", "--help"], cwd=tmp_path,
                          env=_raw_env(), capture_output=True, text=True, timeout=300)
    assert "--model_path" in done.stdout and "--helpfull" in done.stdout
    assert not _noise(done.stdout + done.stderr) and done.stderr == "", done.stderr


def test_cli_export_prints_no_tensorflow_cpp_lines(tmp_path):
    keras.Sequential([keras.Input((3,)), SELUDense(4)], name="quiet").save(
        tmp_path / "quiet.keras")
    done = subprocess.run([sys.executable, "-m", "selu_zoo.export",
                           f"--model_path={tmp_path / 'quiet.keras'}",
                           f"--export_dir={tmp_path / 'out'}", "--export_formats=tflite"],
                          cwd=tmp_path, env=_raw_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["version"] == 1
    assert not _noise(done.stdout + done.stderr), done.stderr
    # What is left on stderr is Python's: the synthetic-data warning.
    assert [line for line in done.stderr.splitlines() if "synthetic" not in line] == []


def test_cli_refuses_a_rolled_rnn_in_one_line_and_publishes_nothing(cli):
    returncode, _, stderr = cli["background"].collect("rolled_rnn")
    assert returncode == 1
    ours = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(ours) == 1 and "TFLiteConversionError" in ours[0] and "unroll=True" in ours[0]
    assert stderr.rstrip().splitlines()[-1] == ours[0] and "Traceback" not in stderr
    # The converter's own diagnostics (loc(...) lines, its own "error:" line) stay off the
    # console; its message is part of ours.
    assert [line for line in stderr.splitlines() if "loc(" in line] == ours
    assert not os.path.exists(cli["export_dir"] / "rolled_rnn")
    config = text_format.Parse((cli["export_dir"] / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert sorted(c.name for c in config.model_config_list.config) == sorted(CLI_MODELS)


# --- Fresh processes and TensorFlow's own tools -----------------------------------------


def test_saved_model_cli_show_all_lists_named_signatures(tools):
    returncode, stdout, stderr = tools["background"].collect("show")
    assert returncode == 0, stderr[-3000:]
    for key in SIGNATURES["snn_vae"]:
        assert f"signature_def['{key}']" in stdout
    for name in ("features", "z", "eps"):
        assert f"inputs['{name}'] tensor_info" in stdout
    for name in ("z_mean", "z_log_var", "x_mean", "x_logits"):
        assert f"outputs['{name}'] tensor_info" in stdout
    assert f"shape: (-1, {VAE_FEATURES})" in stdout and f"shape: (-1, {LATENT})" in stdout
    assert "Method name is: tensorflow/serving/predict" in stdout


def test_saved_model_cli_run_gives_the_keras_outputs(tools):
    returncode, stdout, stderr = tools["background"].collect("run")
    assert returncode == 0, stderr[-3000:]
    _, expected = tools["examples"]["snn"]["serving_default"]
    for name in ("logits", "probabilities"):
        assert f"Result for output key {name}" in stdout
        np.testing.assert_allclose(np.load(tools["work"] / "cli_run" / f"{name}.npy"),
                                   expected[name], atol=1e-5)


def _fresh(tools):
    returncode, stdout, stderr = tools["background"].collect("fresh")
    assert returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_saved_models_serve_in_a_process_without_selu_zoo(tools):
    result = _fresh(tools)
    assert result["selu_zoo_modules"] == []
    assert sorted(result["saved_model"]) == sorted(
        f"{m}/{k}" for m, keys in SIGNATURES.items() for k in keys)
    assert max(result["saved_model"].values()) <= 1e-5, result["saved_model"]


def test_keras_files_load_as_their_task_and_train_on(tools, models):
    result = _fresh(tools)
    assert result["other_modules"] == []  # only selu_zoo and keras were imported
    expected = {"snn": ("Classifier", list(LABEL_NAMES), ["accuracy", "loss"]),
                "snn_rnn": ("Regressor", [], ["loss", "mae"]),
                "snn_vae": ("VAE", [], ["loss"])}
    for name, (cls, label_names, history) in expected.items():
        loaded = result["keras"][name]
        assert loaded["class"].endswith(f".{cls}") and loaded["class"].startswith("selu_zoo.")
        assert isinstance(models[name], getattr(tasks, cls))
        assert loaded["label_names"] == label_names
        assert loaded["loss"] == type(models[name].loss).__name__
        assert loaded["history"] == history, name
        assert loaded["max_abs_diff"] == 0.0, name
        assert loaded["finite_loss"] and loaded["trained"]
        before, after = loaded["iterations"]
        assert before == int(models[name].optimizer.iterations) > 0 and after == before + 1
