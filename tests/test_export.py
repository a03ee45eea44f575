"""selu_zoo.export: SavedModels stock tools accept, builtin-only TFLite, .keras, atomic layout.

One export per contract model (an MLP classifier, a VAE, an unrolled RNN regressor) is shared
by every test through module-scoped fixtures. The checks that need a fresh process (loading
without selu_zoo, saved_model_cli, the CLI) start together in the background as soon as the
exports exist, and are collected by the tests at the end of the file.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

import selu_zoo
from selu_zoo import export
from selu_zoo.export import evaluation
from selu_zoo.export import graph_check
from selu_zoo.export import pipeline
from selu_zoo.export import serving
from selu_zoo.export import tflite
from selu_zoo.layers import SELU, SELUDense

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("mlp", "vae", "rnn")
SIGNATURES = {
    "mlp": ["serving_default"],
    "rnn": ["serving_default"],
    "vae": ["serving_default", "reconstruct", "encode", "decode", "sample"],
}
SEQUENCE_LENGTH, STEP_FEATURES = 6, 2


# --- Contract models ------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="selu_zoo_tests")
class SELURNNCell(keras.layers.Layer):
    """``h_t = selu([x_t, h_{t-1}] @ W + b)`` through a `SELUDense`."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units
        self.output_size = units
        self.dense = SELUDense(units)

    def build(self, input_shape):
        self.dense.build((None, input_shape[-1] + self.units))

    def call(self, inputs, states):
        h = self.dense(keras.ops.concatenate([inputs, states[0]], axis=-1))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


# Raw MLP features: scales as different as breast_cancer's, and one constant feature.
MLP_SCALES = np.array([1000.0, 0.01, 1.0, 5.0, 0.1, 300.0, 1.0, 0.0], np.float32)


def make_mlp(train_features, classes=3):
    """Standardizes raw features in the model (as the zoo does), then SELU layers."""
    inputs = keras.Input(train_features.shape[1:], name="features")
    standardized = keras.layers.Normalization(
        mean=train_features.mean(axis=0), variance=train_features.var(axis=0),
        name="standardize")(inputs)
    h = SELUDense(16, dropout_rate=0.05, seed=1)(standardized)
    h = SELUDense(16)(h)
    model = keras.Model(inputs, keras.layers.Dense(classes, name="logits")(h), name="mlp")
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def make_vae(features=12, latent=2):
    x = keras.Input((features,), name="features")
    h = SELUDense(16)(x)
    encoder = keras.Model(x, [keras.layers.Dense(latent, name="z_mean")(h),
                              keras.layers.Dense(latent, name="z_log_var")(h)], name="encoder")
    z = keras.Input((latent,), name="z")
    x_logits = keras.layers.Dense(features, name="x_logits")(SELUDense(16)(z))
    decoder = keras.Model(z, x_logits, name="decoder")
    inputs = keras.Input((features,), name="features")
    z_mean, _ = encoder(inputs)
    model = keras.Model(inputs, decoder(z_mean), name="snn_vae")
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def make_rnn():
    inputs = keras.Input((SEQUENCE_LENGTH, STEP_FEATURES), name="features")
    h = keras.layers.RNN(SELURNNCell(8), unroll=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="prediction")(h), name="rnn")
    model.compile("adam", "mse")
    return model


def make_data(name, rng):
    if name == "mlp":
        z = rng.standard_normal((384, 8)).astype(np.float32)
        # Means of 3 standard deviations; float16 stores the standardization's mean too, so
        # means of hundreds of standard deviations would cost the f16 model accuracy.
        x = z * MLP_SCALES + np.where(MLP_SCALES > 0, 3 * MLP_SCALES, 7.0).astype(np.float32)
        return x, (z[:, 0] > 0).astype(np.int64) + (z[:, 1] > 0.5)
    if name == "vae":
        x = (rng.uniform(size=(384, 12)) < 0.3).astype(np.float32)
        return x, x
    x = rng.standard_normal((384, SEQUENCE_LENGTH, STEP_FEATURES)).astype(np.float32)
    return x, 0.3 * x[:, :, 0].sum(axis=1, keepdims=True)


