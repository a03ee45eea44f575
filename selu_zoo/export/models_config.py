"""``models.config`` for TensorFlow Serving: merged entry by entry, under a lock, never rebuilt.

``<export_dir>/models.config`` is a text ``ModelServerConfig`` proto that may hold other
models' entries and hand-written fields: an export parses it, adds or updates its own entry
and keeps the rest; an unchanged file is not rewritten. Writers hold
``<export_dir>/.models.config.lock`` (created exclusively, with host, pid, time and a token);
a lock older than `LOCK_STALE_SECONDS` by the later of its time and its mtime is broken, and
a writer whose token is gone from the lock starts over.
"""

import json
import os
import random
import socket
import time
import uuid

from absl import logging
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from selu_zoo import storage

MODELS_CONFIG = "models.config"
LOCK_NAME = ".models.config.lock"
LOCK_STALE_SECONDS = 60.0
LOCK_WAIT_SECONDS = 90.0
_BROKEN = LOCK_NAME + ".broken-"
_ATTEMPTS = 3


def config_path(export_dir):
    """``<export_dir>/models.config``."""
    return storage.join(export_dir, MODELS_CONFIG)


def parse_models_config(text, path):
    """Parses ``models.config`` text (``bytes`` or ``str``; ``path`` names it in messages).

    Returns:
      A ``ModelServerConfig`` with a ``model_config_list`` (empty text gives an empty list).

    Raises:
      CorruptFileError: if the text is not a ``ModelServerConfig``, uses
        ``custom_model_config``, or lists a model twice.
    """
    try:
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except (UnicodeDecodeError, text_format.ParseError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise storage.CorruptFileError(
            f"{path} is not a valid ModelServerConfig text proto ({reason}); fix it, or move "
            f"it away and export again to start a new one") from None
    if config.WhichOneof("config") == "custom_model_config":
        raise storage.CorruptFileError(
            f"{path} uses custom_model_config; selu_zoo can only add its models to a "
            f"model_config_list: convert the file, or export to another --export_dir")
    names = [entry.name for entry in config.model_config_list.config]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise storage.CorruptFileError(
            f"{path} lists model {twice[0]!r} more than once (TF Serving refuses that); "
            f"remove all but one entry")
    config.model_config_list.SetInParent()
    return config


def check_models_config(export_dir):
    """Parses ``<export_dir>/models.config``; None if there is none. Run it before training.

    Raises:
      CorruptFileError: as `parse_models_config`.
      StorageError: if the file cannot be read.
    """
    path = config_path(export_dir)
    if not storage.exists(path):
        return None
    return parse_models_config(storage.read_bytes(path), path)


def model_entry(config, model_name):
    """The ``ModelConfig`` of ``model_name`` in ``config``, or None."""
    return next((e for e in config.model_config_list.config if e.name == model_name), None)


def pinned_versions(config, model_name):
    """Versions of ``model_name`` (which has an entry) that ``config`` names, which pruning
    must keep: those of ``model_version_policy.specific`` and ``version_labels`` of every
    entry with its ``base_path`` (its own and aliases).

    Returns:
      A set of ints.
    """
    base_path = model_entry(config, model_name).base_path
    pinned = set()
    for entry in config.model_config_list.config:
        if entry.base_path == base_path:
            pinned.update(entry.model_version_policy.specific.versions)
            pinned.update(entry.version_labels.values())
    return pinned


def _base_path(export_dir, model_name, serving_base_path):
    base = serving_base_path or (os.path.abspath(export_dir) if storage.is_local(export_dir)
                                 else os.fspath(export_dir))
    return base.rstrip("/") + "/" + model_name


def merged(config, export_dir, model_name, serving_base_path=None):
    """Adds or updates ``model_name``'s entry in ``config`` (in place).

    A new entry gets ``base_path = (serving_base_path or the absolute export_dir) + "/" +
    model_name``; an existing one keeps every field, and its ``base_path`` changes only with
    ``serving_base_path``. With ``serving_base_path`` every other entry whose ``base_path`` lies
    in ``export_dir`` moves under it too, so that one container serves every model of the file.

    Returns:
      Whether ``config`` changed.
    """
    before = config.SerializeToString()
    if model_entry(config, model_name) is None:
        config.model_config_list.config.add(
            name=model_name, base_path=_base_path(export_dir, model_name, serving_base_path),
            model_platform="tensorflow")
    if serving_base_path:
        here = _base_path(export_dir, "", None)  # "<absolute export_dir>/"
        for entry in config.model_config_list.config:
            if entry.name == model_name:
                entry.base_path = _base_path(export_dir, model_name, serving_base_path)
            elif entry.base_path.startswith(here):
                entry.base_path = _base_path(export_dir, entry.base_path[len(here):],
                                             serving_base_path)
    return config.SerializeToString() != before


def merge_model_entry(export_dir, model_name, serving_base_path=None):
    """`merged` into ``<export_dir>/models.config`` under the lock; written (atomically) only if
    it changed.

    Returns:
      The merged ``ModelServerConfig``.

    Raises:
      CorruptFileError: as `parse_models_config`.
      StorageError: if the lock cannot be taken within `LOCK_WAIT_SECONDS`, or writing fails.
    """
    path = config_path(export_dir)
    for _ in range(_ATTEMPTS):
        with ConfigLock(export_dir) as lock:
            config = check_models_config(export_dir) or parse_models_config("", path)
            if not merged(config, export_dir, model_name, serving_base_path):
                return config
            text = text_format.MessageToString(config)
            if not lock.held():  # broken by someone who judged us dead: redo it under theirs
                logging.warning("the lock %s was taken over; merging %s again", lock.path, path)
                continue
            storage.atomic_write(path, text)
            return config
    raise storage.StorageError(f"cannot update {path}: its lock {lock.path} was taken over "
                               f"{_ATTEMPTS} times; is a clock far off on a host writing it?")


def remove_leftovers(export_dir):
    """Deletes broken locks and ``models.config`` temporaries older than
    `LOCK_STALE_SECONDS` from ``export_dir``."""
    now = time.time()
    temp_prefix = f"{storage.TEMP_PREFIX}{MODELS_CONFIG}-"
    for name in storage.listdir(export_dir):
        path = storage.join(export_dir, name)
        if name.startswith(_BROKEN):
            storage.remove(path)
        elif name.startswith(temp_prefix):
            modified = storage.mtime(path)
            if modified is not None and now - modified > LOCK_STALE_SECONDS:
                storage.remove(path)


class ConfigLock:
    """The lock on ``<export_dir>/models.config`` (a context manager; see the module doc)."""

    def __init__(self, export_dir):
        self.export_dir = export_dir
        self.path = storage.join(export_dir, LOCK_NAME)
        self.token = uuid.uuid4().hex

    def acquire(self):
        """Takes the lock, breaking a stale one; waits at most `LOCK_WAIT_SECONDS`.

        Raises:
          StorageError: if a live holder keeps it that long; the message names it.
        """
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            content = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "time": time.time(), "token": self.token})
            try:
                storage.create_exclusive(self.path, content)
                return self
            except FileExistsError:
                pass
            holder = _read_lock(self.path)
            if holder is None:  # released meanwhile
                continue
            age = _age(holder.get("time"), storage.mtime(self.path))
            if age is not None and age > LOCK_STALE_SECONDS:
                logging.warning("breaking the stale lock %s (%.0f s old, held by %s pid %s)",
                                self.path, age, holder.get("host"), holder.get("pid"))
                _break(self.export_dir, holder)
                continue
            if time.monotonic() > deadline:
                held_for = "" if age is None else f" for {age:.0f} s"
                raise storage.StorageError(
                    f"cannot lock {self.path}: held by {holder.get('host', '?')} pid "
                    f"{holder.get('pid', '?')}{held_for}; if no export is running there, "
                    f"delete the file")
            time.sleep(random.uniform(0.005, 0.05))

    def held(self):
        """Whether the lock file still holds this lock's token."""
        holder = _read_lock(self.path)
        return holder is not None and holder.get("token") == self.token

    def release(self):
        """Deletes the lock file if it is still this lock's."""
        if self.held():
            storage.remove(self.path)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
        return False


