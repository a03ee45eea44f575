"""Publishing never silently changes what a served model's clients send or receive."""

import keras
import pytest

from models import build_model
from selu_zoo import tasks
from selu_zoo.export import contract, export_all
from test_models_every_backend import zoo_config, zoo_data, zoo_info


def _snn(features):
    keras.utils.set_random_seed(0)
    x, y = zoo_data("snn")
    x = x[:, :1].repeat(features, axis=1)
    return build_model(zoo_config("snn"), zoo_info(x, y)), x, y


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """An export folder where ``snn`` version 1 takes 30 features."""
    export_dir = str(tmp_path_factory.mktemp("exports"))
    model, x, y = _snn(30)
    export_all(model, export_dir, "snn", validation_data=(x, y), formats=())
    return export_dir


def test_the_contract_of_a_saved_model_is_that_of_its_endpoints(published):
    model, _, _ = _snn(30)
    saved = contract.of_saved_model(f"{published}/snn/1")
    assert saved == contract.of_endpoints(tasks.serving_endpoints(model))
    assert saved["serving_default"] == {"inputs": {"features": ["float32", [None, 30]]},
                                        "outputs": ["logits", "probabilities"]}


def test_the_same_signature_publishes(published):
    assert contract.check_compatible(_snn(30)[0], published, "snn") == []
    assert contract.check_compatible(_snn(64)[0], published, "unpublished") == []


def test_another_input_shape_is_refused_in_one_line_naming_both_and_the_ways_out(published):
    with pytest.raises(contract.ContractChangeError) as error:
        contract.check_compatible(_snn(64)[0], published, "snn")
    message = str(error.value)
    assert "\n" not in message
    assert "features float32 [None, 30] would become features float32 [None, 64]" in message
    assert "version 1" in message and "--export_name" in message
    assert "--allow_signature_change to publish it as version 2" in message


def test_an_allowed_change_is_returned_for_the_report(published):
    changes = contract.check_compatible(_snn(64)[0], published, "snn", allow_change=True)
    assert changes == ["serving_default inputs features float32 [None, 30] would become "
                       "features float32 [None, 64]"]