BUILDERS = {"vae": make_vae, "rnn": make_rnn}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Trains each model briefly and exports it once; every test reads these artifacts."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    export_dir = str(tmp_path_factory.mktemp("exports"))
    out = {"export_dir": export_dir, "models": {}, "results": {}, "data": {}}
    for name in MODELS:
        x, y = make_data(name, rng)
        model = make_mlp(x[:256]) if name == "mlp" else BUILDERS[name]()
        with warnings.catch_warnings():  # the test VAE's loss leaves z_log_var untrained
            warnings.filterwarnings("ignore", message="Gradients do not exist")
            model.fit(x[:256], y[:256], batch_size=32, epochs=3, verbose=0)
        out["models"][name] = model
        out["data"][name] = (x[256:], y[256:])
        out["results"][name] = export.export_all(
            model, export_dir, name, representative_data=x[:128],
            validation_data=(x[256:], None if name == "vae" else y[256:]), keep_versions=3)
    return out


def _signature_examples(exports, count=5):
    """model -> signature -> (inputs, Keras outputs) on a few held-out examples."""
    examples = {}
    for name in MODELS:
        signatures = export.describe(exports["models"][name])
        data = evaluation.ExportData({"features": exports["data"][name][0][:count]}, None)
        inputs = evaluation.signature_inputs(signatures, data)
        examples[name] = {}
        for key in SIGNATURES[name]:
            endpoint = signatures.endpoint(key)
            examples[name][key] = (inputs[endpoint.name], endpoint.reference(inputs[endpoint.name]))
    return examples


FRESH_PROCESS = textwrap.dedent("""
    import json, os, sys
    sys.modules["selu_zoo"] = None  # importing selu_zoo now raises ImportError
    import numpy as np
    import tensorflow as tf

    export_dir, npz = sys.argv[1], sys.argv[2]
    data = np.load(npz)
    diffs = {}
    for model in sorted({k.split("::")[0] for k in data.files}):
        model_dir = os.path.join(export_dir, model)
        version = max(int(v) for v in os.listdir(model_dir) if v.isdigit())
        loaded = tf.saved_model.load(os.path.join(model_dir, str(version)))
        for key in sorted(loaded.signatures.keys()):
            prefix = f"{model}::{key}::"
            inputs = {k[len(prefix) + 3:]: tf.constant(data[k]) for k in data.files
                      if k.startswith(prefix + "in:")}
            outputs = loaded.signatures[key](**inputs)
            expected = {k[len(prefix) + 4:] for k in data.files if k.startswith(prefix + "out:")}
            assert set(outputs) == expected, (model, key, sorted(outputs), sorted(expected))
            diffs[f"{model}/{key}"] = max(
                float(np.max(np.abs(outputs[k].numpy() - data[prefix + "out:" + k])))
                for k in expected)
    imported = sorted(m for m, v in sys.modules.items() if m.startswith("selu_zoo") and v)
    print(json.dumps({"diffs": diffs, "selu_zoo_modules": imported}))
""")


def _env(with_repo):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if with_repo:  # this checkout's selu_zoo, not whichever one is installed
        env["PYTHONPATH"] = REPO
    return env


