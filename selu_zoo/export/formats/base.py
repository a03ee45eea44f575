"""The interface every export format implements (`Exporter`), and what the formats of one
export share (`ExportContext`)."""

import dataclasses
import importlib.util


@dataclasses.dataclass(frozen=True)
class ExportContext:
    """What the exporters of one export share.

    Attributes:
      model, model_name: the Keras model and its folder / TF Serving name.
      endpoints: its `selu_zoo.tasks.Endpoint`\\ s (the first is also ``serving_default``).
      inputs, calibration: ``{endpoint: {input: array}}`` verification and int8 calibration
        examples.
      validation: the verification `selu_zoo.export.evaluation.ExportData`.
      reference: the Keras outputs on ``inputs``, ``{endpoint: {output: array}}``.
      tolerance: allowed max abs difference of float32 artifacts, relative to
        ``max(1, max |output|)``.
      serving_form: how the SavedModel computes SELU (`selu_zoo.ops.SERVING_FORMS`).
      seed: seed of the task's metrics and of random draws.
      staging, extras: the version folder being written (the SavedModel's) and its
        ``assets.extra``.
      names: artifact key -> file name in ``extras`` (`selu_zoo.export.artifact_names`).
      served_run, served: the written SavedModel's runner and outputs on ``inputs`` (None
        before it is written).
    """

    model: object
    model_name: str
    endpoints: tuple
    inputs: dict
    calibration: dict
    validation: object
    reference: dict
    tolerance: float
    serving_form: str
    seed: int
    staging: str
    extras: str
    names: dict
    served_run: object = None
    served: dict = None


class Exporter:
    """One export format.

    Attributes:
      name: its ``--export_formats`` and ``report.json`` ``formats`` name.
      optional: whether callers choose it; the others are always written.
      requirements, install: modules it needs beyond selu_zoo's, and their install command.
      report_key: its ``report.json`` key (None: no entry); the entry is merged into what is
        there (``keras`` holds the model's metrics already).
    """

    name = None
    optional = True
    requirements = ()
    install = ""
    report_key = None

    def available(self):
        """Whether every module of `requirements` can be imported."""
        return all(importlib.util.find_spec(m) is not None for m in self.requirements)

    def file_names(self, model_name, signatures):
        """Returns ``{artifact key: file name in assets.extra}`` for ``ExportResult.files``."""
        del model_name, signatures
        return {}

    def write(self, context):
        """Writes the format's files into ``context.staging`` / ``context.extras``; returns what
        `verify` and `updated` need."""
        raise NotImplementedError

    def verify(self, context, written):
        """Checks what `write` wrote; returns the ``report.json`` entry (a dict) or None.

        Raises:
          selu_zoo.export.verification.ExportVerificationError: if it does not reproduce the model.
        """
        del context, written
        return None

    def updated(self, context, written):
        """The context the following exporters see (the SavedModel adds its runner)."""
        del written
        return context
