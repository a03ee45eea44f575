"""Reproductions of the SNN paper's experiments on selu_zoo's embedded data, as pictures.

Klambauer et al. (2017), "Self-Normalizing Neural Networks", arXiv:1706.02515.

Run ``python -m experiments --only=<comma list> [--quick] [--output_dir=...]``; each
experiment writes ``<name>.json``, ``<name>.md`` and PNG figures into the output folder. The experiments:

* ``activation_stats`` (`experiments.activation_stats`): per-layer activation mean and
  variance at initialization and after training, for SELU and ReLU/tanh/ELU networks.
* ``training_curves`` (`experiments.training_curves`): the paper's Figure 1 analogue,
  training loss of SNNs vs ReLU MLPs with and without batch normalization.
* ``uci`` (`experiments.uci`): test accuracy of SNNs vs ReLU MLPs (plain, BatchNorm,
  LayerNorm) on the four embedded UCI datasets.
* ``theory`` (`experiments.theory`): the moment map's vector field and the SELU
  parameters solved for other fixed points.
* ``zoo`` (`experiments.zoo`): every zoo model trained and exported as train.py does it,
  with its test result, wall time and activation statistics before and after training.

This package is not part of the installed ``selu_zoo`` distribution.
"""

EXPERIMENTS = ("activation_stats", "training_curves", "uci", "theory", "zoo")