@pytest.fixture(scope="module")
def background(exports, tmp_path_factory):
    """Starts every subprocess check at once; tests at the end of the file collect them."""
    work = tmp_path_factory.mktemp("subprocesses")
    examples = _signature_examples(exports)
    arrays = {}
    for model, per_signature in examples.items():
        for key, (inputs, outputs) in per_signature.items():
            arrays.update({f"{model}::{key}::in:{k}": v for k, v in inputs.items()})
            arrays.update({f"{model}::{key}::out:{k}": v for k, v in outputs.items()})
    np.savez(work / "examples.npz", **arrays)
    mlp_features = examples["mlp"]["serving_default"][0]["features"]
    cli_dir = work / "cli_exports"

    def start(args, with_repo=False):
        return subprocess.Popen(args, cwd=work, env=_env(with_repo), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = {
        "fresh": start([sys.executable, "-c", FRESH_PROCESS, exports["export_dir"],
                        str(work / "examples.npz")]),
        "show": start(["saved_model_cli", "show", "--all",
                       "--dir", exports["results"]["vae"]["saved_model"]]),
        "run": start(["saved_model_cli", "run", "--dir", exports["results"]["mlp"]["saved_model"],
                      "--tag_set", "serve", "--signature_def", "serving_default",
                      "--input_exprs", f"features={mlp_features.tolist()!r}",
                      "--outdir", str(work / "cli_run")]),
        "cli_bad": start([sys.executable, "-m", "selu_zoo.export",
                          f"--model_path={work / 'missing.keras'}", f"--export_dir={cli_dir}"],
                         with_repo=True),
        "cli_good": start([sys.executable, "-m", "selu_zoo.export",
                           f"--model_path={exports['results']['mlp']['keras']}",
                           f"--export_dir={cli_dir}", "--model_name=mlp_cli",
                           "--keep_versions=1"], with_repo=True),
    }
    results = {}

    def collect(name):
        if name not in results:
            stdout, stderr = procs[name].communicate(timeout=300)
            results[name] = (procs[name].returncode, stdout, stderr)
        return results[name]

    yield {"collect": collect, "work": work, "examples": examples, "cli_dir": cli_dir}
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# --- Layout, signatures, SavedModel contents -------------------------------------------------


def test_layout_and_signatures(exports, background):
    for name in MODELS:
        result = exports["results"][name]
        model_dir = os.path.join(exports["export_dir"], name)
        assert result["version"] == 1 and result["saved_model"] == os.path.join(model_dir, "1")
        assert sorted(os.listdir(model_dir)) == sorted(
            ["1", f"{name}.keras", f"{name}.tflite", f"{name}.f16.tflite",
             f"{name}.int8.tflite", f"{name}.report.json"])
        loaded = tf.saved_model.load(result["saved_model"])
        assert sorted(loaded.signatures.keys()) == sorted(SIGNATURES[name])
        for key in SIGNATURES[name]:
            _, specs = loaded.signatures[key].structured_input_signature
            for spec in specs.values():
                assert spec.shape[0] is None and spec.dtype == tf.float32
        inputs = {k: sorted(loaded.signatures[k].structured_input_signature[1])
                  for k in SIGNATURES[name]}
        outputs = {k: sorted(loaded.signatures[k].structured_outputs) for k in SIGNATURES[name]}
        if name == "mlp":
            assert inputs["serving_default"] == ["features"]
            assert outputs["serving_default"] == ["logits", "probabilities"]
        elif name == "rnn":
            spec = loaded.signatures["serving_default"].structured_input_signature[1]["features"]
            assert spec.shape.as_list() == [None, SEQUENCE_LENGTH, STEP_FEATURES]
            assert outputs["serving_default"] == ["prediction"]
        else:
            assert inputs == {"serving_default": ["features"], "reconstruct": ["features"],
                              "encode": ["features"], "decode": ["z"], "sample": ["eps"]}
            assert outputs["encode"] == ["z_log_var", "z_mean"]
            assert all(outputs[k] == ["x_mean"] for k in ("reconstruct", "decode", "sample"))


def test_vae_endpoints_mean_what_they_say(exports):
    loaded = tf.saved_model.load(exports["results"]["vae"]["saved_model"])
    x = tf.constant(exports["data"]["vae"][0][:6])
    encoded = loaded.signatures["encode"](features=x)
    reconstructed = loaded.signatures["reconstruct"](features=x)["x_mean"]
    decoded = loaded.signatures["decode"](z=encoded["z_mean"])["x_mean"]
    np.testing.assert_allclose(reconstructed, decoded, atol=1e-6)
    np.testing.assert_array_equal(loaded.signatures["serving_default"](features=x)["x_mean"],
                                  reconstructed)
    decoder = exports["models"]["vae"].get_layer("decoder")
    eps = tf.random.stateless_normal([6, 2], seed=[3, 4])
    sample = loaded.signatures["sample"](eps=eps)["x_mean"]
    np.testing.assert_array_equal(sample, loaded.signatures["sample"](eps=eps)["x_mean"])
    np.testing.assert_allclose(sample, tf.sigmoid(decoder(eps)), atol=1e-6)
    assert np.all((reconstructed.numpy() >= 0) & (reconstructed.numpy() <= 1))


def test_wrong_inputs_fail_with_tensorflow_errors(exports):
    mlp = tf.saved_model.load(exports["results"]["mlp"]["saved_model"])
    serve = mlp.signatures["serving_default"]
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        serve(features=tf.zeros([2, 5]))  # wrong width
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        serve(features=tf.zeros([2, 8], tf.int32))  # wrong dtype
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        serve(features=tf.zeros([8]))  # missing batch axis
    with pytest.raises(TypeError, match="features"):
        serve(x=tf.zeros([2, 8]))  # wrong name
    vae = tf.saved_model.load(exports["results"]["vae"]["saved_model"])
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
        vae.signatures["decode"](z=tf.zeros([2, 3]))  # latent is 2-d
    interpreter = tflite.make_interpreter(open(exports["results"]["mlp"]["tflite"]["float32"],
                                               "rb").read())
    for bad in (np.zeros((2, 5), np.float32), np.zeros((2, 8), np.int32),
                np.zeros((8,), np.float32)):
        with pytest.raises(ValueError, match="features"):
            tflite.run_signature(interpreter, "serving_default", {"features": bad})


# --- The serving-graph checker ---------------------------------------------------------------


def test_checker_accepts_the_exports(exports):
    for name in MODELS:
        export.check_serving_graph(exports["results"][name]["saved_model"])


def test_checker_rejects_a_jit_compiled_forward(tmp_path):
    module = tf.Module()
    module.w = tf.Variable(tf.ones([3, 2]))
    module.forward = tf.function(
        lambda x: {"y": tf.matmul(x, module.w)}, jit_compile=True,
        input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.forward})
    with pytest.raises(export.ServingGraphError, match="_XlaMustCompile"):
        export.check_serving_graph(str(tmp_path))


