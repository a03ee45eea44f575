"""Processes for tests/test_publish.py: concurrent publishes, and publishes killed at a step.

    python tests/_publish_job.py SPEC.json OUT

imports TensorFlow once, then forks one process per role of SPEC (``{"roles": [...]}``), all
at once, and waits for them. A role publishes a fake version (`write_fake_version`) of
``role["model"]`` into ``role["export_dir"]``; optional keys:

* ``kill``: a step of `KILL_STEPS`; the process SIGKILLs itself there, after writing
  ``OUT/<name>.killed`` (so a test knows the step was reached).
* ``delay``: seconds to sleep before publishing.
* ``barrier``: ``[folder, count]``: at the end of write_version, wait until ``count`` roles
  have reached it (so their commits race; `BARRIER_GUARD_SECONDS` at most).
* ``allocate_barrier``: ``[folder, count, seconds]``: after computing its first version
  number, wait until ``count`` roles have one (so they all try the same number).
* ``merge_barrier``: ``[folder, count, seconds]``: when reading ``models.config`` for the
  merge (inside the lock), wait until ``count`` roles have reached that point, or for
  ``seconds``: without a lock all read the old file; with one the others cannot arrive.
* ``keep_versions``, ``lease_seconds``, ``serving_base_path``: passed to `publish`.

Writes ``OUT/<name>.json`` (what `publish` returned, and the version numbers it found
taken) for a role that finished,
``OUT/<name>.log`` (its output) and ``OUT/<name>.rc`` (its exit code, -9 when killed).
The helpers here are also imported by the tests.
"""

import json
import os
import signal
import sys
import time
import traceback

ARTIFACTS = ("saved_model.pb", "fingerprint.pb", "variables/variables.index",
             "variables/variables.data-00000-of-00001", "assets.extra/{model}.keras",
             "assets.extra/{model}.tflite", "assets.extra/{model}.f16.tflite",
             "assets.extra/{model}.int8.tflite", "assets.extra/report.json",
             "assets.extra/tf_serving_warmup_requests")
# How long a barrier waits for the others before giving up: a guard against a hang, far longer
# than any arrival takes, so the roles meet at the barrier however slow the machine is.
BARRIER_GUARD_SECONDS = 120
KILL_STEPS = ("write_version", "before_rename", "after_rename", "config_locked",
              "config_written", "prune", "cleanup")


def artifact_names(model):
    """The relative paths of one complete fake version of ``model``."""
    return sorted(name.format(model=model) for name in ARTIFACTS)


def write_fake_version(directory, model, token, stop_after=None):
    """Writes every artifact of a version, each holding ``token`` (or the first few)."""
    from selu_zoo import storage

    for index, name in enumerate(artifact_names(model)):
        if index == stop_after:
            return
        path = storage.join(directory, name)
        storage.makedirs(path.rsplit("/", 1)[0])
        with storage.gfile.GFile(path, "wb") as f:
            f.write(token.encode())


def _wait_for(folder, count, seconds, name):
    """Marks ``name`` as arrived in ``folder``; waits for ``count`` arrivals or ``seconds``."""
    open(os.path.join(folder, name), "w").close()
    deadline = time.monotonic() + seconds
    while len(os.listdir(folder)) < count and time.monotonic() < deadline:
        time.sleep(0.005)


def _die(out, name, step):
    with open(os.path.join(out, f"{name}.killed"), "w") as f:
        f.write(step)
    os.kill(os.getpid(), signal.SIGKILL)


def _install_kill(step, out, name):
    """Patches the function that runs at ``step`` so that the process dies there."""
    from selu_zoo import storage
    from selu_zoo.export import models_config

    def wrap(module, attribute, before=None, after=None):
        real = getattr(module, attribute)

        def patched(*args, **kwargs):
            if before and before(*args):
                _die(out, name, step)
            result = real(*args, **kwargs)
            if after and after(*args):
                _die(out, name, step)
            return result

        setattr(module, attribute, patched)

    def is_version(source, target, *rest):
        return os.path.basename(target).isdigit()

    if step == "before_rename":
        wrap(storage, "rename_exclusive", before=is_version)
    elif step == "after_rename":
        wrap(storage, "rename_exclusive", after=is_version)
    elif step == "config_locked":
        wrap(storage, "create_exclusive",
             after=lambda path, *rest: path.endswith(models_config.LOCK_NAME))
    elif step == "config_written":  # the temporary is written and synced, not yet renamed
        wrap(os, "replace",
             before=lambda source, target, *rest: target.endswith(models_config.MODELS_CONFIG))
    elif step in ("prune", "cleanup"):  # a folder is hidden and partly deleted
        marker = ".deleting-staging-" if step == "cleanup" else ".deleting-1-"

        def partly(path, *rest):
            if marker not in os.path.basename(path):
                return False
            for directory, _, files in os.walk(path):
                if files:
                    os.remove(os.path.join(directory, files[0]))
                    return True
            return True

        wrap(storage, "remove_tree", before=partly)


def run_role(role, out):
    """Publishes one fake version as ``role`` says; never returns."""
    name = role["name"]
    log = os.open(os.path.join(out, f"{name}.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        from selu_zoo import storage
        from selu_zoo.export import publish

        time.sleep(role.get("delay", 0))
        step = role.get("kill")
        if step and step != "write_version":
            _install_kill(step, out, name)
        taken = []  # numbers this role lost to another (not asserted: timing decides)
        real_rename = storage.rename_exclusive

        def counting_rename(source, target):
            try:
                return real_rename(source, target)
            except FileExistsError:
                taken.append(os.path.basename(target))
                raise

        storage.rename_exclusive = counting_rename
        if role.get("allocate_barrier"):
            real_next = publish._next_version

            def next_together(model_dir):
                number = real_next(model_dir)
                if not taken:
                    _wait_for(*role["allocate_barrier"], name)
                return number

            publish._next_version = next_together
        written = []
        if role.get("merge_barrier"):
            real_read = storage.read_bytes

            def read_together(path):
                if path.endswith("models.config") and written == [True]:
                    written.append("merging")
                    _wait_for(*role["merge_barrier"], name)
                return real_read(path)

            storage.read_bytes = read_together

        def write_version(staging):
            if step == "write_version":
                write_fake_version(staging, role["model"], name, stop_after=4)
                _die(out, name, step)
            write_fake_version(staging, role["model"], name)
            if role.get("barrier"):
                _wait_for(*role["barrier"], BARRIER_GUARD_SECONDS, name)
            written.append(True)

        result = publish.publish(role["export_dir"], role["model"], write_version,
                                 keep_versions=role.get("keep_versions", 5),
                                 lease_seconds=role.get("lease_seconds", 600),
                                 serving_base_path=role.get("serving_base_path"))
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump({"version": result.version, "version_dir": result.version_dir,
                       "pruned": list(result.pruned), "taken": taken}, f)
        code = 0
    except BaseException:  # noqa: B902  (reported in the log, then the exit code)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(spec_path, out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import selu_zoo.export.publish  # noqa: F401  (imports TensorFlow once, before forking)

    with open(spec_path) as f:
        roles = json.load(f)["roles"]
    children = {}
    for role in roles:
        pid = os.fork()
        if pid == 0:
            run_role(role, out)
        children[pid] = role["name"]
    while children:
        pid, status = os.wait()
        with open(os.path.join(out, f"{children.pop(pid)}.rc"), "w") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    main(*sys.argv[1:])
