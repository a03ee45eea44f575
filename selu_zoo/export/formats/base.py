"""The interface every export format implements, and what the formats of one export share.

An `Exporter` writes its files into the version being staged, checks them and returns its
entry of ``report.json``; `selu_zoo.export.formats.EXPORTERS` lists them in the order
`selu_zoo.export.export_all` runs them.
"""

import dataclasses
import importlib.util


@dataclasses.dataclass(frozen=True)
class ExportContext:
    """What the exporters of one export share.

    Attributes:
      model: the Keras model exported.
      model_name: its folder and TF Serving name.
      endpoints: its `selu_zoo.tasks.Endpoint`\\ s (the first is also ``serving_default``).
      inputs: ``{endpoint: {input: array}}``, the verification examples.
      calibration: ``{endpoint: {input: array}}``, int8 calibration examples.
      validation: the verification `selu_zoo.export.evaluation.ExportData`.
      reference: the Keras outputs on ``inputs``, ``{endpoint: {output: array}}``.
      tolerance: allowed max abs difference of float32 artifacts, relative to
        ``max(1, max |output|)``.
      serving_form: how the SavedModel computes SELU (`selu_zoo.ops.SERVING_FORMS`).
      seed: seed of the task's metrics and of random draws.
      staging: the version folder being written (the SavedModel's folder).
      extras: its ``assets.extra`` folder.
      names: artifact key -> file name in ``extras`` (`selu_zoo.export.artifact_names`).
      served_run: a runner of the written SavedModel (None until it is written).
      served: the SavedModel's outputs on ``inputs`` (None until it is written).
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
    """One export format: its name, what it needs installed, its files, write and verify.

    Attributes:
      name: the format's name (``--export_formats``, ``report.json``'s ``formats``).
      optional: whether callers choose it (`selu_zoo.export.OPTIONAL_FORMATS`); the
        others are always written.
      requirements: modules it needs beyond selu_zoo's own dependencies.
      install: the command that installs them.
      report_key: its key in ``report.json`` (None: it adds no entry); an entry is merged
        into what is there (``keras`` holds the Keras model's metrics already).
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
        """Writes the format's files into ``context.staging`` / ``context.extras``.

        Returns:
          Whatever `verify` and `updated` need to know about what was written.
        """
        raise NotImplementedError

    def verify(self, context, written):
        """Checks what `write` wrote.

        Returns:
          The format's ``report.json`` entry (a dict), or None.

        Raises:
          selu_zoo.export.verification.ExportVerificationError: if it does not reproduce
            the model.
        """
        del context, written
        return None

    def updated(self, context, written):
        """The context the following exporters see (the SavedModel adds its runner)."""
        del written
        return context
