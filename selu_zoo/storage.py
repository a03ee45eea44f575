"""Files through ``tf.io.gfile``: local paths, ``gs://`` buckets, ``ram://`` and the rest.

Every file selu_zoo writes goes through this module, so one set of rules holds everywhere:

* `atomic_write` writes a temporary sibling and renames it over the target: readers see the
  old file or the new one, never a part. Local files are also flushed to disk (fsync) first.
* Failures raise `StorageError`, an ``OSError`` whose message is one line naming the path and
  the cause ("no space left on device", "permission denied", ...), whatever the filesystem.
* `read_json` names the file and the fix when a file is not what it should be
  (`CorruptFileError`).
* `rename_exclusive` never replaces an existing target: on a local filesystem it is one
  atomic ``rename(2)``; on object stores, which have no atomic rename, it checks first.
"""

import contextlib
import errno
import json
import os
import posixpath
import uuid

import tensorflow as tf

gfile = tf.io.gfile

TEMP_PREFIX = ".tmp-"

_REASONS = {
    tf.errors.NotFoundError: "no such file or directory",
    tf.errors.PermissionDeniedError: "permission denied",
    tf.errors.ResourceExhaustedError: "no space left on device",
    tf.errors.AlreadyExistsError: "it already exists",
    tf.errors.FailedPreconditionError: "not a directory, or not empty",
}
_ERRNO_REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                  errno.ENAMETOOLONG: "file name too long", errno.EROFS: "read-only filesystem",
                  errno.EACCES: "permission denied", errno.EPERM: "operation not permitted"}


class StorageError(OSError):
    """A file operation failed; the message is one line naming the path and the cause."""


class CorruptFileError(StorageError):
    """A file exists but does not hold what it should; the message says how to recover."""


def is_local(path):
    """Whether ``path`` is on the local filesystem (no ``scheme://`` prefix)."""
    return "://" not in os.fspath(path)


def join(*parts):
    """Joins path parts with ``/`` (right for local paths and for URLs alike)."""
    return posixpath.join(*(os.fspath(p) for p in parts)) if not is_local(parts[0]) \
        else os.path.join(*parts)


def _reason(error):
    if isinstance(error, tf.errors.OpError):
        for kind, reason in _REASONS.items():
            if isinstance(error, kind):
                return reason
        message = error.message or type(error).__name__
        if "File name too long" in message:
            return "file name too long"
        if "No space left" in message:
            return "no space left on device"
        return message.splitlines()[0]
    if isinstance(error, OSError) and error.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[error.errno]
    return (getattr(error, "strerror", None) or str(error)).splitlines()[0].lower()


@contextlib.contextmanager
def reported(action, path):
    """Turns any filesystem error inside the block into a one-line `StorageError`.

    Args:
      action: what was being done, e.g. ``"write"``; the message reads "cannot write PATH".
      path: the path the action was about.

    Raises:
      StorageError: ``"cannot <action> <path>: <cause>"``.
    """
    try:
        yield
    except StorageError:
        raise
    except (OSError, tf.errors.OpError) as error:
        raise StorageError(f"cannot {action} {path}: {_reason(error)}") from error


def exists(path):
    """Whether ``path`` exists (file or directory)."""
    return gfile.exists(os.fspath(path))


def isdir(path):
    """Whether ``path`` is an existing directory."""
    return gfile.isdir(os.fspath(path))


def listdir(path):
    """The sorted entry names of a directory; empty if it does not exist."""
    path = os.fspath(path)
    if not gfile.isdir(path):
        return []
    with reported("list", path):
        return sorted(name.rstrip("/") for name in gfile.listdir(path))


def makedirs(path):
    """Creates a directory and its parents (no error if it exists); returns ``path``."""
    with reported("create the folder", path):
        gfile.makedirs(os.fspath(path))
    return path


def remove(path):
    """Deletes a file if it exists."""
    path = os.fspath(path)
    with reported("delete", path):
        if gfile.exists(path):
            gfile.remove(path)


def remove_tree(path):
    """Deletes a directory tree if it exists."""
    path = os.fspath(path)
    with reported("delete", path):
        if not gfile.exists(path):
            return
        try:
            gfile.rmtree(path)
        except tf.errors.NotFoundError:
            # ram:// lists names that only share a prefix, which rmtree then fails to find:
            # delete what is really there, deepest first.
            for directory, _, files in reversed(list(gfile.walk(path))):
                for name in files:
                    with contextlib.suppress(tf.errors.NotFoundError):
                        gfile.remove(join(directory, name))
                with contextlib.suppress(tf.errors.NotFoundError):
                    gfile.remove(directory)


