"""Runs train.py as ``python train.py ARGS`` does, but holds still after one checkpoint.

    PAUSE_AFTER_EPOCH=N PAUSED_FILE=PATH python tests/_train_paused.py ARGS...

Once the resume checkpoint of epoch N (or of the first checkpointed epoch after it) is
written, the run creates PATH, holding that epoch's number, and waits there until a signal
ends it: SIGKILL, or SIGINT, which reaches training as the KeyboardInterrupt of a real Ctrl-C.
A test waits for PATH, then signals, so the interruption lands at a known epoch boundary
however fast the machine trains.
"""

import importlib.util
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _hold_after(save, epoch, paused_file):
    """``save`` (ResumeCheckpoint.save) that, from ``epoch`` on, marks the pause and waits."""

    def save_then_hold(self, done, *args, **kwargs):
        prefix = save(self, done, *args, **kwargs)
        if done >= epoch:
            with open(paused_file + ".tmp", "w", encoding="utf-8") as f:
                f.write(str(done))
            os.replace(paused_file + ".tmp", paused_file)
            while True:
                time.sleep(0.05)
        return prefix

    return save_then_hold


def main():
    sys.path.insert(0, ROOT)
    # As train.py does: selu_zoo.console loaded, and the capture started, before TensorFlow.
    spec = importlib.util.spec_from_file_location(
        "selu_zoo.console", os.path.join(ROOT, "selu_zoo", "console.py"))
    console = sys.modules["selu_zoo.console"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(console)
    native_stderr = console.NativeStderr()
    import train  # noqa: PLC0415
    from absl import app  # noqa: PLC0415
    from selu_zoo import resume  # noqa: PLC0415

    resume.ResumeCheckpoint.save = _hold_after(resume.ResumeCheckpoint.save,
                                               int(os.environ["PAUSE_AFTER_EPOCH"]),
                                               os.environ["PAUSED_FILE"])
    train.NATIVE_STDERR = native_stderr
    app.run(train.main, flags_parser=train._parse_flags)


if __name__ == "__main__":
    main()
