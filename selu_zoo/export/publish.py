"""Publishing a model version for TensorFlow Serving: one complete artifact set, at once.

Layout (README "Exports and deployment")::

    <export_dir>/models.config                  entries merged by `models_config`
    <export_dir>/<model_name>/<version>/        SavedModel; the other files in assets.extra/
    <export_dir>/<model_name>/.staging-<id>/    a version being written (hidden)
    <export_dir>/<model_name>/.lease-<id>       who writes it; renewed while it runs

A version is written into a hidden staging folder, then published by one exclusive rename to
``1 + the largest integer folder`` (the next number if another process took it). Another run
deletes a staging folder only once its lease (without one: its content) is older than
``lease_seconds`` by the later of the recorded time and the storage's mtime; PIDs are never
judged. Deletions first rename to a hidden name. Object stores have no folder rename: a number
is claimed by a marker and a listing (two writers may both withdraw, never both win), then the
files move with ``saved_model.pb`` last; the next `publish` undoes a crashed move.
"""

import dataclasses
import os
import re
import socket
import threading
import time
import uuid

import tensorflow as tf
from absl import logging

from selu_zoo import storage
from selu_zoo.export import models_config

ASSETS_EXTRA = "assets.extra"
SAVED_MODEL_PB = "saved_model.pb"
STAGING_PREFIX = ".staging-"
LEASE_PREFIX = ".lease-"
DELETING_PREFIX = ".deleting-"
CLAIM_PREFIX = ".claim-"
DEFAULT_KEEP_VERSIONS = 5
DEFAULT_LEASE_SECONDS = 600.0
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
_ATTEMPTS = 1000
_CLEANUP_ERRORS = (OSError, tf.errors.OpError)


@dataclasses.dataclass(frozen=True)
class Published:
    """What `publish` did: ``version``, ``version_dir``, the ``models_config`` path and the
    ``pruned`` versions (ascending)."""

    version: int
    version_dir: str
    models_config: str
    pruned: tuple = ()


def validate_model_name(name):
    """Returns ``name`` if it can be a folder and a TF Serving model name.

    Raises:
      ValueError: unless it is letters, digits, ``_``, ``.`` or ``-``, starting with a letter
        or digit, and not all digits.
    """
    if not isinstance(name, str) or not _MODEL_NAME.match(name) or name.isdigit():
        raise ValueError(f"model_name must be letters, digits, '_', '.' or '-', start with a "
                         f"letter or digit and not be all digits, got {name!r}")
    return name


def _is_version(name):
    return name.isascii() and name.isdigit()


def _version_names(model_dir):
    """``{version: folder name}`` of the published versions of ``model_dir``."""
    return {int(name): name for name in storage.listdir(model_dir)
            if _is_version(name) and storage.exists(storage.join(model_dir, name,
                                                                 SAVED_MODEL_PB))}


def versions(model_dir):
    """The published versions (integer folders with a ``saved_model.pb``), ascending."""
    return sorted(_version_names(model_dir))


def version_dirs(model_dir):
    """The folders of `versions`, oldest first (the last is the newest)."""
    names = _version_names(model_dir)
    return [storage.join(model_dir, names[v]) for v in sorted(names)]


def latest_version(model_dir):
    """The newest published version under ``model_dir``, or None if there is none."""
    found = versions(model_dir)
    return found[-1] if found else None


def extras_dir(version_dir):
    """``<version_dir>/assets.extra``, where a version's non-SavedModel artifacts live."""
    return storage.join(version_dir, ASSETS_EXTRA)