def test_checker_rejects_saved_custom_gradients(exports, tmp_path):
    """Without SaveOptions(experimental_custom_gradients=False) the XLA backward is saved."""
    model = exports["models"]["mlp"]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda features: {"logits": model(features)},
                         [tf.TensorSpec([None, 8], tf.float32, name="features")])
    archive.write_out(str(tmp_path), verbose=False)
    problems = export.serving_graph_problems(str(tmp_path))
    assert problems and all("_XlaMustCompile" in p for p in problems)
    assert any("_selu_dense_backward" in p for p in problems)


def test_checker_rejects_ops_outside_core(exports, tmp_path):
    proto = graph_check.read_saved_model_proto(exports["results"]["mlp"]["saved_model"])
    function = next(f for f in proto.meta_graphs[0].graph_def.library.function
                    if any(n.op == "Expm1" for n in f.node_def))
    next(n for n in function.node_def if n.op == "Expm1").op = "SeluZooCustomExpm1"
    (tmp_path / "saved_model.pb").write_bytes(proto.SerializeToString())
    with pytest.raises(export.ServingGraphError, match="SeluZooCustomExpm1"):
        export.check_serving_graph(str(tmp_path))
    assert "XlaLaunch" not in export.core_ops() and "MatMul" in export.core_ops()


# --- Versions, atomicity, models.config ------------------------------------------------------


