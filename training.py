"""`train_and_evaluate`: config -> data -> model -> fit -> evaluate -> export.

train.py parses flags and calls this; tests and notebooks can call it directly.

Under a ``tf.distribute`` strategy the model is built and compiled inside ``strategy.scope()``
and trained with Keras ``fit`` where that works (one device; ``mirrored`` without XLA;
``tpu``), else with the custom loop of `selu_zoo.distribute` (``multi_worker``; ``mirrored``
with ``config.jit_compile``). The global batch size is ``config.batch_size`` and the learning
rate is used as configured (not scaled with the number of replicas). In a multi-worker run
only the chief writes checkpoints, logs, pictures, ``metrics.json`` and the exports.
"""

import dataclasses
import time

import keras
import tensorflow as tf
from absl import logging

from models import registry
from selu_zoo import callbacks, datasets, distribute, ops, runs, storage
from selu_zoo.datasets import tabular
from selu_zoo.export import contract, export_all
from selu_zoo.resume import ResumeCheckpoint

LOOPS = ("auto", "fit", "custom")
PROBE_EXAMPLES = 256  # validation rows for the self-normalization monitor and the pictures
CALIBRATION_EXAMPLES = 200  # train rows for int8 calibration
VERIFICATION_EXAMPLES = 2000  # test rows for the export checks


class Diverged(RuntimeError):
    """Training produced a NaN or infinite loss; nothing is exported."""


class Interrupted(Exception):
    """Training was interrupted (Ctrl-C); it resumes after its last checkpointed epoch."""

    def __init__(self, epoch, checkpointed):
        super().__init__(f"interrupted at epoch {epoch}; run the same command to resume "
                         f"after epoch {checkpointed}, the last checkpointed one")
        self.epoch = epoch


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Where and how the trained model is exported (`selu_zoo.export.export_all`).

    Attributes:
      export_dir: the serving base folder (any tf.io.gfile path).
      model_name: the model's folder and TF Serving name.
      keep_versions: versions kept per model.
      serving_base_path: ``export_dir`` as TF Serving sees it (None: as it is).
      serving_form: how the SavedModel computes SELU (`selu_zoo.ops.SERVING_FORMS`).
      formats: the optional formats to write (`selu_zoo.export.pipeline.OPTIONAL_FORMATS`,
        from `selu_zoo.export.formats.EXPORTERS`); None: every one whose dependencies are
        installed.
      allow_signature_change: publish even if the serving signatures differ from the newest
        published version's (recorded in the report); otherwise that is refused before
        training (`selu_zoo.export.contract`).
    """

    export_dir: str
    model_name: str
    keep_versions: int = 5
    serving_base_path: str | None = None
    serving_form: str = ops.DEFAULT_SERVING_FORM
    formats: tuple | None = None
    allow_signature_change: bool = False


def choose_loop(loop, strategy, config):
    """``"fit"`` or ``"custom"``: the training loop for ``loop`` (one of `LOOPS`) and ``strategy``.

    Raises:
      ValueError: for an unknown loop, or ``"fit"`` where Keras fit fails.
    """
    if loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}; choose one of {', '.join(LOOPS)}")
    fit_works = distribute.uses_keras_fit(strategy, jit_compile=config.jit_compile)
    if loop == "fit" and not fit_works:
        raise ValueError(
            f"--loop=fit does not work under {distribute.strategy_name(strategy)} with "
            f"{strategy.num_replicas_in_sync} replicas (jit_compile={config.jit_compile}) in "
            f"Keras {keras.__version__}; use --loop=custom or auto")
    return ("fit" if fit_works else "custom") if loop == "auto" else loop


def csv_options(config):
    """The `selu_zoo.datasets.tabular.CsvOptions` of the config's CSV fields."""
    return tabular.CsvOptions(
        label_column=config.label_column,
        header={"yes": True, "no": False}.get(config.header, config.header),
        exclude_columns=tuple(config.exclude_columns), task=config.task,
        split_column=config.split_column, missing=config.missing_values)