def _read_lock(path):
    """The lock's JSON; ``{}`` if unreadable as such; None if there is no lock."""
    try:
        holder = storage.read_json(path, fix="it is a lock")
    except storage.CorruptFileError:
        return {}
    except storage.StorageError:
        return None if not storage.exists(path) else {}
    return holder if isinstance(holder, dict) else {}


def _age(recorded, modified):
    """Seconds since the later of two times (either may be unknown); None if both are."""
    times = [t for t in (recorded, modified) if isinstance(t, (int, float))]
    return time.time() - max(times) if times else None


def _break(export_dir, holder):
    """Removes the stale lock ``holder`` of ``export_dir``, and only that one: renamed to a unique
    name first (of two breakers one wins), and put back if it is not the lock judged stale."""
    path = storage.join(export_dir, LOCK_NAME)
    moved = storage.join(export_dir, _BROKEN + uuid.uuid4().hex[:12])
    try:
        storage.rename(path, moved)
    except storage.StorageError:
        return  # gone: someone else broke or released it
    taken = _read_lock(moved)
    if taken is not None and taken.get("token") != holder.get("token"):
        try:
            storage.create_exclusive(path, storage.read_bytes(moved))
        except (FileExistsError, storage.StorageError):
            pass  # a new lock exists; its holder checks `held` before it writes
    storage.remove(moved)
