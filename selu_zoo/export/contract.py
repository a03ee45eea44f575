"""What a served model promises its clients, and refusing to break it by accident.

A *contract* is, per serving signature, the inputs (name, dtype, shape) and the output names
that TF Serving clients depend on. TF Serving serves the newest version of a name, so
`check_compatible` compares a model with the newest published version before training.
"""

import numpy as np

from selu_zoo import storage, tasks
from selu_zoo.export import publish, serving


class ContractChangeError(ValueError):
    """A new version would change what the served model's clients send or receive."""


def _shape(shape):
    return [None if d is None else int(d) for d in shape]


def of_endpoints(endpoints):
    """The contract of a model's endpoints: ``{signature: {"inputs": {...}, "outputs": [...]}}``.

    Output names are found by running each endpoint once on one example of zeros.
    """
    contract = {}
    for endpoint in endpoints:
        inputs = {spec.name: [spec.dtype.name, _shape(spec.shape)]
                  for spec in endpoint.input_signature}
        example = {spec.name: np.zeros([1, *_shape(spec.shape)[1:]], spec.dtype.as_numpy_dtype)
                   for spec in endpoint.input_signature}
        contract[endpoint.name] = {"inputs": inputs, "outputs": sorted(endpoint(example))}
    contract.setdefault(tasks.SERVING_DEFAULT, contract[endpoints[0].name])  # as exported
    return contract


def of_saved_model(saved_model_dir):
    """The contract of an exported SavedModel's signatures."""
    loaded = serving.load_saved_model(saved_model_dir)
    contract = {}
    for name, function in loaded.signatures.items():
        specs = function.structured_input_signature[1]
        contract[name] = {
            "inputs": {key: [spec.dtype.name, _shape(spec.shape)] for key, spec in specs.items()},
            "outputs": sorted(function.structured_outputs)}
    return contract


def _differences(old, new):
    lines = []
    for signature in sorted(set(old) | set(new)):
        if signature not in new:
            lines.append(f"signature {signature!r} would disappear")
        elif signature not in old:
            continue  # a new signature breaks no client
        elif old[signature]["inputs"] != new[signature]["inputs"]:
            lines.append(f"{signature} inputs {_describe(old[signature]['inputs'])} would "
                         f"become {_describe(new[signature]['inputs'])}")
        elif set(old[signature]["outputs"]) - set(new[signature]["outputs"]):
            lines.append(f"{signature} outputs {old[signature]['outputs']} would become "
                         f"{new[signature]['outputs']}")
    return lines


def _describe(inputs):
    return ", ".join(f"{name} {dtype} {shape}" for name, (dtype, shape) in inputs.items())


def check_compatible(model, export_dir, model_name, allow_change=False):
    """Refuses a model whose contract differs from the newest published version's.

    Args:
      model: the model about to be trained and exported (built).
      export_dir: the serving base folder.
      model_name: the name it will be published under.
      allow_change: publish anyway (the caller records it in the report).

    Returns:
      The differences found (empty when compatible or nothing is published yet).

    Raises:
      ContractChangeError: one line naming the newest version, the first difference and the
        two ways out, unless ``allow_change``.
    """
    model_dir = storage.join(export_dir, model_name)
    latest = publish.latest_version(model_dir)
    if latest is None:
        return []
    differences = _differences(of_saved_model(storage.join(model_dir, str(latest))),
                               of_endpoints(tasks.serving_endpoints(model)))
    if differences and not allow_change:
        raise ContractChangeError(
            f"--export_name={model_name}: version {latest} in {model_dir} is served with "
            f"another signature ({differences[0]}), so its clients would break; pass another "
            f"--export_name, or --allow_signature_change to publish it as version "
            f"{latest + 1} anyway")
    return differences
