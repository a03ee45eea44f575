"""`ResumeCheckpoint`: what a run resumes from, for both loops.

After a finished epoch (every epoch on the custom loop; under Keras ``fit`` within 4% of the
training time, `training`) the model's variables (dropout seed generators included), the
optimizer's and the epoch counter are written as a ``tf.train.Checkpoint`` named
``ckpt-<epoch>``; a small ``ckpt-<epoch>.done`` file, written atomically afterwards, marks
it complete. `ResumeCheckpoint.restore` takes the newest complete checkpoint that reads
back; one that does not (a disk that filled up, a truncated file) is set aside as
``*.damaged`` with a warning and the one before is used, so the epoch resumed from is
always the epoch of the state actually restored.

Under a multi-worker strategy every worker saves (it is a collective step), the chief into
the run's folder, the others into temporary folders (`selu_zoo.distribute.write_dir`).
"""

import re

import tensorflow as tf
from absl import logging

from selu_zoo import storage
from selu_zoo.distribute import cluster

PREFIX = "ckpt"
_DONE = re.compile(re.escape(PREFIX) + r"-(\d+)\.done\Z")


class ResumeCheckpoint:
    """Saves and restores a model's training state by epoch.

    Args:
      model: a compiled Keras model (its optimizer is built here if it is not yet).
      directory: the checkpoint folder (any tf.io.gfile path; shared storage for a cluster).
      strategy: the ``tf.distribute.Strategy`` the model lives under (default: the current).
      keep: how many complete checkpoints to keep.
    """

    def __init__(self, model, directory, strategy=None, keep=2):
        self.directory = str(directory)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.keep = keep
        with self.strategy.scope():
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
        # Outside the strategy's scope: a plain variable that every worker keeps for itself.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # model.variables as well: Keras' tracking leaves out some state, such as the seed
        # generators of dropout layers, which a resumed run must continue from.
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                                              epoch=self.epoch,
                                              model_variables=list(model.variables))

    def _prefix(self, epoch, directory=None):
        return storage.join(directory or self.directory, f"{PREFIX}-{epoch}")

    def complete_epochs(self):
        """The epochs with a complete checkpoint in the folder, newest first."""
        return sorted((int(m.group(1)) for m in map(_DONE.match,
                                                    storage.listdir(self.directory)) if m),
                      reverse=True)

    def _set_aside(self, epoch, error):
        prefix = self._prefix(epoch)
        for name in storage.listdir(self.directory):
            if name.startswith(f"{PREFIX}-{epoch}.") and not name.endswith(".damaged"):
                path = storage.join(self.directory, name)
                storage.rename(path, path + ".damaged", overwrite=True)
        logging.warning("the checkpoint of epoch %d (%s) is damaged (%s); set it aside as "
                        "%s.*.damaged", epoch, prefix, str(error).splitlines()[0], prefix)

    def restore(self):
        """Restores the newest complete checkpoint that reads back.

        Returns:
          The number of epochs it had finished (0 when there is none: a fresh start).

        Raises:
          storage.CorruptFileError: if checkpoints exist but none reads back.
        """
        epochs = self.complete_epochs()
        for epoch in epochs:
            try:
                self.checkpoint.read(self._prefix(epoch)).assert_existing_objects_matched()
            # A truncated data file raises IndexError ("Read less bytes than requested").
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as error:
                self._set_aside(epoch, error)
                continue
            if int(self.epoch) != epoch:
                self._set_aside(epoch, f"it holds epoch {int(self.epoch)}")
                continue
            return epoch
        if epochs:
            raise storage.CorruptFileError(
                f"no checkpoint in {self.directory} reads back (all were set aside as "
                "*.damaged); delete that folder, or pass --restart, to start over")
        return 0

    def save(self, epoch):
        """Saves the state after ``epoch`` finished epochs and removes older checkpoints.

        Every worker of a cluster must call it. Returns the chief's checkpoint prefix.

        Raises:
          storage.StorageError: if it cannot be written (a full disk, ...); the previous
            checkpoints are untouched.
        """
        chief = cluster.is_chief(self.strategy)
        directory = self.directory if chief else cluster.write_dir(self.directory,
                                                                   self.strategy)
        self.epoch.assign(epoch)
        prefix = self._prefix(epoch, directory)
        with storage.reported("write the checkpoint", prefix):
            storage.makedirs(directory)
            self.checkpoint.write(prefix)
        if not chief:
            cluster.remove_write_dir(self.directory, self.strategy)
            return self._prefix(epoch)
        storage.write_json(prefix + ".done", {"epoch": int(epoch)})
        for old in self.complete_epochs()[self.keep:]:
            for name in storage.listdir(self.directory):
                if name.startswith(f"{PREFIX}-{old}."):
                    storage.remove(storage.join(self.directory, name))
        return prefix