def publish(export_dir, model_name, write_version, *, serving_base_path=None,
            keep_versions=DEFAULT_KEEP_VERSIONS, lease_seconds=DEFAULT_LEASE_SECONDS):
    """Publishes a new version of a model: all of its artifacts, or nothing.

    Checks ``models.config``, removes this model's stale staging, calls ``write_version`` on a
    new staging folder while renewing its lease, renames it to the next free version, merges
    the model's entry into ``models.config`` and prunes old versions.

    Args:
      export_dir: the serving base folder (local, ``gs://``, ``ram://``, ...).
      model_name: the model's folder and TF Serving name.
      write_version: ``write_version(staging_dir)`` writes one complete version into that empty
        folder: the SavedModel at its top, the rest under ``assets.extra/``. If it raises, the
        folder is deleted, nothing else changes and the error propagates.
      serving_base_path: ``export_dir`` as the server sees it, for ``models.config``
        (`models_config.merged`).
      keep_versions: how many of the newest versions to keep (None: all); the new version and
        versions ``models.config`` pins are never pruned.
      lease_seconds: how long a staging folder whose lease is not renewed counts as alive.

    Returns:
      A `Published`.

    Raises:
      ValueError: for bad arguments, or if ``write_version`` wrote no ``saved_model.pb``.
      CorruptFileError: if ``models.config`` cannot be merged (checked before ``write_version``).
      StorageError: if a file operation fails; after the commit only for ``models.config``,
        saying the version is published. Cleanup and pruning failures are logged.
      Whatever ``write_version`` raises.
    """
    validate_model_name(model_name)
    if not callable(write_version):
        raise ValueError(f"write_version must be callable, got {write_version!r}")
    if keep_versions is not None and (isinstance(keep_versions, bool) or not isinstance(
            keep_versions, int) or keep_versions < 1):
        raise ValueError(f"keep_versions must be None or an int >= 1, got {keep_versions!r}")
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)) \
            or not lease_seconds > 0:
        raise ValueError(f"lease_seconds must be a number > 0, got {lease_seconds!r}")
    export_dir = os.path.abspath(export_dir) if storage.is_local(export_dir) \
        else os.fspath(export_dir).rstrip("/")
    model_dir = storage.join(export_dir, model_name)
    models_config.check_models_config(export_dir)
    created = [d for d in (export_dir, model_dir) if not storage.isdir(d)]
    storage.makedirs(model_dir)
    _quietly("clean up " + model_dir, remove_stale, model_dir, lease_seconds)
    _quietly("clean up " + export_dir, models_config.remove_leftovers, export_dir)

    staging = _Staging(model_dir, lease_seconds)
    try:
        write_version(staging.path)
        staging.check_alive()
        if not storage.exists(storage.join(staging.path, SAVED_MODEL_PB)):
            raise ValueError(f"write_version wrote no {SAVED_MODEL_PB} into {staging.path}; it "
                             f"must write a whole version there (the SavedModel at the top, "
                             f"the other artifacts under {ASSETS_EXTRA}/)")
        version, version_dir = _commit(staging)
    except BaseException:
        staging.end(discard=True)
        _remove_if_empty(created)
        raise
    staging.end(discard=False)

    try:
        config = models_config.merge_model_entry(export_dir, model_name, serving_base_path)
    except storage.StorageError as error:
        raise type(error)(f"version {version} of {model_name} is published ({version_dir}), "
                          f"but {error}") from error
    pruned = ()
    if keep_versions is not None:
        protect = {version} | models_config.pinned_versions(config, model_name)
        pruned = _quietly(f"prune old versions of {model_dir}", prune_versions, model_dir,
                          keep_versions, protect) or ()
    return Published(version, version_dir, models_config.config_path(export_dir), tuple(pruned))


def prune_versions(model_dir, keep_versions, protect=()):
    """Deletes all but the newest ``keep_versions`` versions, never one in ``protect``, each hidden
    first (`_delete_version`).

    Returns:
      The versions deleted, ascending.
    """
    names = _version_names(model_dir)
    ordered = sorted(names)
    keep = set(ordered[-keep_versions:]) | set(protect)
    pruned = [v for v in ordered if v not in keep and _delete_version(model_dir, names[v])]
    if pruned:
        logging.info("pruned versions %s of %s", pruned, model_dir)
    return pruned


def remove_stale(model_dir, lease_seconds=DEFAULT_LEASE_SECONDS):
    """Deletes what dead exports left in ``model_dir`` (staging and leases that ran out, old
    temporaries, folders hidden for deletion, interrupted object-store versions); never what a
    live one is writing.

    Returns:
      The names removed.
    """
    removed = [name for name in storage.listdir(model_dir)
               if _quietly(f"remove {name} from {model_dir}", _remove_if_stale, model_dir, name,
                           lease_seconds)]
    for name in removed:
        logging.info("removed %s, left in %s by an export that died", name, model_dir)
    return removed