def read_bytes(path):
    """The content of a file, as bytes."""
    path = os.fspath(path)
    with reported("read", path), gfile.GFile(path, "rb") as f:
        return f.read()


def temporary_sibling(path, what=None):
    """A fresh name beside ``path``, hidden and unique: ``.tmp-<what>-<random>``."""
    directory, name = posixpath.split(os.fspath(path)) if not is_local(path) \
        else os.path.split(os.fspath(path))
    return join(directory or ".", f"{TEMP_PREFIX}{what or name}-{uuid.uuid4().hex[:12]}")


def atomic_write(path, content):
    """Writes ``content`` to ``path`` so that readers see the old file or the new one.

    Args:
      path: destination; its folder must exist.
      content: ``bytes`` or ``str`` (written as UTF-8).

    Returns:
      ``path``.

    Raises:
      StorageError: if the folder is missing or unwritable, or the disk is full; the
        temporary file is removed and ``path`` is unchanged.
    """
    path = os.fspath(path)
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    temp = temporary_sibling(path)
    try:
        with reported("write", path):
            if is_local(path):
                with open(temp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, path)
            else:
                with gfile.GFile(temp, "wb") as f:
                    f.write(data)
                gfile.rename(temp, path, overwrite=True)
    except BaseException:
        with contextlib.suppress(OSError, tf.errors.OpError):
            if gfile.exists(temp):
                gfile.remove(temp)
        raise
    return path


def write_json(path, payload):
    """`atomic_write` of ``payload`` as indented JSON with sorted keys; returns ``path``."""
    return atomic_write(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path, *, fix):
    """Parses a JSON file.

    Args:
      path: the file.
      fix: what the user can do if it is corrupt, e.g. ``"delete it to start over"``.

    Returns:
      The parsed value.

    Raises:
      StorageError: if it cannot be read.
      CorruptFileError: if it is not valid JSON; the message names the file and ``fix``.
    """
    data = read_bytes(path)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CorruptFileError(f"{path} is corrupt (not valid JSON: {error}); {fix}") from None


def rename(source, target, overwrite=False):
    """Renames a file or directory; with ``overwrite`` a file target is replaced."""
    with reported("rename", f"{source} to {target}"):
        gfile.rename(os.fspath(source), os.fspath(target), overwrite=overwrite)


def rename_exclusive(source, target):
    """Renames ``source`` to ``target`` unless ``target`` exists; never replaces it.

    On a local filesystem the rename is one ``rename(2)`` call, which fails on a non-empty
    directory target: two processes renaming their own non-empty directories to the same
    target cannot both succeed. Elsewhere (object stores) it checks, then renames.

    Raises:
      FileExistsError: if ``target`` exists (or was taken at the same moment).
      StorageError: for other failures.
    """
    source, target = os.fspath(source), os.fspath(target)
    if gfile.exists(target):
        raise FileExistsError(errno.EEXIST, "already exists", target)
    if is_local(target):
        try:
            os.rename(source, target)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(errno.EEXIST, "already exists", target) from None
            raise StorageError(f"cannot rename {source} to {target}: {_reason(error)}") \
                from error
        return
    try:
        gfile.rename(source, target, overwrite=False)
    except tf.errors.AlreadyExistsError:
        raise FileExistsError(errno.EEXIST, "already exists", target) from None
    except tf.errors.OpError as error:
        raise StorageError(f"cannot rename {source} to {target}: {_reason(error)}") from error


def check_writable(directory, what):
    """Creates ``directory`` if needed and proves it writable with a probe file.

    The probe is created and removed at the real target, so read-only filesystems,
    ``/proc``-like folders and names too long for the filesystem fail here.

    Args:
      directory: the folder.
      what: how the user names it, e.g. ``"--workdir"``; it starts the message.

    Raises:
      StorageError: ``"<what>=<directory> is not writable: <cause>"``.
    """
    directory = os.fspath(directory)
    try:
        if gfile.exists(directory) and not gfile.isdir(directory):
            raise StorageError(f"{what}={directory} is a file; pass a folder")
        gfile.makedirs(directory)
        probe = temporary_sibling(join(directory, "write-probe"))
        with gfile.GFile(probe, "wb") as f:
            f.write(b"probe")
        gfile.remove(probe)
    except StorageError:
        raise
    except (OSError, tf.errors.OpError) as error:
        raise StorageError(f"{what}={directory} is not writable: {_reason(error)}") from None


