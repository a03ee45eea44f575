"""A workdir holds one run: its config, checkpoints, logs, pictures and metrics.

`Run.begin` writes the config to ``<workdir>/config.json`` when a run starts. Running again in
the same workdir resumes that run only if the config is the same, apart from
`RESUMABLE_FIELDS` (``epochs``: training can be extended or cut short without changing what
is trained). Any other difference is refused before training, in one line that names the
differing fields and ``--restart``, which deletes the old run's files and starts over. So
the best checkpoint, the TensorBoard logs and ``metrics.json`` always belong to the run
that wrote ``config.json``, identified by its ``run_id``.

Layout::

    <workdir>/config.json       run_id, start time, the config
    <workdir>/history.json      the metrics of every finished epoch
    <workdir>/checkpoints/      best.keras (+ .json record), the resume checkpoints
    <workdir>/logs/             TensorBoard
    <workdir>/pictures/         the task's pictures (PNG)
    <workdir>/metrics.json      written at the end of the run
"""

import dataclasses
import datetime
import json
import uuid

from selu_zoo import storage

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
# Fields a resumed run may change: how long, how fast and how often it checkpoints, not what
# it trains.
RESUMABLE_FIELDS = ("epochs", "steps_per_execution", "checkpoint_every")
# The entries of a workdir that belong to a run (and that --restart deletes).
RUN_ENTRIES = (CONFIG_FILE, HISTORY_FILE, METRICS_FILE, "checkpoints", "logs", "pictures")


class RunMismatchError(ValueError):
    """The workdir holds another run; the message names what differs and the way out."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One run's folder.

    Attributes:
      workdir: the folder (any tf.io.gfile path).
      run_id: the run's identifier, kept when it resumes.
      config: the run's config as plain JSON values.
      resumed: whether ``config.json`` was there already (a resumed run).
    """

    workdir: str
    run_id: str
    config: dict
    resumed: bool

    def begin(self):
        """Writes ``config.json`` (a new run) or updates its resumable fields (a resumed one).

        Raises:
          storage.StorageError: if the workdir cannot be written.
        """
        path = self.path(CONFIG_FILE)
        record = storage.read_json(path, fix="delete it, or pass --restart, to start over") \
            if self.resumed else {"run_id": self.run_id, "started": datetime.datetime.now(
                datetime.timezone.utc).isoformat()}
        if record.get("config") != self.config:
            storage.makedirs(self.workdir)
            storage.write_json(path, {**record, "config": self.config})

    def path(self, *parts):
        """A path inside the workdir."""
        return storage.join(self.workdir, *parts)

    @property
    def checkpoints(self):
        """The folder of the best model and the resume checkpoints."""
        return self.path("checkpoints")

    @property
    def best_checkpoint(self):
        """The best model of the run, ``checkpoints/best.keras``."""
        return self.path("checkpoints", "best.keras")

    @property
    def logs(self):
        """The TensorBoard folder."""
        return self.path("logs")

    def picture(self, name):
        """Where the picture ``name`` is written, ``pictures/<name>.png``."""
        return self.path("pictures", f"{name}.png")

    @property
    def metrics_path(self):
        return self.path(METRICS_FILE)

    def write_metrics(self, metrics):
        """Writes ``metrics.json`` atomically; returns its path."""
        return storage.write_json(self.metrics_path, metrics)


def as_json(config):
    """A ConfigDict as plain JSON values (tuples become lists), for saving and comparing."""
    return json.loads(config.to_json_best_effort(sort_keys=True))


def differences(saved, current):
    """The fields whose values differ between two configs, resumable fields left out.

    Returns:
      Dict ``field -> (saved value, current value)``; a missing field has value None.
    """
    fields = sorted((set(saved) | set(current)) - set(RESUMABLE_FIELDS))
    return {f: (saved.get(f), current.get(f)) for f in fields if saved.get(f) != current.get(f)}


def _clear(workdir):
    for entry in RUN_ENTRIES:
        path = storage.join(workdir, entry)
        if storage.isdir(path):
            storage.remove_tree(path)
        else:
            storage.remove(path)


def open_run(workdir, config, *, restart=False):
    """Checks that ``config`` may run in ``workdir``: a new run, or the run already there.

    Nothing is written yet (but for ``restart``): `Run.begin` writes ``config.json`` when
    training is about to start, so a run that fails before (bad data, say) leaves no trace.

    Args:
      workdir: the run's folder (any tf.io.gfile path).
      config: the experiment ConfigDict.
      restart: delete a run already in the workdir first (its checkpoints, logs, pictures
        and metrics) instead of refusing a different config.

    Returns:
      The `Run`.

    Raises:
      RunMismatchError: if the workdir holds a run of another config, or files of a run
        without ``config.json``, and ``restart`` is not set.
      storage.StorageError: if the workdir cannot be read (or cleared).
    """
    current = as_json(config)
    config_path = storage.join(workdir, CONFIG_FILE)
    if restart:
        _clear(workdir)
    if storage.exists(config_path):
        record = storage.read_json(config_path, fix="delete it, or pass --restart, to start "
                                                    "over")
        changed = differences(record.get("config", {}), current)
        if changed:
            listed = ", ".join(f"config.{f}: {old!r} -> {new!r}"
                               for f, (old, new) in list(changed.items())[:5])
            more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            raise RunMismatchError(
                f"--workdir={workdir} holds a run of another config ({listed}{more}); pass "
                "--restart to delete that run and start over, or choose another --workdir")
        return Run(str(workdir), record["run_id"], current, resumed=True)
    leftovers = [e for e in RUN_ENTRIES if storage.exists(storage.join(workdir, e))]
    if leftovers:
        raise RunMismatchError(
            f"--workdir={workdir} holds files of a run without {CONFIG_FILE} "
            f"({', '.join(leftovers)}); pass --restart to delete them and start over, or "
            "choose another --workdir")
    return Run(str(workdir), uuid.uuid4().hex, current, resumed=False)