def _remove_if_stale(model_dir, name, lease_seconds):
    """Removes ``<model_dir>/<name>`` if `remove_stale` should; returns whether it did."""
    path = storage.join(model_dir, name)
    if name.startswith(DELETING_PREFIX):
        _remove_any(path)
    elif name.startswith(LEASE_PREFIX):
        staging = storage.join(model_dir, STAGING_PREFIX + name[len(LEASE_PREFIX):])
        if storage.exists(staging) or not _lease_expired(path, lease_seconds):
            return False  # its folder decides, or its export is starting
        storage.remove(path)
    elif name.startswith(STAGING_PREFIX):
        lease = storage.join(model_dir, LEASE_PREFIX + name[len(STAGING_PREFIX):])
        stale = _lease_expired(lease, lease_seconds) if storage.exists(lease) \
            else _unchanged_for(path, lease_seconds)
        hidden = (_hide(model_dir, name) if storage.is_local(path) else path) if stale else None
        if hidden is None:
            return False  # alive, or published or deleted meanwhile
        storage.remove_tree(hidden)
        storage.remove(lease)
    elif name.startswith(storage.TEMP_PREFIX):
        if not _unchanged_for(path, lease_seconds):
            return False
        _remove_any(path)
    elif _is_version(name) and not storage.is_local(path):
        if not _interrupted_version(model_dir, name, lease_seconds):
            return False
        storage.remove_tree(path)
    else:
        return False
    return True


# --- Staging and its lease -----------------------------------------------------------------


class _Staging:
    """A hidden folder ``<model_dir>/.staging-<id>`` and its lease, renewed by a thread.

    The lease is a sibling, not a file inside (the folder becomes the version), whose name does
    not start with the folder's (``ram://`` lists a folder by name prefix).
    """

    def __init__(self, model_dir, lease_seconds):
        self.model_dir = model_dir
        self.id = uuid.uuid4().hex[:16]
        self.path = storage.join(model_dir, STAGING_PREFIX + self.id)
        self.lease_path = storage.join(model_dir, LEASE_PREFIX + self.id)
        self.lease_seconds = lease_seconds
        self._started = time.time()
        self._stop = threading.Event()
        try:  # the lease first: a folder without one would be judged by its age
            self._renew()
        except storage.StorageError:
            storage.makedirs(model_dir)  # removed by a failing first export of this model
            self._renew()
        try:
            storage.makedirs(self.path)
        except BaseException:
            _quietly("delete " + self.lease_path, storage.remove, self.lease_path)
            raise
        self._thread = threading.Thread(target=self._keep_renewing, daemon=True,
                                        name=f"lease {self.lease_path}")
        self._thread.start()

    def _renew(self):
        storage.write_json(self.lease_path, {
            "host": socket.gethostname(), "pid": os.getpid(), "started": self._started,
            "renewed": time.time(), "seconds": self.lease_seconds})

    def _keep_renewing(self):
        while not self._stop.wait(self.lease_seconds / 4):
            try:
                self._renew()
            except _CLEANUP_ERRORS as error:
                logging.warning("could not renew the lease %s: %s", self.lease_path, error)

    def check_alive(self):
        """Raises StorageError if another run deleted the folder, judging it abandoned."""
        if not storage.isdir(self.path):
            raise storage.StorageError(
                f"{self.path} was deleted while this export wrote it: its lease was not "
                f"renewed for {self.lease_seconds:g} s (was the process suspended?); "
                f"export again")

    def end(self, discard):
        """Stops renewing and deletes the lease, and with ``discard`` the folder first."""
        self._stop.set()
        self._thread.join()
        if discard:
            _quietly("delete " + self.path, storage.remove_tree, self.path)
        _quietly("delete " + self.lease_path, storage.remove, self.lease_path)


def _lease_expired(lease_path, lease_seconds):
    """Whether the lease was last renewed longer ago than the longer of the two leases."""
    try:
        lease = storage.read_json(lease_path, fix="it is deleted with its staging folder")
    except storage.CorruptFileError:
        lease = {}
    except storage.StorageError:
        return False  # gone: its export just ended
    lease = lease if isinstance(lease, dict) else {}
    recorded = lease.get("renewed")
    times = [t for t in (recorded if isinstance(recorded, (int, float)) else None,
                         storage.mtime(lease_path)) if t is not None]
    seconds = lease.get("seconds")
    limit = max(lease_seconds, seconds if isinstance(seconds, (int, float)) else 0)
    return bool(times) and time.time() - max(times) > limit


def _unchanged_for(path, seconds):
    newest = storage.newest_mtime(path)
    return newest is not None and time.time() - newest > seconds


# --- Commit --------------------------------------------------------------------------------


