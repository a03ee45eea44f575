"""SavedModels for TensorFlow Serving: writing, the versioned layout, and ``models.config``.

Layout (what ``tensorflow_model_server --model_config_file=<export_dir>/models.config``
serves)::

    <export_dir>/models.config                      one entry per exported model
    <export_dir>/<model_name>/<version>/saved_model.pb, variables/

A version is written into a temporary sibling whose name is not an integer
(``.tmp-<version>-<pid>-<random>``) and renamed into place, so a server polling the
directory never sees a partial version, and a failed export leaves the earlier ones intact.
"""

import contextlib
import errno
import os
import re
import shutil
import tempfile
import uuid

import keras
import tensorflow as tf
from absl import logging

from selu_zoo import ops
from selu_zoo.export import graph_check
from selu_zoo.export import signatures as sig

MODELS_CONFIG = "models.config"
TEMP_PREFIX = ".tmp-"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")


def save_options():
    """SaveOptions for serving: custom gradients (XLA-compiled in selu_zoo.ops) stay out."""
    return tf.saved_model.SaveOptions(experimental_custom_gradients=False)


def validate_model_name(name):
    """Returns ``name`` if it can be a directory and a TF Serving model name; raises otherwise."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name) or name.isdigit():
        raise ValueError(f"model_name must be letters, digits, '_', '.' or '-', start with a "
                         f"letter or digit and not be all digits, got {name!r}")
    return name


def validate_keep_versions(keep_versions):
    """Returns ``keep_versions`` (None, or an int >= 1); raises ValueError otherwise."""
    if keep_versions is not None and (isinstance(keep_versions, bool) or not isinstance(
            keep_versions, int) or keep_versions < 1):
        raise ValueError(f"keep_versions must be None or an int >= 1, got {keep_versions!r}")
    return keep_versions


def write_saved_model(model, path, *, signatures=None, tflite_lowering=False):
    """Writes a model's endpoints as a SavedModel with `keras.export.ExportArchive`.

    Inputs keep their names and dtypes, outputs are dicts, batch dimensions are ``None``; the
    first endpoint is also ``serving_default``. Saved with `save_options()`.

    Args:
      model: a functional Keras model following the zoo's contract (see `signatures`).
      path: the directory to write (must not exist or be empty).
      signatures: its `ModelSignatures`; computed from the model when None.
      tflite_lowering: trace inside `selu_zoo.ops.tflite_lowering()` (ELU-based SELU), for a
        SavedModel that is only converted to TFLite.

    Returns:
      The `ModelSignatures` written.
    """
    signatures = signatures or sig.describe(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in signatures.endpoints:
        archive.add_endpoint(endpoint.name, endpoint.fn, list(endpoint.input_signature))
    context = ops.tflite_lowering() if tflite_lowering else contextlib.nullcontext()
    with context:  # tracing happens in write_out
        archive.write_out(os.fspath(path), options=save_options(), verbose=False)
    return signatures


# --- Versions ------------------------------------------------------------------------------


def _is_version_name(name):
    return name.isascii() and name.isdigit()


def list_versions(model_dir):
    """The integer versions under ``model_dir`` (directories with a ``saved_model.pb``), sorted."""
    try:
        names = os.listdir(model_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(n) for n in names if _is_version_name(n) and os.path.isfile(
        os.path.join(model_dir, n, "saved_model.pb")))


def next_version(model_dir):
    """One more than the largest integer directory name under ``model_dir`` (1 if none)."""
    try:
        names = os.listdir(model_dir)
    except (FileNotFoundError, NotADirectoryError):
        return 1
    return max((int(n) for n in names if _is_version_name(n)), default=0) + 1


def _remove_tree(path):
    """Renames ``path`` to a hidden sibling first, so a server never sees it half-deleted."""
    hidden = os.path.join(os.path.dirname(path), f"{TEMP_PREFIX}delete{os.path.basename(path)}"
                                                 f"-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.rename(path, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def prune_versions(model_dir, keep_versions, protect=()):
    """Deletes all but the newest ``keep_versions`` versions, never one in ``protect``.

    Returns:
      The versions deleted.
    """
    if keep_versions is None:
        return []
    versions = list_versions(model_dir)
    doomed = [v for v in versions[:-keep_versions] if v not in set(protect)]
    for version in doomed:
        _remove_tree(os.path.join(model_dir, str(version)))
    if doomed:
        logging.info("pruned versions %s of %s", doomed, model_dir)
    return doomed


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory):
    """Removes ``.tmp-*`` entries left by exports whose process is gone (e.g. killed).

    Entries are named ``.tmp-<what>-<pid>-<random>``; those of a live process are kept.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        match = re.match(re.escape(TEMP_PREFIX) + r".*-(\d+)-[^-]+\Z", name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def make_temp_dir(parent, what):
    """A new directory ``<parent>/.tmp-<what>-<pid>-<random>``."""
    return tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{what}-{os.getpid()}-", dir=parent)


# --- models.config -------------------------------------------------------------------------


def _quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def served_models(export_dir):
    """Names of the subdirectories of ``export_dir`` that hold at least one version, sorted."""
    try:
        names = os.listdir(export_dir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and _MODEL_NAME.match(n)
                  and list_versions(os.path.join(export_dir, n)))


def models_config_text(export_dir, serving_base_path=None, include=()):
    """The ``--model_config_file`` text proto (``ModelServerConfig``) for ``export_dir``.

    Args:
      export_dir: the directory scanned for models (see `served_models`).
      serving_base_path: the directory as the server sees it (e.g. ``/models`` inside a
        container); defaults to ``export_dir``'s absolute path.
      include: model names to list even if they have no version yet.

    Returns:
      The text, one ``config`` per model, sorted by name.
    """
    base = serving_base_path or os.path.abspath(export_dir)
    names = sorted(set(served_models(export_dir)) | set(include))
    entries = "".join(
        "  config {\n"
        f"    name: {_quote(name)}\n"
        f"    base_path: {_quote(base.rstrip('/') + '/' + name)}\n"
        '    model_platform: "tensorflow"\n'
        "  }\n" for name in names)
    return "model_config_list {\n" + entries + "}\n"


def write_text_atomically(path, text):
    """Writes ``text`` to a temporary sibling, fsyncs it, then ``os.replace``s ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.path.basename(path)}-{os.getpid()}-",
                                dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise


def write_models_config(export_dir, serving_base_path=None):
    """Rewrites ``<export_dir>/models.config`` atomically from a scan of the directory.

    Returns:
      The path written.
    """
    path = os.path.join(export_dir, MODELS_CONFIG)
    write_text_atomically(path, models_config_text(export_dir, serving_base_path))
    return path


# --- The transaction that publishes a version ----------------------------------------------


class VersionTransaction:
    """Stages a new version and its sibling files, then publishes all of it or nothing.

    Everything is written under ``<model_dir>/.tmp-<version>-<pid>-<random>/``: the SavedModel
    in `saved_model_dir`, other files via `stage_file`. `commit` then, in order, replaces the
    sibling files in ``<model_dir>``, replaces ``models.config``, and renames the SavedModel to
    ``<model_dir>/<version>`` (the commit point: a server only sees a version once the rest
    is in place). If anything in `commit` fails, the files it replaced are restored. Used as
    a context manager, an exception discards the staging directory (and the model directory
    if this export created it). A process killed during `commit` itself can leave new sibling
    files without the new version; a killed export's staging directory is removed by the
    next export (see `remove_stale_temporaries`). Two exports of one model at once: the
    second to commit fails (its version exists) and is rolled back.
    """

    def __init__(self, export_dir, model_name):
        self.export_dir = os.path.abspath(os.fspath(export_dir))
        self.model_name = validate_model_name(model_name)
        self.model_dir = os.path.join(self.export_dir, model_name)
        # Directories made here are removed again (if still empty) when the export fails.
        self._created = [d for d in (self.export_dir, self.model_dir) if not os.path.isdir(d)]
        os.makedirs(self.model_dir, exist_ok=True)
        remove_stale_temporaries(self.model_dir)
        remove_stale_temporaries(self.export_dir)
        self.version = next_version(self.model_dir)
        self.staging_dir = make_temp_dir(self.model_dir, str(self.version))
        self.saved_model_dir = os.path.join(self.staging_dir, "saved_model")
        self._files = []
        self.committed = False

    @property
    def version_dir(self):
        return os.path.join(self.model_dir, str(self.version))

    def stage_file(self, name):
        """The staging path of a file to publish as ``<model_dir>/<name>``."""
        if os.path.basename(name) != name or name.startswith(".") or _is_version_name(name):
            raise ValueError(f"bad artifact file name {name!r}")
        self._files.append(name)
        return os.path.join(self.staging_dir, name)

    def scratch_dir(self, name):
        """A directory inside the staging area for intermediate files (deleted with it)."""
        path = os.path.join(self.staging_dir, "." + name)
        os.makedirs(path)
        return path

    def commit(self, serving_base_path=None):
        """Publishes the staged files, ``models.config`` and the version; returns its path."""
        backup_dir = os.path.join(self.staging_dir, ".backup")
        os.makedirs(backup_dir)
        config_path = os.path.join(self.export_dir, MODELS_CONFIG)
        config_staged = os.path.join(self.staging_dir, MODELS_CONFIG)
        with open(config_staged, "w") as f:
            f.write(models_config_text(self.export_dir, serving_base_path,
                                       include=[self.model_name]))
            f.flush()
            os.fsync(f.fileno())
        moves = [(os.path.join(self.staging_dir, n), os.path.join(self.model_dir, n))
                 for n in self._files] + [(config_staged, config_path)]
        done = []  # (target, backup or None)
        try:
            for source, target in moves:
                backup = None
                if os.path.exists(target):
                    backup = os.path.join(backup_dir, f"{len(done)}-{os.path.basename(target)}")
                    try:
                        os.link(target, backup)
                    except OSError:
                        shutil.copy2(target, backup)
                os.replace(source, target)
                done.append((target, backup))
            _publish_version(self.saved_model_dir, self.version_dir)
        except BaseException:
            for target, backup in reversed(done):
                with contextlib.suppress(OSError):
                    if backup is None:
                        os.remove(target)
                    else:
                        os.replace(backup, target)
            raise
        self.committed = True
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        return self.version_dir

    def abort(self):
        """Deletes the staging directory, and the directories this export created if empty."""
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        for directory in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(directory)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.committed:
            self.abort()
        return False


def _publish_version(staged_saved_model, version_dir):
    """Renames the staged SavedModel to its integer directory, never over an existing one."""
    if os.path.lexists(version_dir):  # os.rename would silently replace an empty directory
        raise FileExistsError(errno.EEXIST, "another export took this version", version_dir)
    os.rename(staged_saved_model, version_dir)


def export_saved_model(model, export_dir, model_name, *, keep_versions=None,
                       serving_base_path=None):
    """Publishes the model as the next SavedModel version, and rewrites ``models.config``.

    The SavedModel is written with `write_saved_model`, checked with
    `graph_check.check_serving_graph`, then published atomically (`VersionTransaction`);
    afterwards all but the newest ``keep_versions`` versions are deleted (never the new one).
    `selu_zoo.export.export_all` does this and also writes ``.keras`` and TFLite files.

    Args:
      model: a functional Keras model following the zoo's contract.
      export_dir: the serving base directory.
      model_name: the model's directory and TF Serving name.
      keep_versions: how many versions to keep (None: all).
      serving_base_path: ``export_dir`` as the server sees it (see `models_config_text`).

    Returns:
      The new version's directory.

    Raises:
      ValueError: for a bad name or keep_versions, or a model outside the contract.
      graph_check.ServingGraphError: if the graph could not be served by stock TF Serving.
    """
    validate_keep_versions(keep_versions)
    with VersionTransaction(export_dir, model_name) as transaction:
        write_saved_model(model, transaction.saved_model_dir)
        graph_check.check_serving_graph(transaction.saved_model_dir)
        path = transaction.commit(serving_base_path)
    try:  # the version is published; failing to delete old ones must not undo that
        prune_versions(transaction.model_dir, keep_versions, protect=[transaction.version])
    except OSError as error:
        logging.warning("could not prune old versions of %s: %s", model_name, error)
    return path
