"""TF Serving warmup requests: a few verification examples per signature, with the
SavedModel's own answers (`selu_zoo.export.warmup`)."""

from selu_zoo import storage, tasks
from selu_zoo.export import warmup
from selu_zoo.export.formats import base

# Examples per endpoint recorded as TF Serving warmup requests.
WARMUP_EXAMPLES = 4


class WarmupRequests(base.Exporter):
    """`WARMUP_EXAMPLES` requests per endpoint (and for ``serving_default``), answered by the
    SavedModel (so it runs after it); no report entry."""

    name = "warmup_requests"
    optional = False

    def file_names(self, model_name, signatures):
        return {"warmup_requests": warmup.WARMUP_FILE}

    def write(self, context):
        requests = {e: {k: v[:WARMUP_EXAMPLES] for k, v in inputs.items()}
                    for e, inputs in context.inputs.items()}
        first = context.endpoints[0].name
        if first != tasks.SERVING_DEFAULT:  # its alias is a signature too
            requests[tasks.SERVING_DEFAULT] = requests[first]
        return warmup.write_warmup_requests(
            storage.join(context.extras, context.names["warmup_requests"]), context.model_name,
            [(name, batch, context.served_run(name, batch)) for name, batch in requests.items()])