def _next_version(model_dir):
    """1 + the largest integer entry (published or not) under ``model_dir``."""
    return max((int(n) for n in storage.listdir(model_dir) if _is_version(n)), default=0) + 1


def _commit(staging):
    """Moves the staging folder to the next free version; returns (version, its folder)."""
    for _ in range(_ATTEMPTS):
        staging.check_alive()
        version = _next_version(staging.model_dir)
        target = storage.join(staging.model_dir, str(version))
        try:
            _move_into_place(staging, target)
        except FileExistsError:
            continue  # another export took this number: take the next
        return version, target
    raise storage.StorageError(f"cannot publish {staging.path}: {_ATTEMPTS} version numbers "
                               f"were taken while it tried; is something creating folders "
                               f"in {staging.model_dir}?")


def _move_into_place(staging, target):
    """Publishes ``staging`` as ``target`` unless ``target`` exists (FileExistsError)."""
    if storage.is_local(target):
        storage.rename_exclusive(staging.path, target)
        return
    if storage.exists(target):
        raise FileExistsError(target)
    claim_name = CLAIM_PREFIX + staging.id
    claim = storage.join(target, claim_name)
    storage.makedirs(target)
    storage.create_exclusive(claim, staging.id)
    if any(name != claim_name for name in storage.listdir(target)):
        storage.remove(claim)  # someone else claimed it too: both may retreat, never both win
        raise FileExistsError(target)
    try:
        storage.move_tree(staging.path, target, last=[SAVED_MODEL_PB])
        storage.remove(claim)
    except BaseException:
        _quietly("undo the partial version " + target, storage.remove_tree, target)
        raise


def _interrupted_version(model_dir, name, lease_seconds):
    """Whether an object-store version is a crashed commit or deletion, to be deleted (a
    completed commit's claim is removed)."""
    path = storage.join(model_dir, name)
    entries = storage.listdir(path)
    if DELETING_PREFIX + "marker" in entries:
        return True
    for claim in (e for e in entries if e.startswith(CLAIM_PREFIX)):
        lease = storage.join(model_dir, LEASE_PREFIX + claim[len(CLAIM_PREFIX):])
        if storage.exists(lease) and not _lease_expired(lease, lease_seconds):
            continue  # its commit is still running
        if SAVED_MODEL_PB in entries:  # moved last: the version is complete
            storage.remove(storage.join(path, claim))
        else:
            return True
    return False


# --- Deletion ------------------------------------------------------------------------------


def _hide(model_dir, name):
    """Renames ``<model_dir>/<name>`` to a unique hidden name; returns it, or None if gone."""
    path = storage.join(model_dir, name)
    hidden = storage.join(model_dir, f"{DELETING_PREFIX}{name.lstrip('.')}-"
                                     f"{uuid.uuid4().hex[:8]}")
    try:
        storage.rename_exclusive(path, hidden)
    except (FileExistsError, storage.StorageError):
        if storage.exists(path):
            raise
        return None
    return hidden


def _delete_version(model_dir, name):
    """Deletes a version folder so that no server sees it half-deleted; False if it was gone.

    Local: hidden first. Object stores: marked (see `_interrupted_version`), then its
    ``saved_model.pb`` goes first.
    """
    path = storage.join(model_dir, name)
    if storage.is_local(path):
        path = _hide(model_dir, name)
        if path is None:
            return False
    else:
        if not storage.exists(path):
            return False
        storage.write_json(storage.join(path, DELETING_PREFIX + "marker"), {})
        storage.remove(storage.join(path, SAVED_MODEL_PB))
    storage.remove_tree(path)
    return True


def _remove_any(path):
    """Deletes a file or folder; fine if another cleanup deleted it first."""
    try:
        if storage.isdir(path):
            storage.remove_tree(path)
        else:
            storage.remove(path)
    except storage.StorageError:
        if storage.exists(path):
            raise


def _remove_if_empty(created):
    """Removes the folders a failed first export created, if still empty (local only)."""
    for directory in reversed(created):
        if not storage.is_local(directory):
            return
        try:
            os.rmdir(directory)  # fails, harmlessly, once another export put something in it
        except OSError:
            return


def _quietly(action, function, *args):
    """``function(*args)``; a failure is logged as "could not <action>" and None returned."""
    try:
        return function(*args)
    except _CLEANUP_ERRORS as error:
        logging.warning("could not %s: %s", action, error)
        return None
