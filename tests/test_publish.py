"""selu_zoo.export.publish and models_config: complete versions, races, kills, merged config.

Concurrency and SIGKILL need real processes: one `_publish_job.py` launcher (one TensorFlow
import) forks every such process at once, as soon as the first test runs; the tests at the
end of the file collect them. Everything else runs in this process, on a local folder and,
where the storage matters, on ``ram://``.
"""

import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from selu_zoo import storage
from selu_zoo.export import models_config
from selu_zoo.export import publish

from _publish_job import BARRIER_GUARD_SECONDS, KILL_STEPS, artifact_names, write_fake_version

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_publish_job.py")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEASE = 2.0  # seconds, for the processes; long enough for a loaded 2-core machine
OTHER_ENTRY = """
  config {
    name: "other"
    base_path: "/srv/models/other"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 3 versions: 7 } }
    version_labels { key: "stable" value: 3 }
    version_labels { key: "canary" value: 7 }
    logging_config { sampling_config { sampling_rate: 0.25 } }
  }
"""
HAND_WRITTEN = f"""# Served by the ops team; keep this entry.
model_config_list {{{OTHER_ENTRY}}}
"""
# What each kill leaves published: the old version, or the old and the new.
AFTER_KILL = {"write_version": [1], "before_rename": [1], "after_rename": [1, 2],
              "config_locked": [1, 2], "config_written": [1, 2], "prune": [2], "cleanup": [1]}

# What each kill leaves behind besides the versions (random parts shown as *), in the model
# folder and in export_dir.
LEFT_BEHIND = {
    "write_version": ({".staging-*", ".lease-*"}, set()),
    "before_rename": ({".staging-*", ".lease-*"}, set()),
    "after_rename": ({".lease-*"}, set()),
    "config_locked": (set(), {".models.config.lock"}),
    "config_written": (set(), {".models.config.lock", ".tmp-models.config-*"}),
    "prune": ({".deleting-1-*"}, set()),
    "cleanup": ({".deleting-staging-dead-*", ".lease-dead"}, set()),
}


def _hidden(folder):
    return {re.sub(r"[0-9a-f]{8,}", "*", n) for n in os.listdir(folder) if n.startswith(".")}


def _writer(token, model="snn", calls=None):
    def write_version(staging):
        if calls is not None:
            calls.append(staging)
        write_fake_version(staging, model, token)
    return write_version


def _tree(path):
    """``{relative path: bytes}`` of every file under a local or ram:// folder."""
    files = {}
    for directory, _, names in storage.gfile.walk(path):
        for name in names:
            full = storage.join(directory, name)
            files[full[len(path) + 1:]] = storage.read_bytes(full)
    return files


def _complete_versions(model_dir, model="snn"):
    """``{version: token}``; asserts every integer folder is one whole, unmixed set."""
    found = {}
    for name in storage.listdir(model_dir):
        if not name.isdigit():
            continue
        files = _tree(storage.join(model_dir, name))
        assert sorted(files) == artifact_names(model), f"version {name} is incomplete"
        tokens = set(files.values())
        assert len(tokens) == 1, f"version {name} mixes exports {tokens}"
        found[int(name)] = tokens.pop().decode()
    assert len(set(found.values())) == len(found), f"one export in two versions: {found}"
    return found


def _config(export_dir):
    return text_format.Parse(storage.read_bytes(models_config.config_path(export_dir)).decode(),
                             model_server_config_pb2.ModelServerConfig())


def _entries(export_dir):
    return {e.name: e for e in _config(export_dir).model_config_list.config}


def _other_entry():
    return text_format.Parse(f"model_config_list {{{OTHER_ENTRY}}}",
                             model_server_config_pb2.ModelServerConfig()
                             ).model_config_list.config[0]


def _age(path, seconds):
    """Sets the mtime of ``path`` and everything under it ``seconds`` into the past."""
    past = time.time() - seconds
    for directory, subdirs, files in os.walk(path):
        for name in subdirs + files:
            os.utime(os.path.join(directory, name), (past, past))
    os.utime(path, (past, past))


@pytest.fixture(params=["local", "ram"])
def export_dir(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "exports")
    return f"ram://publish-{uuid.uuid4().hex[:8]}/exports"


# --- The processes: started first, checked at the end of the file ---------------------------


