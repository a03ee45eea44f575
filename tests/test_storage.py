"""selu_zoo.storage: atomic writes, one-line errors naming the path, writability probes."""

import os
import subprocess
import sys
import textwrap

import pytest

from selu_zoo import storage


@pytest.mark.parametrize("root", ["local", "ram"])
def test_atomic_write_replaces_whole_files(tmp_path, root):
    folder = str(tmp_path) if root == "local" else "ram://storage_test"
    storage.makedirs(folder)
    path = storage.join(folder, "a.json")
    storage.write_json(path, {"b": 1, "a": [1, 2]})
    storage.write_json(path, {"c": 2})
    assert storage.read_json(path, fix="") == {"c": 2}
    assert storage.listdir(folder) == ["a.json"]  # no temporaries left


def test_read_json_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{broken")
    with pytest.raises(storage.CorruptFileError, match=f"{path} is corrupt .*; delete it"):
        storage.read_json(str(path), fix="delete it")
    with pytest.raises(storage.StorageError, match="cannot read .*nope.json: no such file"):
        storage.read_json(str(tmp_path / "nope.json"), fix="")


@pytest.mark.parametrize("path, reason", [
    ("/proc/selu_zoo_probe", "no such file or directory"),
    ("{tmp}/" + "x" * 300, "file name too long"),
    ("{tmp}/afile/sub", "not a directory"),
])
def test_check_writable_fails_in_one_line(tmp_path, path, reason):
    (tmp_path / "afile").write_text("")
    path = path.format(tmp=tmp_path)
    with pytest.raises(storage.StorageError) as error:
        storage.check_writable(path, "--export_dir")
    assert str(error.value).startswith(f"--export_dir={path} is not writable: {reason}")


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(storage.StorageError, match="is a file; pass a folder"):
        storage.check_writable(str(tmp_path / "afile"), "--workdir")


def test_rename_exclusive_never_replaces(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("b")
    with pytest.raises(FileExistsError):
        storage.rename_exclusive(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "b" / "f").read_text() == "b"


_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    from selu_zoo import storage
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    path = sys.argv[1]
    storage.atomic_write(path, b"old")
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
    try:
        storage.atomic_write(path, b"x" * 100_000)
    except storage.StorageError as error:
        print("ERROR", error)
""")


def test_a_write_that_fills_the_disk_keeps_the_old_file(tmp_path):
    """A file-size limit stands in for a full disk: the write fails, nothing is half-written."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    path = tmp_path / "f.bin"
    result = subprocess.run([sys.executable, "-c", _FULL_DISK, str(path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"ERROR cannot write {path}: file too large" in result.stdout
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin"]