def _snapshot(directory):
    """Relative path -> bytes of every file under directory."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def _copy_export(exports, tmp_path):
    export_dir = tmp_path / "exports"
    shutil.copytree(os.path.join(exports["export_dir"], "mlp"), export_dir / "mlp")
    serving.write_models_config(str(export_dir))
    return str(export_dir)


@pytest.mark.parametrize("failure", ["midway", "at_commit"])
def test_failed_export_leaves_nothing_behind(exports, tmp_path, monkeypatch, failure):
    export_dir = _copy_export(exports, tmp_path)
    before = _snapshot(export_dir)

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    if failure == "midway":  # after the SavedModel and .keras are staged, before TFLite
        monkeypatch.setattr(pipeline, "export_tflite", fail)
    else:  # everything staged, sibling files and models.config replaced; the rename fails
        def fake_tflite(*args, **kwargs):  # stands in for the slow conversions
            return ({v: b"new " + v.encode() for v in tflite.VARIANTS},
                    {v: {} for v in tflite.VARIANTS})

        monkeypatch.setattr(pipeline, "export_tflite", fake_tflite)
        monkeypatch.setattr(serving, "_publish_version", fail)
    model = exports["models"]["mlp"]
    x, y = exports["data"]["mlp"]
    with pytest.raises(RuntimeError, match="injected failure"):
        export.export_all(model, export_dir, "mlp", representative_data=x,
                          validation_data=(x, y))
    assert _snapshot(export_dir) == before  # byte for byte, no temporaries
    if failure == "midway":  # the first export of a model leaves no empty model directory
        monkeypatch.setattr(serving, "write_saved_model", fail)
        with pytest.raises(RuntimeError, match="injected failure"):
            export.export_all(model, export_dir, "brand_new", representative_data=x,
                              validation_data=(x, y))
        assert sorted(os.listdir(export_dir)) == ["mlp", "models.config"]
    assert export.list_versions(os.path.join(export_dir, "mlp")) == [1]
    loaded = tf.saved_model.load(os.path.join(export_dir, "mlp", "1"))
    np.testing.assert_allclose(loaded.signatures["serving_default"](features=x[:4])["logits"],
                               model(x[:4]), atol=1e-5)


def test_versions_increase_and_old_ones_are_pruned(exports, tmp_path):
    model_dir = tmp_path / "mlp"
    stale = model_dir / ".tmp-7-999999999-crashed"  # left by a killed export (no such pid)
    stale.mkdir(parents=True)
    paths = [export.export_saved_model(exports["models"]["mlp"], str(tmp_path), "mlp",
                                       keep_versions=2) for _ in range(3)]
    assert paths == [str(model_dir / v) for v in ("1", "2", "3")]
    assert sorted(os.listdir(model_dir)) == ["2", "3"]
    assert export.list_versions(str(model_dir)) == [2, 3]
    assert serving.next_version(str(model_dir)) == 4
    assert "mlp" in (tmp_path / "models.config").read_text()


def test_pruning_never_deletes_protected_versions(tmp_path):
    for version in (1, 2, 3, 4):
        (tmp_path / str(version)).mkdir()
        (tmp_path / str(version) / "saved_model.pb").write_bytes(b"")
    assert export.prune_versions(str(tmp_path), 1, protect=[2]) == [1, 3]
    assert export.list_versions(str(tmp_path)) == [2, 4]
    with pytest.raises(ValueError, match="keep_versions"):
        serving.validate_keep_versions(0)
    for bad in ("", "7", ".hidden", "a/b", "x y"):
        with pytest.raises(ValueError, match="model_name"):
            serving.validate_model_name(bad)


def test_models_config_parses_and_lists_every_model(exports):
    text = open(exports["results"]["mlp"]["models_config"]).read()
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert sorted(entries) == sorted(MODELS)
    for name, entry in entries.items():
        assert entry.base_path == os.path.join(exports["export_dir"], name)
        assert entry.model_platform == "tensorflow"
    text = export.models_config_text(exports["export_dir"], serving_base_path="/models")
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert [c.base_path for c in config.model_config_list.config] == [
        "/models/mlp", "/models/rnn", "/models/vae"]


# --- TFLite ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_tflite_is_builtin_only_with_elu(exports, name):
    for variant, path in exports["results"][name]["tflite"].items():
        with open(path, "rb") as f:
            summary = tflite.op_summary(f.read())
        ops = summary["ops"]
        assert "ELU" in ops, (variant, ops)
        assert "EXP" not in ops, (variant, ops)
        assert not [op for op in ops if op.startswith(("CUSTOM", "Flex"))], (variant, ops)
        assert sorted(summary["signatures"]) == sorted(
            k for k in SIGNATURES[name] if name != "vae" or k != "serving_default")


def test_tflite_lowering_switch_is_trace_time_and_scoped():
    from selu_zoo import ops

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
        np.testing.assert_allclose(ops.selu(x), ops._selu_with_gradient(x), rtol=3e-7)
        np.testing.assert_allclose(ops.selu_dense(x, kernel, bias),
                                   ops._selu_dense_with_gradient(x, kernel, bias), rtol=3e-7)
    assert "Elu" in lowered and not {"Expm1", "PartitionedCall", "StatefulPartitionedCall",
                                     "IdentityN"} & lowered
    assert "Elu" not in graph_ops(lambda: ops.selu(x))  # the switch is off again


def test_tflite_selu_is_exact(tmp_path):
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
        interpreter = tflite.make_interpreter(content, builtin_reference_kernels=reference_kernels)
        y = tflite.run_signature(interpreter, "serving_default",
                                 {"features": values[None]})["prediction"][0]
        error_in_ulp = np.abs(y.astype(np.float64) - exact) / ulp
        assert np.all(error_in_ulp <= 2), (reference_kernels, y, exact)
        assert y[0] != 0 and y[1] != 0  # where exp(x) - 1 would cancel


def test_tflite_refuses_graphs_that_need_flex(tmp_path):
    inputs = keras.Input((SEQUENCE_LENGTH, STEP_FEATURES), name="features")
    rolled = keras.layers.RNN(SELURNNCell(4), unroll=False)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="prediction")(rolled))
    serving.write_saved_model(model, str(tmp_path), tflite_lowering=True)
    with pytest.raises(export.TFLiteConversionError, match="unroll=True"):
        tflite.convert(str(tmp_path), ["serving_default"])


@pytest.mark.parametrize("name", MODELS)
def test_report_has_sane_parity_and_quality(exports, name):
    with open(exports["results"][name]["report"]) as f:
        report = json.load(f)
    assert report == json.loads(json.dumps(exports["results"][name]["report_data"]))
    assert report["version"] == 1 and report["data"]["validation_examples"] == 128
    for per_output in report["saved_model"]["max_abs_diff"].values():
        assert max(per_output.values()) <= 1e-5
    lite = report["tflite"]
    for per_output in lite["float32"]["vs_keras"]["max_abs_diff"].values():
        assert max(per_output.values()) <= 1e-5
    assert lite["int8"]["float_ops"].get("ELU", 0) >= 1  # ELU has no int8 kernel
    kept = lite["int8"]["kept_float"]
    if name == "mlp":  # the standardization stays float32: one scale cannot fit all features
        assert kept["nodes"] and all("standardize" in n for n in kept["nodes"])
        assert lite["int8"]["float_ops"]["SUB"] == 1 and lite["int8"]["float_ops"]["MUL"] == 1
    else:
        assert kept == {"nodes": [], "op_types": []}
    assert lite["float16"]["size_bytes"] > 0 and lite["int8"]["size_bytes"] > 0
    deltas16 = lite["float16"]["quality_delta_vs_float32"]
    deltas8 = lite["int8"]["quality_delta_vs_float32"]
    if name == "mlp":
        assert lite["keras"]["accuracy"] > 0.6
        assert abs(lite["float32"]["quality"]["accuracy"] - lite["keras"]["accuracy"]) <= 1 / 128
        assert abs(deltas16["accuracy"]) <= 0.02 and abs(deltas8["accuracy"]) <= 0.1
        assert lite["int8"]["vs_float32"]["top1_agreement"] >= 0.9
    elif name == "rnn":
        mse = lite["float32"]["quality"]["mse"]
        assert abs(deltas16["mse"]) <= 0.01 * mse + 1e-4 and abs(deltas8["mse"]) <= 0.5 * mse
    else:
        elbo = lite["float32"]["quality"]["elbo"]
        assert np.isfinite(elbo) and elbo < 0
        assert abs(deltas16["elbo"]) <= 0.01 * abs(elbo) and abs(deltas8["elbo"]) <= 0.1 * abs(elbo)


def test_mixed_precision_model_converts_through_a_float32_twin(tmp_path):
    """TFLite has no bfloat16 kernels: export_tflite converts a float32 twin instead."""
    inputs = keras.Input((8,), name="features")
    h = SELUDense(16, dtype="mixed_bfloat16")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits", dtype="float32")(h))
    twin = export.float32_twin(model)
    assert twin is not model and model.layers[1].compute_dtype == "bfloat16"
    assert all(layer.compute_dtype == "float32" for layer in twin.layers)
    for a, b in zip(model.weights, twin.weights):
        np.testing.assert_array_equal(a, b)
    serving.write_saved_model(twin, str(tmp_path), tflite_lowering=True)
    content = tflite.convert(str(tmp_path), ["serving_default"])
    x = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    logits = tflite.run_signature(tflite.make_interpreter(content), "serving_default",
                                  {"features": x})["logits"]
    np.testing.assert_allclose(logits, twin(x), atol=1e-5)
    np.testing.assert_allclose(logits, model(x), atol=0.1)  # bfloat16 is 3 digits
    assert export.float32_twin(twin) is twin


# --- .keras ----------------------------------------------------------------------------------


def test_keras_file_restores_everything_needed_to_train_on(exports, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing relies on the working directory
    model = exports["models"]["mlp"]
    loaded = keras.models.load_model(exports["results"]["mlp"]["keras"], safe_mode=True)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    x, y = exports["data"]["mlp"]
    np.testing.assert_array_equal(loaded(x), model(x))
    loaded.train_on_batch(x[:32], y[:32])
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) + 1


def test_export_keras_is_atomic(exports, tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    path.write_bytes(b"previous")
    model = exports["models"]["mlp"]

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(pipeline, "verify_keras_file", fail)
    with pytest.raises(RuntimeError, match="injected"):
        export.export_keras(model, path)
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.keras"]
    monkeypatch.undo()
    export.export_keras(model, path)
    assert os.listdir(tmp_path) == ["m.keras"]
    keras.models.load_model(path, safe_mode=True)


def test_prepare_takes_arrays_tuples_and_datasets(exports):
    signatures = export.describe(exports["models"]["mlp"])
    x, y = exports["data"]["mlp"]
    one_hot = np.eye(3, dtype=np.float32)[y]
    batched = tf.data.Dataset.from_tensor_slices((x, one_hot)).batch(50)
    unbatched = tf.data.Dataset.from_tensor_slices({"features": x})
    for data, labels in [((x, y), y), (batched, one_hot), (unbatched, None), (x, None)]:
        prepared = evaluation.prepare(data, signatures, limit=100)
        assert prepared.features["features"].shape == (100, 8)
        np.testing.assert_array_equal(prepared.features["features"], x[:100])
        assert (prepared.labels is None) == (labels is None)
        if labels is not None:
            np.testing.assert_array_equal(prepared.labels, labels[:100])
    assert evaluation.quality(signatures, evaluation.prepare((x, one_hot), signatures, 128),
                              {"serving_default": {"logits": one_hot}}) == {"accuracy": 1.0}
    with pytest.raises(ValueError, match="shape"):
        evaluation.prepare(x[:, :5], signatures, limit=10)
    synthetic = evaluation.prepare(None, signatures, limit=10, synthetic_stats=(
        pipeline.input_statistics(exports["models"]["mlp"], signatures)))
    assert synthetic.synthetic and np.all(synthetic.features["features"][:, 7] == 7.0)


def test_describe_rejects_models_outside_the_contract():
    x = keras.Input((4,), name="features")
    h = SELUDense(4)(x)
    encoder = keras.Model(x, [keras.layers.Dense(2, name="z_mean")(h)], name="encoder")
    z = keras.Input((2,), name="z")
    decoder = keras.Model(z, keras.layers.Dense(4, name="x_logits")(z), name="decoder")
    inputs = keras.Input((4,), name="features")
    with pytest.raises(ValueError, match="z_log_var"):
        export.describe(keras.Model(inputs, decoder(encoder(inputs)), name="snn_vae"))

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="functional"):
        export.describe(Subclassed())


# --- Fresh processes: no selu_zoo, saved_model_cli, the CLI -----------------------------------


def test_fresh_process_without_selu_zoo_serves_every_signature(background):
    returncode, stdout, stderr = background["collect"]("fresh")
    assert returncode == 0, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["selu_zoo_modules"] == []
    expected = {f"{m}/{k}" for m in MODELS for k in SIGNATURES[m]}
    assert set(result["diffs"]) == expected
    assert max(result["diffs"].values()) <= 1e-5, result["diffs"]


def test_saved_model_cli_show_all(background):
    returncode, stdout, stderr = background["collect"]("show")
    assert returncode == 0, stderr[-3000:]
    for key in SIGNATURES["vae"]:
        assert f"signature_def['{key}']" in stdout
    assert "inputs['features'] tensor_info" in stdout and "inputs['z'] tensor_info" in stdout
    assert "outputs['z_log_var'] tensor_info" in stdout and "shape: (-1, 12)" in stdout
    assert "Method name is: tensorflow/serving/predict" in stdout


def test_saved_model_cli_run(background):
    returncode, stdout, stderr = background["collect"]("run")
    assert returncode == 0, stderr[-3000:]
    _, expected = background["examples"]["mlp"]["serving_default"]
    for name in ("logits", "probabilities"):
        assert f"Result for output key {name}" in stdout
        np.testing.assert_allclose(np.load(background["work"] / "cli_run" / f"{name}.npy"),
                                   expected[name], atol=1e-5)


def test_cli_bad_model_path_fails_in_one_line(background):
    returncode, _, stderr = background["collect"]("cli_bad")
    assert returncode != 0
    ours = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(ours) == 1 and "missing.keras" in ours[0] and "does not exist" in ours[0]
    assert stderr.rstrip().splitlines()[-1] == ours[0] and "Traceback" not in stderr
    assert not os.path.exists(background["cli_dir"] / "missing")


def test_cli_reexports_a_keras_file(background):
    returncode, stdout, stderr = background["collect"]("cli_good")
    assert returncode == 0, stderr[-3000:]
    summary = json.loads(stdout[stdout.index("{"):])
    model_dir = background["cli_dir"] / "mlp_cli"
    assert summary["version"] == 1 and summary["saved_model"] == str(model_dir / "1")
    assert sorted(os.listdir(model_dir)) == sorted(
        ["1", "mlp_cli.keras", "mlp_cli.tflite", "mlp_cli.f16.tflite", "mlp_cli.int8.tflite",
         "mlp_cli.report.json"])
    assert summary["parity"]["int8_float_ops"] == {"ELU": 2, "MUL": 1, "SUB": 1}
    text = (background["cli_dir"] / "models.config").read_text()
    assert [c.name for c in text_format.Parse(
        text, model_server_config_pb2.ModelServerConfig()).model_config_list.config] == [
        "mlp_cli"]