def create_exclusive(path, content):
    """Creates the file ``path`` holding ``content``, unless it exists.

    On a local filesystem (NFS included) the content is written to a temporary sibling and
    hard-linked to ``path``: ``link(2)`` fails if ``path`` exists, so of two processes at
    once exactly one succeeds, and readers never see a partial file (the NFS-safe way that
    ``open(2)`` documents, link count check included). Filesystems without
    hard links fall back to ``open(O_CREAT | O_EXCL)``. Elsewhere (object stores) it is best
    effort: check, write, read back; a writer that reads back other content loses, but two
    writers whose checks both come before either write can both win. Pass content that is
    unique to the caller (a random token) so the read-back means something.

    Args:
      path: the file; its folder must exist.
      content: ``bytes`` or ``str`` (UTF-8).

    Raises:
      FileExistsError: if ``path`` exists (or another writer won).
      StorageError: for other failures.
    """
    path = os.fspath(path)
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    taken = FileExistsError(errno.EEXIST, "already exists", path)
    if not is_local(path):
        if gfile.exists(path):
            raise taken
        with reported("create", path):
            with gfile.GFile(path, "wb") as f:
                f.write(data)
        if read_bytes(path) != data:
            raise taken
        return
    temp = temporary_sibling(path)
    try:
        with reported("create", path), open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
            return
        except FileExistsError:
            if os.stat(temp).st_nlink == 2:  # NFS: the link was made, its reply was lost
                return
            raise taken from None
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise StorageError(f"cannot create {path}: {_reason(error)}") from error
        try:  # no hard links here
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise taken from None
        with reported("create", path), os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.remove(temp)


def mtime(path):
    """When ``path`` was last modified, in seconds since the epoch, as the storage reports it.

    Returns:
      A float, or None if ``path`` does not exist or the filesystem keeps no times
      (``ram://`` reports 0).
    """
    try:
        seconds = gfile.stat(os.fspath(path)).mtime_nsec / 1e9
    except (OSError, tf.errors.OpError):
        return None
    return seconds or None


def newest_mtime(path):
    """The latest `mtime` of ``path`` and everything under it; None if none is known."""
    path = os.fspath(path)
    times = [mtime(path)]
    if gfile.isdir(path):
        with contextlib.suppress(OSError, tf.errors.OpError):
            for directory, subdirs, files in gfile.walk(path):
                times += [mtime(join(directory, name)) for name in subdirs + files]
    return max((t for t in times if t is not None), default=None)


def move_tree(source, target, last=()):
    """Moves every file under the folder ``source`` to the same place under ``target``.

    For filesystems whose directory rename is missing or broken: object stores copy each
    object anyway, and ``ram://`` in TF 2.21 renames a folder without its files. It is not
    atomic; ``last`` names files (relative paths) moved after all others, so a reader that
    waits for them sees the rest complete. ``source`` is removed at the end.

    Raises:
      FileExistsError: if a file exists at its place under ``target``.
      StorageError: for other failures.
    """
    source, target = os.fspath(source), os.fspath(target)
    moves, final = [], []
    with reported("list", source):
        for directory, _, files in gfile.walk(source):
            relative = posixpath.relpath(directory, source) if not is_local(source) \
                else os.path.relpath(directory, source)
            relative = "" if relative == "." else relative
            makedirs(join(target, relative) if relative else target)
            for name in files:
                rel = join(relative, name) if relative else name
                if not gfile.exists(join(source, rel)):
                    continue  # ram:// lists names that only share a prefix ("assets/.extra")
                (final if rel in last else moves).append(rel)
    for rel in moves + final:
        destination = join(target, rel)
        try:
            gfile.rename(join(source, rel), destination, overwrite=False)
        except tf.errors.AlreadyExistsError:
            raise FileExistsError(errno.EEXIST, "already exists", destination) from None
        except tf.errors.OpError as error:
            raise StorageError(f"cannot move {join(source, rel)} to {destination}: "
                               f"{_reason(error)}") from error
    remove_tree(source)