def open_data(config, data_dir=None, download=True):
    """Opens ``config.dataset`` with the config's feature shape and CSV options."""
    return datasets.open_dataset(config.dataset, data_dir=data_dir, download=download,
                                 feature_shape=config.feature_shape,
                                 csv_options=csv_options(config))


def train_steps(data, config, drop_remainder=False):
    """Optimizer steps per epoch: ``config.steps_per_epoch``, else one pass over train."""
    if config.steps_per_epoch:
        return config.steps_per_epoch
    if drop_remainder:
        return max(1, data.info.num_examples[datasets.TRAIN] // config.batch_size)
    return data.steps_per_epoch(datasets.TRAIN, config.batch_size)


def steps_per_execution(data, config, drop_remainder=False):
    """Train steps per ``tf.function`` call: ``config.steps_per_execution``, else the
    largest divisor of the epoch's steps up to 32, so every call runs whole steps of one
    epoch (per-epoch logs, checkpoints and callbacks stay exact).

    Raises:
      ValueError: naming ``config.steps_per_execution`` if it does not divide the epoch.
    """
    steps = train_steps(data, config, drop_remainder)
    if config.steps_per_execution:
        if steps % config.steps_per_execution:
            raise ValueError(f"config.steps_per_execution={config.steps_per_execution} must "
                             f"divide the {steps} train steps of an epoch")
        return config.steps_per_execution
    return max(n for n in range(1, min(32, steps) + 1) if steps % n == 0)


def make_optimizer(config):
    """The Keras optimizer ``config.optimizer`` at ``config.learning_rate`` (and momentum).

    Raises:
      ValueError: naming ``config.optimizer`` if Keras has no such optimizer, or it takes
        no momentum.
    """
    options = {"learning_rate": config.learning_rate}
    if config.momentum is not None:
        options["momentum"] = config.momentum
    try:
        return keras.optimizers.get({"class_name": config.optimizer, "config": options})
    except (ValueError, TypeError) as error:
        raise ValueError(f"config.optimizer={config.optimizer!r} with {options} is not a Keras "
                         f"optimizer ({str(error).splitlines()[0]})") from None


def _callbacks(model, run, config, probe, *, keras_fit, resume, resumed_from):
    """The chief's callbacks: ``(callbacks.TimedCallbacks, best checkpoint, epoch logger,
    history file, monitor)``.

    Under Keras ``fit`` the resume checkpoint (unless ``config.checkpoint_every`` sets its
    epochs), the best model's file, the history file and the TensorBoard pictures are written
    in the first epoch, then within a share of the epochs' time (4%, 2%, 1%, 1%:
    `callbacks.TimedCallbacks`); the best model and the history are always written before a
    resume checkpoint, and `fit` writes the last ones at the end. A run resumes after its last
    checkpointed epoch. The custom loop checkpoints every epoch itself.
    """
    best = callbacks.BestModelCheckpoint(run.best_checkpoint, run.run_id, deferred=True)
    history = callbacks.HistoryFile(run.path(runs.HISTORY_FILE), run.run_id, resumed_from,
                                    deferred=keras_fit)
    monitor = callbacks.SelfNormalizationMonitor(probe, log_dir=storage.join(
        run.logs, "self_normalization"))
    logger = callbacks.EpochLogger(config.epochs, monitor)

    def checkpoint(epoch):
        if not config.checkpoint_every or (epoch + 1) % config.checkpoint_every == 0:
            best.write()  # the best model and the history never lag the resume point
            history.write()
            resume.save(epoch + 1)

    write_best = callbacks.EpochEnd("best_model", lambda epoch: best.write())
    write_history = callbacks.EpochEnd("history_file", lambda epoch: history.write())
    save = callbacks.EpochEnd("resume_checkpoint", checkpoint)
    pictures = callbacks.TaskPictures(probe, storage.join(run.logs, "pictures"), config.seed)
    chain = [best, history, write_best]
    chain += [write_history, save, keras.callbacks.TerminateOnNaN()] if keras_fit else []
    chain += [keras.callbacks.TensorBoard(run.logs, write_graph=False), monitor, logger,
              pictures]
    budgets = {write_best: 0.02, write_history: 0.01, pictures: 0.01} if keras_fit else {}
    budgets.update({save: 0.04} if keras_fit and not config.checkpoint_every else {})
    return (callbacks.TimedCallbacks(chain, model, budgets, epochs=config.epochs), best, logger,
            history, monitor)


@dataclasses.dataclass(frozen=True)
class Fitted:
    """What `fit` did.

    Attributes:
      history: each logged metric's values over all epochs of the run (the epochs before a
        resume included); empty on workers other than the chief.
      resumed_from: the epochs done before this call.
      best: the `callbacks.BestModelCheckpoint` (None on workers other than the chief).
      self_normalization: the probe's per-layer ``(mean, variance)`` before and after this
        call's training (`callbacks.SelfNormalizationMonitor`).
      epoch_seconds: each epoch's seconds by part (`callbacks.TimedCallbacks.seconds`).
      train_end_seconds: the seconds of the writes after the last epoch.
    """

    history: dict
    resumed_from: int
    best: object
    self_normalization: dict
    epoch_seconds: list
    train_end_seconds: float


def fit(model, data, config, run, strategy, loop, probe):
    """Trains ``model`` (resuming ``run``); returns a `Fitted`.

    ``probe``: validation features for the self-normalization monitor and the pictures.

    Raises:
      Diverged: if the loss became NaN or infinite, or no epoch had a finite validation loss.
      Interrupted: on Ctrl-C.
    """
    chief = distribute.is_chief(strategy)
    resume = ResumeCheckpoint(model, run.checkpoints, strategy)
    resumed_from = resume.restore()
    chain, best, logger, recorder, monitor = _callbacks(model, run, config, probe,
                                                        keras_fit=loop == "fit",
                                                        resume=resume, resumed_from=resumed_from)
    if resumed_from >= config.epochs:
        logging.info("this run finished its %d epochs already: its best model is evaluated "
                     "and exported again", resumed_from)
    else:
        logging.info("%s at epoch %d of %d", "resuming" if resumed_from else "starting",
                     resumed_from + 1, config.epochs)
    # A whole pass per epoch, each in the order of (seed, epoch): a resumed run reads what
    # the uninterrupted one read. A set steps_per_epoch streams passes instead.
    custom = loop == "custom"
    passes = None if config.steps_per_epoch else range(resumed_from, config.epochs)
    train_batches = data.batches(datasets.TRAIN, config.batch_size, shuffle_seed=config.seed,
                                 repeat=passes is None, epochs=passes, drop_remainder=custom,
                                 map_fn=model.training_pair)
    validation_batches = data.batches(datasets.VALIDATION, config.batch_size,
                                      map_fn=model.training_pair)
    steps = train_steps(data, config, drop_remainder=custom)
    try:
        if custom:
            distribute.train(
                model, strategy, train_batches, global_batch_size=config.batch_size,
                epochs=config.epochs, steps_per_epoch=steps, initial_epoch=resumed_from,
                resume=resume, validation_batches=validation_batches,
                callbacks=chain if chief else [], jit_compile=config.jit_compile,
                steps_per_execution=model.steps_per_execution)
        else:
            model.fit(train_batches, validation_data=validation_batches, epochs=config.epochs,
                      initial_epoch=resumed_from, steps_per_epoch=steps, callbacks=chain,
                      shuffle=False, verbose=0)
        diverged = model.stop_training  # set by TerminateOnNaN
    except distribute.NonFiniteLossError:
        diverged = True
    except KeyboardInterrupt:
        raise Interrupted(logger.epoch, int(resume.epoch)) from None
    if diverged or (chief and best.best is None):
        raise Diverged(f"training of {config.model} diverged (loss became NaN or inf); lower "
                       f"--config.learning_rate (now {config.learning_rate}) or check the data")
    start = time.perf_counter()
    if chief:  # what the budgets deferred
        best.write()
        recorder.write()
        if not custom and int(resume.epoch) < len(recorder.epochs):
            resume.save(len(recorder.epochs))
    end_seconds = round(time.perf_counter() - start, 4)
    statistics = {"before": monitor.history[0], "after": monitor.history[-1]} \
        if monitor.history else {}
    seconds = [{part: round(value, 4) for part, value in epoch.items()} for epoch in chain.seconds]
    return Fitted(recorder.history if chief else {}, resumed_from, best if chief else None,
                  statistics, seconds, end_seconds)


def evaluate(model, data, config):
    """Test metrics: Keras' ``evaluate`` and the task's own (`Task.evaluation_metrics`)."""
    test = model.evaluate(data.batches(datasets.TEST, config.batch_size,
                                       map_fn=model.training_pair), return_dict=True, verbose=0)
    test.update(model.evaluation_metrics(data.batches(datasets.TEST, config.batch_size),
                                         seed=config.seed))
    return {name: float(value) for name, value in test.items()}


def write_pictures(model, examples, run, seed):
    """Writes the task's pictures of ``examples`` (features) as PNG files; returns their paths."""
    paths = {}
    for name, image in model.pictures(examples[:16], seed).items():
        storage.makedirs(run.path("pictures"))
        paths[name] = storage.atomic_write(run.picture(name), tf.io.encode_png(image).numpy())
    return paths


def export(model, data, options, seed=0, signature_changes=()):
    """`export_all` with train rows for calibration and test rows for verification."""
    return export_all(model, options.export_dir, options.model_name,
                      representative_data=data.take(datasets.TRAIN, CALIBRATION_EXAMPLES),
                      validation_data=data.take(datasets.TEST, VERIFICATION_EXAMPLES),
                      keep_versions=options.keep_versions,
                      serving_base_path=options.serving_base_path, seed=seed,
                      serving_form=options.serving_form, formats=options.formats,
                      signature_changes=signature_changes)


def finished_run(run, config, export_options):
    """The result of ``run`` if it already trained ``config.epochs`` epochs and published
    what ``export_options`` asks for (or nothing was asked); None when there is work left.

    A strategy or device change is not a new run: the same config finds the same result.
    """
    if not storage.exists(run.metrics_path):
        return None
    metrics = storage.read_json(run.metrics_path, fix="delete it, or pass --restart")
    done = (metrics.get("run_id") == run.run_id
            and len(metrics.get("history", {}).get("loss", [])) >= config.epochs)
    published = export_options is None or (
        metrics.get("exported_version") is not None
        and metrics.get("export_name") == export_options.model_name)
    if not (done and published):
        return None
    where = (f"; its model is version {metrics['exported_version']} of "
             f"{metrics['export_name']}" if export_options else "")
    logging.info("%s holds a finished run of these %d epochs%s; nothing to train or publish "
                 "(pass --restart to train again)", run.workdir, config.epochs, where)
    return {"metrics": metrics, "artifacts": metrics.get("artifacts", {}), "finished": True}


def train_and_evaluate(config, workdir, *, export_options=None, data_dir=None, download=True,
                       strategy=None, loop="auto", restart=False):
    """Trains ``config.model`` as ``config`` says, evaluates its best checkpoint, exports it.

    Args:
      config: the experiment ConfigDict (``configs/<model>.py`` plus overrides), validated.
      workdir: the run's folder (see `selu_zoo.runs`); any tf.io.gfile path.
      export_options: an `ExportOptions`, or None to skip exports.
      data_dir: TFDS data folder, or None for TFDS's default.
      download: whether a catalog dataset may be downloaded.
      strategy: a ``tf.distribute.Strategy``, or None for the default one.
      loop: ``"auto"``, ``"fit"`` or ``"custom"`` (see `choose_loop`).
      restart: delete a run of another config in ``workdir`` instead of refusing.

    Returns:
      ``{"metrics": ..., "artifacts": {name: path}}`` (the content of ``metrics.json`` and
      where everything is); ``{"metrics": None, "artifacts": {}}`` on workers of a cluster
      other than the chief. A run that had finished already (`finished_run`) returns its
      result with ``"finished": True``, training and publishing nothing.

    Raises:
      ValueError: for a config that does not fit the data, or a workdir of another run.
      Diverged: if training diverged. Interrupted: on Ctrl-C.
    """
    start, strategy = time.monotonic(), strategy or tf.distribute.get_strategy()
    loop, chief = choose_loop(loop, strategy, config), distribute.is_chief(strategy)
    run = runs.open_run(workdir, config, restart=restart and chief)
    finished = finished_run(run, config, export_options)
    if finished is not None:
        return finished
    data = distribute.chief_first(strategy, lambda: open_data(config, data_dir, download))
    keras.utils.set_random_seed(config.seed)  # after the data: preparing it draws numbers too
    with strategy.scope():
        model = registry.build_model(config, data.info)
        model.compile(optimizer=make_optimizer(config), jit_compile=config.jit_compile,
                      steps_per_execution=steps_per_execution(
                          data, config, drop_remainder=loop == "custom"))
    logging.info("%s (%s, %d parameters) on %s: %s examples; %s with %d replica(s), %s loop",
                 config.model, model.kind, model.count_params(), config.dataset,
                 "/".join(str(n) for n in data.info.num_examples.values()),
                 distribute.strategy_name(strategy), strategy.num_replicas_in_sync, loop)
    changes = contract.check_compatible(
        model, export_options.export_dir, export_options.model_name,
        export_options.allow_signature_change) if export_options and chief else []
    if chief:
        run.begin()
    probe = data.take(datasets.VALIDATION, PROBE_EXAMPLES)[0]
    fitted = fit(model, data, config, run, strategy, loop, probe)
    if not chief:
        return {"metrics": None, "artifacts": {}}
    model = keras.models.load_model(fitted.best.filepath)
    # steps_per_execution fits this run's data; the exported model fine-tunes on other data.
    model.compile(optimizer=model.optimizer, jit_compile=config.jit_compile)
    test = evaluate(model, data, config)
    artifacts = {"workdir": run.workdir, "best_checkpoint": fitted.best.filepath,
                 "tensorboard": run.logs, **write_pictures(model, probe, run, config.seed)}
    exported = export(model, data, export_options, config.seed,
                      changes) if export_options else None
    if exported is not None:
        artifacts.update(exported.files)
    metrics = {"run_id": run.run_id, "config": run.config, "model": config.model,
               "dataset": config.dataset, "kind": model.kind,
               "parameters": model.count_params(), "test": test, "history": fitted.history,
               "resumed_from_epoch": fitted.resumed_from, "best_epoch": fitted.best.best_epoch,
               "best_val_loss": fitted.best.best,
               "self_normalization": fitted.self_normalization,
               "epoch_seconds": fitted.epoch_seconds,
               "train_end_seconds": fitted.train_end_seconds,
               "wall_time_s": round(time.monotonic() - start, 1),
               "strategy": distribute.strategy_name(strategy),
               "replicas": strategy.num_replicas_in_sync, "loop": loop,
               "exported_version": None if exported is None else exported.version,
               "export_name": None if exported is None else export_options.model_name,
               "label_names": data.info.label_names, "artifacts": artifacts}
    artifacts["metrics"] = run.write_metrics(metrics)
    return {"metrics": metrics, "artifacts": artifacts}