def _kill_dir(root, step):
    """An export_dir with a hand-written entry and a complete version 1 of snn."""
    export_dir = root / f"kill-{step}"
    export_dir.mkdir()
    (export_dir / "models.config").write_text(HAND_WRITTEN)
    publish.publish(str(export_dir), "snn", _writer("v1"))
    if step == "cleanup":  # a dead export's staging, for the killed cleanup to delete
        staging = export_dir / "snn" / ".staging-dead"
        write_fake_version(str(staging), "snn", "dead")
        lease = export_dir / "snn" / ".lease-dead"
        lease.write_text(json.dumps({"host": "gone", "renewed": 1000.0, "seconds": 1}))
        _age(str(staging), 100)
        _age(str(lease), 100)
    return str(export_dir)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish_jobs")
    out, barriers = root / "out", root / "barriers"
    out.mkdir()
    race, pair = root / "race", root / "pair"
    roles = []
    (barriers / "race").mkdir(parents=True)
    (barriers / "race-allocate").mkdir()
    racing = {"export_dir": str(race), "model": "snn", "lease_seconds": LEASE,
              "barrier": [str(barriers / "race"), 4],
              "allocate_barrier": [str(barriers / "race-allocate"), 4,
                                   BARRIER_GUARD_SECONDS]}
    for index in range(3):  # three at once, and a late one whose cleanup runs while they write
        roles.append({"name": f"racer{index}", **racing})
    roles.append({"name": "late", "delay": 1.4 * LEASE, **racing})
    (barriers / "pair").mkdir()
    (barriers / "pair-merge").mkdir()
    pair.mkdir()
    (pair / "models.config").write_text(HAND_WRITTEN)
    for model in ("m_a", "m_b"):  # both merge at once: without the lock, one entry is lost
        roles.append({"name": model, "export_dir": str(pair), "model": model,
                      "lease_seconds": LEASE, "barrier": [str(barriers / "pair"), 2],
                      "merge_barrier": [str(barriers / "pair-merge"), 2, 1.0]})
    kill_dirs = {}
    for step in KILL_STEPS:
        kill_dirs[step] = _kill_dir(root, step)
        roles.append({"name": f"kill-{step}", "export_dir": kill_dirs[step], "model": "snn",
                      "kill": step, "lease_seconds": LEASE,
                      "keep_versions": 1 if step == "prune" else 5,
                      # a new base path, so that the merge rewrites the file
                      "serving_base_path": "/serving" if step.startswith("config") else None})
    (root / "spec.json").write_text(json.dumps({"roles": roles}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    launcher = subprocess.Popen([sys.executable, JOB, str(root / "spec.json"), str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env)
    collected = {}

    def collect():
        if not collected:
            output, _ = launcher.communicate(timeout=180)
            assert launcher.returncode == 0, output
            for role in roles:
                name = role["name"]
                collected[name] = {
                    "rc": int((out / f"{name}.rc").read_text()),
                    "ended": os.stat(out / f"{name}.rc").st_mtime,
                    "log": (out / f"{name}.log").read_text(),
                    "result": json.loads((out / f"{name}.json").read_text())
                    if (out / f"{name}.json").exists() else None,
                    "killed": (out / f"{name}.killed").read_text()
                    if (out / f"{name}.killed").exists() else None}
        return collected

    yield {"collect": collect, "race": str(race), "pair": str(pair), "kill_dirs": kill_dirs}
    if launcher.poll() is None:
        launcher.kill()
        launcher.communicate()


# --- Layout and versions ---------------------------------------------------------------------


def test_versions_are_complete_sets_in_the_documented_layout(export_dir, jobs):
    results = [publish.publish(export_dir, "snn", _writer(f"t{i}")) for i in range(3)]
    model_dir = storage.join(export_dir, "snn")
    assert [r.version for r in results] == [1, 2, 3]
    assert results[-1].version_dir == storage.join(model_dir, "3")
    assert results[-1].models_config == storage.join(export_dir, "models.config")
    assert _complete_versions(model_dir) == {1: "t0", 2: "t1", 3: "t2"}
    assert publish.versions(model_dir) == [1, 2, 3]
    assert publish.latest_version(model_dir) == 3
    assert publish.version_dirs(model_dir) == [storage.join(model_dir, str(v)) for v in (1, 2, 3)]
    assert publish.extras_dir(results[0].version_dir) == storage.join(model_dir, "1",
                                                                      "assets.extra")
    # nothing hidden is left: no staging, lease, lock or temporary
    assert [n for n in storage.listdir(model_dir) if not n.isdigit()] == []
    assert [n for n in storage.listdir(export_dir) if n.startswith(".")] == []
    entry = _entries(export_dir)["snn"]
    base = os.path.abspath(export_dir) if storage.is_local(export_dir) else export_dir
    assert (entry.base_path, entry.model_platform) == (base + "/snn", "tensorflow")
    assert publish.versions(storage.join(export_dir, "missing")) == []
    assert publish.latest_version(storage.join(export_dir, "missing")) is None


def test_pruning_keeps_the_newest_and_what_models_config_pins(export_dir):
    storage.makedirs(export_dir)
    storage.atomic_write(models_config.config_path(export_dir), """
        model_config_list { config { name: "snn" base_path: "/models/snn"
          model_platform: "tensorflow"
          model_version_policy { specific { versions: 1 } }
          version_labels { key: "stable" value: 2 } } }""")
    pruned = [publish.publish(export_dir, "snn", _writer(f"t{i}"), keep_versions=2).pruned
              for i in range(6)]
    assert pruned == [(), (), (), (), (3,), (4,)]  # 1 and 2 are pinned
    assert publish.versions(storage.join(export_dir, "snn")) == [1, 2, 5, 6]
    assert publish.publish(export_dir, "snn", _writer("all"), keep_versions=None).pruned == ()
    assert publish.versions(storage.join(export_dir, "snn")) == [1, 2, 5, 6, 7]
    assert publish.prune_versions(storage.join(export_dir, "snn"), 1) == [1, 2, 5, 6]
    assert publish.versions(storage.join(export_dir, "snn")) == [7]


def test_a_taken_number_moves_the_export_to_the_next(export_dir, monkeypatch):
    real = publish._move_into_place
    targets = []

    def rival_first(staging, target):  # another export lands at this number just before us
        if not targets:
            write_fake_version(target, "snn", "rival")
        targets.append(target)
        return real(staging, target)

    monkeypatch.setattr(publish, "_move_into_place", rival_first)
    result = publish.publish(export_dir, "snn", _writer("ours"))
    model_dir = storage.join(export_dir, "snn")
    assert targets == [storage.join(model_dir, "1"), storage.join(model_dir, "2")]
    assert result.version == 2
    assert _complete_versions(model_dir) == {1: "rival", 2: "ours"}


def test_object_store_claims_let_only_one_writer_move_in(monkeypatch):
    export_dir = f"ram://claims-{uuid.uuid4().hex[:8]}"
    model_dir = storage.join(export_dir, "snn")
    real = storage.create_exclusive
    rivals = []

    def rival_claims_too(path, content):
        real(path, content)
        if "/.claim-" in path and not rivals:  # a rival's claim lands in the same folder
            rivals.append(storage.join(path.rsplit("/", 1)[0], ".claim-rival"))
            real(rivals[0], "rival")

    monkeypatch.setattr(storage, "create_exclusive", rival_claims_too)
    result = publish.publish(export_dir, "snn", _writer("ours"))
    monkeypatch.undo()
    assert result.version == 2  # we retreated from 1, which the rival holds
    assert storage.listdir(storage.join(model_dir, "1")) == [".claim-rival"]
    assert publish.versions(model_dir) == [2]  # 1 has no saved_model.pb: not a version
    assert set(_tree(storage.join(model_dir, "2")).values()) == {b"ours"}
    # the rival has no live lease: its half-made version is undone by the next cleanup
    assert publish.remove_stale(model_dir, lease_seconds=1) == ["1"]
    assert storage.listdir(model_dir) == ["2"]


# --- Failures inside write_version and bad arguments -----------------------------------------


def test_failing_write_version_changes_nothing(export_dir):
    publish.publish(export_dir, "snn", _writer("v1"))
    before = _tree(export_dir)

    def half_then_fail(staging):
        write_fake_version(staging, "snn", "broken", stop_after=5)
        raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected failure"):
        publish.publish(export_dir, "snn", half_then_fail)
    assert _tree(export_dir) == before  # byte for byte; no staging, no lease
    assert storage.listdir(storage.join(export_dir, "snn")) == ["1"]


def test_a_failed_first_export_leaves_no_folders(tmp_path):
    def fail(staging):
        raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected"):
        publish.publish(str(tmp_path / "new" / "exports"), "snn", fail)
    assert not (tmp_path / "new").exists() or os.listdir(tmp_path / "new") == []
    (tmp_path / "exports").mkdir()
    with pytest.raises(RuntimeError, match="injected"):
        publish.publish(str(tmp_path / "exports"), "snn", fail)
    assert os.listdir(tmp_path / "exports") == []


def test_a_version_without_saved_model_pb_is_refused(tmp_path):
    def only_extras(staging):
        storage.makedirs(os.path.join(staging, "assets.extra"))

    with pytest.raises(ValueError, match=r"wrote no saved_model\.pb into .*\.staging-"):
        publish.publish(str(tmp_path), "snn", only_extras)
    assert os.listdir(tmp_path) == []  # the model folder it created is gone too


@pytest.mark.parametrize("kwargs, message", [
    ({"model_name": "9"}, "model_name"), ({"model_name": ".hidden"}, "model_name"),
    ({"model_name": "a/b"}, "model_name"), ({"keep_versions": 0}, "keep_versions"),
    ({"keep_versions": True}, "keep_versions"), ({"lease_seconds": 0}, "lease_seconds"),
    ({"write_version": None}, "write_version")],
    ids=["digits", "hidden", "slash", "keep-0", "keep-bool", "lease-0", "not-callable"])
def test_bad_arguments_fail_before_anything_is_written(tmp_path, kwargs, message):
    arguments = {"export_dir": str(tmp_path / "e"), "model_name": "snn",
                 "write_version": _writer("x"), **kwargs}
    with pytest.raises(ValueError, match=message):
        publish.publish(**arguments)
    assert not (tmp_path / "e").exists()


# --- Stale staging: by lease or age, never by PID --------------------------------------------


def test_stale_staging_is_removed_and_live_staging_kept(tmp_path):
    model_dir = tmp_path / "snn"
    now = time.time()
    leases = {  # name: (lease content, lease mtime age, whether it is stale)
        "old-lease": ({"host": "other-host", "pid": 1, "renewed": now - 100, "seconds": 1},
                      100, True),
        "live-other-host": ({"host": "build-7.example", "pid": 999999999, "renewed": now,
                             "seconds": 10}, 0, False),
        "writer-clock-behind": ({"host": "h", "renewed": now - 100, "seconds": 1}, 0, False),
        "writer-clock-ahead": ({"host": "h", "renewed": now + 1000, "seconds": 1}, 100, False),
        "owner-lease-longer": ({"host": "h", "renewed": now - 100, "seconds": 3600}, 100,
                               False),
        "corrupt-old": (None, 100, True),
        "corrupt-fresh": (None, 0, False),
    }
    for name, (content, age, _) in leases.items():
        write_fake_version(str(model_dir / f".staging-{name}"), "snn", name)
        lease = model_dir / f".lease-{name}"
        lease.write_text(json.dumps(content) if content else "{not json")
        _age(str(model_dir / f".staging-{name}"), 100)
        _age(str(lease), age)
    for name, age in {"no-lease-old": 100, "no-lease-fresh": 0}.items():
        write_fake_version(str(model_dir / f".staging-{name}"), "snn", name)
        _age(str(model_dir / f".staging-{name}"), age)
    write_fake_version(str(model_dir / ".staging-no-lease-deep-change"), "snn", "deep")
    _age(str(model_dir / ".staging-no-lease-deep-change"), 100)
    os.utime(model_dir / ".staging-no-lease-deep-change" / "variables" / "variables.index")
    for name, age in {".lease-orphan-old": 100, ".lease-orphan-fresh": 0,
                      ".tmp-7-999999999-crashed": 100, ".tmp-.lease-x-123": 0}.items():
        (model_dir / name).write_text("{}")
        _age(str(model_dir / name), age)
    (model_dir / ".deleting-3-abcdef").mkdir()

    publish.publish(str(tmp_path), "snn", _writer("new"), lease_seconds=10)
    kept = {n for n in os.listdir(model_dir) if not n.isdigit()}
    assert kept == {f".staging-{n}" for n, (_, _, stale) in leases.items() if not stale} | {
        f".lease-{n}" for n, (_, _, stale) in leases.items() if not stale} | {
        ".staging-no-lease-fresh", ".staging-no-lease-deep-change", ".lease-orphan-fresh",
        ".tmp-.lease-x-123"}
    assert _complete_versions(str(model_dir)) == {1: "new"}


def test_stale_staging_on_storage_without_mtimes():
    model_dir = f"ram://stale-{uuid.uuid4().hex[:8]}/snn"
    for name, renewed in {"dead": time.time() - 100, "live": time.time()}.items():
        write_fake_version(storage.join(model_dir, f".staging-{name}"), "snn", name)
        storage.write_json(storage.join(model_dir, f".lease-{name}"),
                           {"host": "elsewhere", "renewed": renewed, "seconds": 1})
    write_fake_version(storage.join(model_dir, ".staging-no-lease"), "snn", "unknown age")
    assert publish.remove_stale(model_dir, lease_seconds=10) == [".staging-dead"]
    assert set(storage.listdir(model_dir)) == {".staging-live", ".lease-live",
                                                ".staging-no-lease"}


# --- models.config: merged, never rebuilt ----------------------------------------------------


def test_a_hand_written_entry_survives_unchanged(export_dir):
    storage.makedirs(export_dir)
    storage.atomic_write(models_config.config_path(export_dir), HAND_WRITTEN)
    publish.publish(export_dir, "snn", _writer("t0"))
    config = _config(export_dir)
    assert [e.name for e in config.model_config_list.config] == ["other", "snn"]
    assert config.model_config_list.config[0] == _other_entry()
    written = storage.read_bytes(models_config.config_path(export_dir))
    publish.publish(export_dir, "snn", _writer("t1"))  # nothing to change: not rewritten
    assert storage.read_bytes(models_config.config_path(export_dir)) == written


def test_this_models_own_hand_written_entry_is_kept_byte_for_byte(tmp_path):
    text = f"""model_config_list {{{OTHER_ENTRY}
  config {{
    name: "snn"  # by hand
    base_path: "/custom/place/snn"
    model_platform: "tensorflow"
    version_labels {{ key: "stable" value: 1 }}
  }}
}}
"""
    (tmp_path / "models.config").write_text(text)
    for token in ("a", "b", "c"):
        publish.publish(str(tmp_path), "snn", _writer(token), keep_versions=1)
    assert (tmp_path / "models.config").read_text() == text
    assert publish.versions(str(tmp_path / "snn")) == [1, 3]  # 1 is labelled "stable"


def test_the_serving_base_path_is_kept_per_model(tmp_path):
    export_dir = str(tmp_path)
    publish.publish(export_dir, "a", _writer("a1", "a"), serving_base_path="/models/")
    publish.publish(export_dir, "b", _writer("b1", "b"))
    publish.publish(export_dir, "a", _writer("a2", "a"))  # no path given: a keeps /models
    entries = _entries(export_dir)
    assert entries["a"].base_path == "/models/a"
    assert entries["b"].base_path == os.path.abspath(export_dir) + "/b"
    publish.publish(export_dir, "a", _writer("a3", "a"), serving_base_path="/srv")
    entries = _entries(export_dir)  # b lives in export_dir too: it moves with it
    assert (entries["a"].base_path, entries["b"].base_path) == ("/srv/a", "/srv/b")


def test_a_serving_base_path_makes_every_entry_valid_inside_the_container(tmp_path):
    """The README's every-model recipe: models exported without a serving base path, then one
    with ``/models``; mounting export_dir at /models, every base_path is a real folder."""
    export_dir = str(tmp_path / "saved_models")
    for name in ("snn", "snn_vae"):
        publish.publish(export_dir, name, _writer(name, name))
    # another model, whose entry was written by hand and points elsewhere
    elsewhere = 'model_config_list { config { name: "other" base_path: "/data/other" } }'
    config = models_config.check_models_config(export_dir)
    text_format.Merge(elsewhere, config)
    storage.atomic_write(os.path.join(export_dir, "models.config"),
                         text_format.MessageToString(config).encode())
    publish.publish(export_dir, "snn_rnn", _writer("rnn", "snn_rnn"), serving_base_path="/models")
    entries = _entries(export_dir)
    assert sorted(entries) == ["other", "snn", "snn_rnn", "snn_vae"]
    assert entries["other"].base_path == "/data/other"  # not in export_dir: untouched
    for name in ("snn", "snn_vae", "snn_rnn"):
        mounted = entries[name].base_path.replace("/models", export_dir, 1)
        assert entries[name].base_path == f"/models/{name}" and os.path.isdir(mounted)


@pytest.mark.parametrize("text, message", [
    ('model_config_list { config { name: "a" ', "is not a valid ModelServerConfig"),
    ("model_config_list { config { nam: 'a' } }", "is not a valid ModelServerConfig"),
    (b"\xff\xfe", "is not a valid ModelServerConfig"),
    ('custom_model_config { type_url: "x" }', "uses custom_model_config"),
    ('model_config_list { config { name: "snn" } config { name: "snn" } }', "more than once"),
], ids=["truncated", "unknown-field", "not-utf8", "custom_model_config", "duplicate-entry"])
def test_a_bad_models_config_fails_before_the_long_part(tmp_path, text, message):
    path = tmp_path / "models.config"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(storage.CorruptFileError, match=message) as early:
        models_config.check_models_config(str(tmp_path))
    assert str(path) in str(early.value) and "\n" not in str(early.value)
    calls = []
    with pytest.raises(storage.CorruptFileError, match=message):
        publish.publish(str(tmp_path), "snn", _writer("x", calls=calls))
    assert calls == [] and os.listdir(tmp_path) == ["models.config"]


def test_a_stale_lock_is_broken_and_a_live_one_waited_for(tmp_path, monkeypatch):
    lock = tmp_path / models_config.LOCK_NAME
    lock.write_text(json.dumps({"host": "crashed", "pid": 7, "time": time.time() - 1000}))
    _age(str(lock), 1000)
    publish.publish(str(tmp_path), "snn", _writer("t0"))
    assert sorted(os.listdir(tmp_path)) == ["models.config", "snn"]

    monkeypatch.setattr(models_config, "LOCK_WAIT_SECONDS", 0.3)
    lock.write_text(json.dumps({"host": "elsewhere", "pid": 4242, "time": time.time(),
                                "token": "live"}))
    with pytest.raises(storage.StorageError) as failure:
        publish.publish(str(tmp_path), "new_model", _writer("t1", "new_model"))
    message = str(failure.value)
    assert "\n" not in message
    assert "version 1 of new_model is published" in message
    assert f"cannot lock {lock}: held by elsewhere pid 4242" in message
    assert "delete the file" in message
    assert json.loads(lock.read_text())["token"] == "live"  # never broken while fresh
    assert _complete_versions(str(tmp_path / "new_model"), "new_model") == {1: "t1"}


def test_breaking_a_lock_removes_only_the_stale_one(tmp_path):
    lock = tmp_path / models_config.LOCK_NAME
    lock.write_text(json.dumps({"token": "retaken", "time": time.time()}))
    models_config._break(str(tmp_path), {"token": "judged-stale"})
    assert json.loads(lock.read_text())["token"] == "retaken"  # put back
    assert os.listdir(tmp_path) == [models_config.LOCK_NAME]
    models_config._break(str(tmp_path), {"token": "retaken"})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("step, warning", [("prune_versions", "could not prune old versions"),
                                           ("remove_stale", "could not clean up")],
                         ids=["prune", "cleanup"])
def test_failing_to_prune_or_clean_does_not_fail_an_export(tmp_path, monkeypatch, caplog, step,
                                                           warning):
    def broken(*args, **kwargs):
        raise storage.StorageError("cannot delete X: permission denied")

    monkeypatch.setattr(publish, step, broken)
    with caplog.at_level(logging.WARNING):
        result = publish.publish(str(tmp_path), "snn", _writer("t0"), keep_versions=1)
    assert result.pruned == () and result.version == 1
    assert warning in caplog.text and "permission denied" in caplog.text
    assert _complete_versions(str(tmp_path / "snn")) == {1: "t0"}


# --- Storage helpers added for publishing ----------------------------------------------------


@pytest.mark.parametrize("where", ["local", "ram"])
def test_create_exclusive_never_replaces(tmp_path, where):
    folder = str(tmp_path) if where == "local" else f"ram://excl-{uuid.uuid4().hex[:8]}"
    storage.makedirs(folder)
    path = storage.join(folder, "lock")
    storage.create_exclusive(path, "first")
    with pytest.raises(FileExistsError):
        storage.create_exclusive(path, "second")
    assert storage.read_bytes(path) == b"first"
    assert storage.listdir(folder) == ["lock"]


def test_mtimes_and_move_tree(tmp_path, monkeypatch):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_text("x")
    _age(str(tmp_path / "d"), 100)
    os.utime(tmp_path / "d" / "sub" / "f")
    assert abs(storage.newest_mtime(str(tmp_path / "d")) - time.time()) < 5
    assert storage.mtime(str(tmp_path / "d")) < time.time() - 50
    assert storage.mtime(str(tmp_path / "missing")) is None
    source = f"ram://move-{uuid.uuid4().hex[:8]}/source"
    write_fake_version(source, "snn", "moved")
    assert storage.mtime(storage.join(source, "saved_model.pb")) is None  # ram:// has none
    order = []
    real = storage.gfile.rename
    monkeypatch.setattr(storage.gfile, "rename",
                        lambda a, b, overwrite=False: (order.append(b), real(a, b, overwrite)))
    target = source.replace("source", "target")
    storage.move_tree(source, target, last=["saved_model.pb"])
    assert order[-1] == storage.join(target, "saved_model.pb")
    assert sorted(_tree(target)) == artifact_names("snn") and not storage.exists(source)


# --- Processes: racing exports, and a SIGKILL at every step ----------------------------------


def test_racing_exports_all_land_as_distinct_complete_versions(jobs):
    results = jobs["collect"]()
    racers = ["racer0", "racer1", "racer2", "late"]
    assert {n: results[n]["rc"] for n in racers} == dict.fromkeys(racers, 0), \
        {n: results[n]["log"][-2000:] for n in racers}
    model_dir = os.path.join(jobs["race"], "snn")
    landed = _complete_versions(model_dir)
    assert sorted(landed) == [1, 2, 3, 4] and sorted(landed.values()) == sorted(racers)
    assert {results[n]["result"]["version"]: n for n in racers} == landed
    # all four tried version 1 first; the three that lost it moved on, none failed
    assert sorted(results[n]["result"]["taken"][:1] for n in racers) == [[], ["1"], ["1"],
                                                                          ["1"]]
    assert sorted(os.listdir(jobs["race"])) == ["models.config", "snn"]
    assert sorted(os.listdir(model_dir)) == ["1", "2", "3", "4"]
    assert list(_entries(jobs["race"])) == ["snn"]


def test_two_models_published_at_once_are_both_listed(jobs):
    results = jobs["collect"]()
    assert (results["m_a"]["rc"], results["m_b"]["rc"]) == (0, 0), results["m_a"]["log"]
    assert sorted(_entries(jobs["pair"])) == ["m_a", "m_b", "other"]
    assert _entries(jobs["pair"])["other"] == _other_entry()
    assert sorted(os.listdir(jobs["pair"])) == ["m_a", "m_b", "models.config"]


@pytest.mark.parametrize("step", KILL_STEPS)
def test_a_kill_at_any_step_leaves_complete_versions_and_the_next_export_cleans_up(
        jobs, step, monkeypatch):
    role = jobs["collect"]()[f"kill-{step}"]
    assert (role["rc"], role["killed"]) == (-9, step), role["log"][-2000:]
    export_dir = jobs["kill_dirs"][step]
    model_dir = os.path.join(export_dir, "snn")
    landed = _complete_versions(model_dir)
    assert sorted(landed) == AFTER_KILL[step]
    assert landed[AFTER_KILL[step][0]] == ("v1" if AFTER_KILL[step][0] == 1 else f"kill-{step}")
    entries = _entries(export_dir)
    assert entries["other"] == _other_entry()
    assert entries["snn"].base_path == os.path.join(export_dir, "snn")  # the old entry
    assert (_hidden(model_dir), _hidden(export_dir)) == LEFT_BEHIND[step]

    # once the dead export's lease has run out, the next export removes all it left
    time.sleep(max(0.0, role["ended"] + LEASE + 0.2 - time.time()))
    monkeypatch.setattr(models_config, "LOCK_STALE_SECONDS", 0.5)
    result = publish.publish(export_dir, "snn", _writer("next"), lease_seconds=LEASE)
    assert result.version == max(AFTER_KILL[step]) + 1
    assert sorted(_complete_versions(model_dir)) == AFTER_KILL[step] + [result.version]
    assert sorted(os.listdir(model_dir)) == [str(v) for v in AFTER_KILL[step]] + [
        str(result.version)]
    assert sorted(os.listdir(export_dir)) == ["models.config", "snn"]
    entries = _entries(export_dir)
    assert list(entries) == ["other", "snn"] and entries["other"] == _other_entry()
