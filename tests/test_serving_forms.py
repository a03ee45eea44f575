"""SavedModels traced inside `selu_zoo.ops.serving_lowering`: servable, and as accurate as promised."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from selu_zoo import SCALE, SCALE_ALPHA, ops
from selu_zoo.export import check_serving_graph
from selu_zoo.export.serving import read_saved_model_proto
from selu_zoo.layers import SELU, SELUDense


def _model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8,), name="features")
    h = SELUDense(32, dropout_rate=0.05, seed=1)(inputs)
    h = SELU()(keras.layers.Dense(32, kernel_initializer="lecun_normal")(h))
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(h))


def _export(model, path, form):
    """As `selu_zoo.export` writes SavedModels: ExportArchive, no custom gradients."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default",
                         lambda features: {"logits": model(features, training=False)},
                         [tf.TensorSpec((None, 8), tf.float32, name="features")])
    with ops.serving_lowering(form):
        archive.write_out(str(path), verbose=False, options=tf.saved_model.SaveOptions(
            experimental_custom_gradients=False))
    return str(path)


def _float64_logits(model, x):
    h = x.astype(np.float64)
    for layer in model.layers[1:]:
        if isinstance(layer, SELU):
            h = np.where(h > 0, SCALE * h, SCALE_ALPHA * np.expm1(np.minimum(h, 0)))
            continue
        h = h @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy()
        if isinstance(layer, SELUDense):
            h = np.where(h > 0, SCALE * h, SCALE_ALPHA * np.expm1(np.minimum(h, 0)))
    return h


def _ops_in(path):
    graph = read_saved_model_proto(path).meta_graphs[0].graph_def
    found = {node.op for node in graph.node}
    for function in graph.library.function:
        found |= {node.op for node in function.node_def}
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _model()
    directory = tmp_path_factory.mktemp("serving_forms")
    return model, {form: _export(model, directory / form, form) for form in ops.SERVING_FORMS}


@pytest.mark.parametrize("form", ops.SERVING_FORMS)
def test_every_serving_form_passes_the_serving_graph_check(exported, form):
    _, paths = exported
    check_serving_graph(paths[form])  # no XLA-compiled function, core ops only
    assert "Selu" in _ops_in(paths[form])


def test_fused_form_is_tensorflows_kernel_and_exact_form_is_not_only_that(exported):
    _, paths = exported
    fused, exact = _ops_in(paths["fused"]), _ops_in(paths["exact"])
    assert not {"LogicalAnd", "Greater", "Less", "Mul"} & fused  # Selu alone
    assert {"LogicalAnd", "SelectV2", "Selu"} <= exact


@pytest.mark.parametrize("form, tolerance", [("exact", 2e-6), ("fused", 2e-6)])
def test_served_logits_match_a_float64_evaluation(exported, form, tolerance):
    model, paths = exported
    x = np.random.default_rng(0).normal(size=(512, 8)).astype(np.float32)
    served = tf.saved_model.load(paths[form]).signatures["serving_default"]
    logits = served(features=tf.constant(x))["logits"].numpy()
    np.testing.assert_allclose(logits, _float64_logits(model, x), rtol=0, atol=tolerance)
    keras_logits = model(x).numpy()  # outside any lowering: the exact forward
    if form == "exact":
        np.testing.assert_allclose(logits, keras_logits, rtol=1e-6, atol=1e-6)


def test_fused_form_is_not_exact_near_zero_as_documented(exported):
    """The fused form rounds selu(-1e-8) to 0; the error is absolute, below 2e-7."""
    with ops.serving_lowering("fused"):
        fused = tf.function(ops.selu).get_concrete_function(tf.TensorSpec([None]))
    x = -np.logspace(-12, 0, 100_000).astype(np.float32)
    y = fused(tf.constant(x)).numpy().astype(np.float64)
    exact = SCALE_ALPHA * np.expm1(x.astype(np.float64))
    assert y[0] == 0.0
    assert np.max(np.abs(y - exact)) < 2e-7
