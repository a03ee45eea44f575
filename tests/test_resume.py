"""selu_zoo.resume: per-epoch training state for Keras fit, restored exactly or set aside."""

import numpy as np
import pytest
import tensorflow as tf

from _mlp import make_data, make_model
from selu_zoo import callbacks, storage
from selu_zoo.resume import ResumeCheckpoint


def _fit(model, directory, epochs):
    """Keras fit from the folder's newest checkpoint to ``epochs``, saving after each epoch."""
    x, y = make_data(n=128)
    resume = ResumeCheckpoint(model, str(directory))
    initial = resume.restore()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    save = callbacks.EpochEnd("resume", lambda epoch: resume.save(epoch + 1))
    model.fit(data, epochs=epochs, initial_epoch=initial, callbacks=[save], shuffle=False,
              verbose=0)
    return initial, resume


def test_fit_resumed_from_a_checkpoint_equals_an_uninterrupted_run(tmp_path):
    """Weights, optimizer slots and alpha dropout's seed generators all come back."""
    straight = make_model(dropout_rate=0.1)
    _fit(straight, tmp_path / "straight", 4)
    _fit(make_model(dropout_rate=0.1), tmp_path / "resumed", 2)
    resumed = make_model(dropout_rate=0.1)
    initial, resume = _fit(resumed, tmp_path / "resumed", 4)
    assert initial == 2 and resume.complete_epochs() == [4, 3]  # keep=2
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert int(resumed.optimizer.iterations) == int(straight.optimizer.iterations) == 16


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_used(tmp_path, caplog):
    _fit(make_model(), tmp_path, 3)
    data = next(p for p in tmp_path.iterdir() if p.name.startswith("ckpt-3.data"))
    data.write_bytes(data.read_bytes()[:100])  # truncated, as a full disk leaves it
    model = make_model()
    resume = ResumeCheckpoint(model, str(tmp_path))
    assert resume.restore() == 2 and int(resume.epoch) == 2
    assert resume.complete_epochs() == [2]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".damaged")) == [
        "ckpt-3.data-00000-of-00001.damaged", "ckpt-3.done.damaged", "ckpt-3.index.damaged"]
    assert any("epoch 3" in r.getMessage() and "damaged" in r.getMessage()
               for r in caplog.records)


def test_no_usable_checkpoint_is_one_line_naming_the_folder(tmp_path):
    _fit(make_model(), tmp_path, 1)
    for path in tmp_path.glob("ckpt-1.data*"):
        path.write_bytes(b"garbage")
    with pytest.raises(storage.CorruptFileError, match=f"no checkpoint in {tmp_path} reads "
                                                       "back.*--restart"):
        ResumeCheckpoint(make_model(), str(tmp_path)).restore()


def test_a_checkpoint_without_its_done_marker_is_ignored(tmp_path):
    _fit(make_model(), tmp_path, 2)
    (tmp_path / "ckpt-2.done").unlink()  # killed between the checkpoint and its marker
    assert ResumeCheckpoint(make_model(), str(tmp_path)).restore() == 1


def test_a_fresh_folder_starts_at_epoch_zero(tmp_path):
    assert ResumeCheckpoint(make_model(), str(tmp_path / "none")).restore() == 0
