"""Runs train.py's ``main`` for many command lines: TensorFlow is imported once, then each
command line runs in a forked child with its own output files, as ``python train.py`` would.

    python tests/_train_cases.py CASES.json OUT_DIR

CASES.json: ``[{"name", "args", "cwd", "file_size_limit"}]``; ``file_size_limit`` (bytes,
optional) makes every write past it fail, as a full disk does. Writes ``OUT_DIR/<name>.out``
(stdout), ``.err`` (stderr) and ``.code`` (the exit status). Forking before TensorFlow starts
its runtime saves each case the seconds of importing it.
"""

import importlib
import json
import os
import resource
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "train.py")


def _import_train(cases):
    """Imports train.py as if run with every case's ``--config.<field>`` overrides.

    ml_collections defines the override flags of the default config file when train.py
    defines its --config flag, from the ``--config.<field>`` names in ``sys.argv`` then (a
    case naming its own --config file has its overrides defined when it is parsed). So a
    typo in a field of the default file cannot be a case here: it fails train.py's import.
    """
    overrides = sorted({arg.split("=")[0] for case in cases for arg in case["args"]
                        if arg.startswith("--config.")
                        and not any(a.startswith("--config=") for a in case["args"])})
    sys.path.insert(0, ROOT)
    sys.argv = [TRAIN, "--model=snn", *(f"{name}=0" for name in overrides)]
    train = importlib.import_module("train")
    return train.console, train


def _child(case, out, console, train):
    from absl import app  # noqa: PLC0415

    os.chdir(case["cwd"])
    for fd, suffix in ((1, "out"), (2, "err")):
        os.dup2(os.open(os.path.join(out, f"{case['name']}.{suffix}"),
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    if case.get("file_size_limit"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit gets EFBIG
        limit = case["file_size_limit"]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    train.NATIVE_STDERR = console.NativeStderr()
    sys.argv = [TRAIN, *case["args"]]
    try:
        app.run(train.main, argv=sys.argv, flags_parser=train._parse_flags)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(cases_path, out):
    with open(cases_path, encoding="utf-8") as f:
        cases = json.load(f)
    console, train = _import_train(cases)
    for case in cases:
        pid = os.fork()
        if pid == 0:
            _child(case, out, console, train)
        _, status = os.waitpid(pid, 0)
        with open(os.path.join(out, f"{case['name']}.code"), "w", encoding="utf-8") as f:
            f.write(str(os.waitstatus_to_exitcode(status)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
